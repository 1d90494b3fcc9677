package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/clock"
	"github.com/vigil-monitor/vigil/internal/pgtest"
	"github.com/vigil-monitor/vigil/store"
)

// skewed is the wall clock off by a fixed amount: a machine whose clock NTP does not keep.
type skewed struct {
	clock.Real
	by time.Duration
}

func (s skewed) Now() time.Time { return time.Now().Add(s.by) }

// Heartbeats are stamped by the writer's clock and judged by the reader's: an agent whose
// clock is behind the others' by less than two heartbeats stays alive to them, one behind
// by more than three is taken for silent. The README asks for clocks kept in step.
func TestAgentsJudgeHeartbeatsByTheirOwnClocks(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Options{})
	dsn := srv.Database(t)
	start := func(name string, c clock.Clock) *Agent {
		st, err := store.OpenPostgres(context.Background(), dsn, store.PoolOptions{MaxConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		l := launch(t, t.TempDir(), fmt.Sprintf(`
agent: {location: eu, name: %s, heartbeat: 1s}
store: {driver: postgres, dsn: %q}
checks: [{name: home, kind: http, every: 1h, request: {url: "http://127.0.0.1:9/"}}]
`, name, dsn), Options{Store: st, Clock: c})
		t.Cleanup(func() { _ = l.stop(); st.Close() })
		return l.a
	}
	watcher := start("eu-1", clock.Real{})
	stateOf := func(name string) memberState {
		views, err := watcher.memberViews(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range views {
			if v.Name == name {
				return memberState(v.State)
			}
		}
		return ""
	}
	start("eu-2", skewed{by: -500 * time.Millisecond}) // half a heartbeat behind
	eventually(t, 10*time.Second, "eu-2 to join", func() bool { return stateOf("eu-2") == memberAlive })
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if s := stateOf("eu-2"); s != memberAlive {
			t.Fatalf("eu-2, its clock 500ms behind with 1s heartbeats, is %s to eu-1", s)
		}
	}
	start("eu-3", skewed{by: -10 * time.Second}) // ten heartbeats behind
	eventually(t, 10*time.Second, "eu-3 to join", func() bool { return stateOf("eu-3") != "" })
	if s := stateOf("eu-3"); s != memberSilent {
		t.Errorf("eu-3, its clock 10s behind with 1s heartbeats, is %s to eu-1; want silent", s)
	}
}
