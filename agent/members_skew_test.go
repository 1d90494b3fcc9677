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

// Heartbeats are stamped and judged by the database's clock, not the agents': an agent
// whose clock is a minute behind the others', or a minute ahead, stays alive to each of
// them, and they to it. (By their own clocks, the one behind was taken for silent by the
// others, and the one ahead took the others for silent.)
func TestAgentsJudgeHeartbeatsByTheDatabasesClock(t *testing.T) {
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
	agents := map[string]*Agent{
		"eu-1": start("eu-1", clock.Real{}),
		"eu-2": start("eu-2", skewed{by: -time.Minute}),
		"eu-3": start("eu-3", skewed{by: time.Minute}),
	}
	states := func(watcher *Agent) map[string]memberState {
		views, err := watcher.memberViews(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]memberState{}
		for _, v := range views {
			out[v.Name] = memberState(v.State)
		}
		return out
	}
	eventually(t, 10*time.Second, "the three agents to join", func() bool { return len(states(agents["eu-1"])) == 3 })
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		for watcher, a := range agents {
			for name, s := range states(a) {
				if s != memberAlive {
					t.Fatalf("%s is %s to %s (eu-2's clock is 1m behind, eu-3's 1m ahead, heartbeats every 1s); want alive", name, s, watcher)
				}
			}
		}
	}
}
