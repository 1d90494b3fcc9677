package agent

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/pgtest"
	"github.com/vigil-monitor/vigil/store"
)

// stuckWatch is a shared store whose reading of the agents hangs until released (a store
// under load, a slow query), counting the heartbeats written meanwhile.
type stuckWatch struct {
	Store
	beats, reads atomic.Int64
	stuck        atomic.Bool // from when the agent is up: its start reads the agents too
	release      chan struct{}
}

func (s *stuckWatch) Heartbeat(ctx context.Context, m *store.Member) (string, error) {
	s.beats.Add(1)
	return s.Store.Heartbeat(ctx, m)
}

func (s *stuckWatch) Members(ctx context.Context) ([]*store.Member, error) {
	if !s.stuck.Load() {
		return s.Store.Members(ctx)
	}
	s.reads.Add(1)
	select {
	case <-s.release:
	case <-ctx.Done():
	}
	return s.Store.Members(ctx)
}

// An agent's heartbeats keep their cadence while its watch of the other agents is stuck:
// its beats waited for each round of the watch, so a slow round left a live agent's beats
// more than three intervals apart, and the others paged it as stopped reporting (seen in
// TestLocationsTwoAgentsInOneLocation on a loaded machine).
func TestHeartbeatsDoNotWaitForTheWatch(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Options{})
	pg, err := store.OpenPostgres(context.Background(), srv.Database(t), store.PoolOptions{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	st := &stuckWatch{Store: pg, release: make(chan struct{})}
	tg := newTarget(t)
	l := launch(t, t.TempDir(), fmt.Sprintf(`
agent: {location: eu, name: eu-1, heartbeat: 100ms}
store: {driver: postgres, dsn: %q}
checks:
  - {name: home, kind: http, every: 1h, request: {url: %q}}
`, srv.Database(t), tg.srv.URL+"/"), Options{Store: st})
	defer func() {
		close(st.release)
		if err := l.stop(); err != nil {
			t.Error(err)
		}
		pg.Close()
	}()
	st.stuck.Store(true)
	eventually(t, 30*time.Second, "the watch to read the agents", func() bool { return st.reads.Load() > 0 })
	stuck := st.beats.Load()
	eventually(t, 30*time.Second, "five heartbeats while the watch is stuck", func() bool { return st.beats.Load() >= stuck+5 })
	if n := st.reads.Load(); n != 1 {
		t.Errorf("the agents were read %d times while the first read hung; want one round at a time", n)
	}
}
