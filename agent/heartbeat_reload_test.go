package agent

import (
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/pgtest"
	"github.com/vigil-monitor/vigil/store"
)

// Where agents share a PostgreSQL store, a reload's heartbeat checks reach the store as
// the reload is applied, not at the agent's next heartbeat: the other agents judge the
// checks by the set in force. A check moved from one agent's config to another's by two
// reloads is forgotten by the first at once and judged by the second from its reload (it
// failed there, judged from the first agent's start, which still vouched for beats it no
// longer took); a check added is taken from the reload on. Heartbeats of 5m: no tick comes
// during the test, so every change seen is the reload's own.
func TestHeartbeatReloadReachesOtherAgentsAtOnce(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Options{})
	dsn := srv.Database(t)
	const (
		weekly = "  - {name: weekly, kind: heartbeat, every: 1s, window: 5s, token: beat-token-9876543210}\n"
		daily  = "  - {name: daily, kind: heartbeat, every: 1s, window: 3s, token: beat-token-5555555555}\n"
	)
	yaml := func(name, checks string) string {
		return onPostgres(dsn, name, "5m", "  - {name: nightly, kind: heartbeat, every: 1s, window: 3s, token: beat-token-0123456789}\n"+checks)
	}
	start := func(name, checks string) *harness { return startOnPostgres(t, dsn, yaml(name, checks)) }
	reload := func(h *harness, name, checks string) {
		t.Helper()
		if err := reloadWith(t, h, yaml(name, checks)); err != nil {
			t.Fatal(err)
		}
	}
	// taken is since when the other agent (two) reads that check's beats are taken.
	var two *harness
	taken := func(check string) store.BeatsTaking {
		t.Helper()
		tk, err := two.a.store.BeatsTaken(t.Context(), check, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}

	one := start("eu-1", weekly)
	two = start("eu-2", "")
	if tk := taken("weekly"); tk.Since.IsZero() {
		t.Fatalf("weekly after eu-1 joined: %+v, want its beats taken", tk)
	}
	time.Sleep(5500 * time.Millisecond) // a window in which the job never beat, while eu-1 took beats

	reload(one, "eu-1", "") // weekly leaves eu-1 ...
	if tk := taken("weekly"); !tk.Since.IsZero() || len(tk.Before) != 0 {
		t.Fatalf("weekly right after eu-1's reload took it out: %+v, want it forgotten (no agent takes its beats)", tk)
	}
	reload(two, "eu-2", weekly) // ... for eu-2, which judges it from now
	wantRun(t, two, "weekly", "inconclusive", "no beat yet: beats have been expected since ")

	before := time.Now()
	reload(one, "eu-1", daily)
	if tk := taken("daily"); tk.Since.IsZero() || tk.Since.Before(before.Add(-time.Second)) {
		t.Fatalf("daily right after eu-1's reload added it: %+v, want its beats taken since the reload (%s)", tk, before.Format(time.RFC3339Nano))
	}
}
