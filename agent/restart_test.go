package agent

import (
	"reflect"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// The README's durability promise, on a real agent restarted on its SQLite file: a
// verdict reached before the restart is still answered after it (and not verified again),
// and a verification cut off by the restart starts its window again, all its rounds, with
// the baseline fixed at registration.
func TestARestartMidVerification(t *testing.T) {
	tg := newTarget(t)
	dir := t.TempDir()
	yaml := webConfig{url: tg.srv.URL, every: "1s", verify: "interval: 200ms, count: 10, baseline_runs: 2",
		assert: `"status == 200", "duration_ms < baseline.duration_ms * 3 + 150"`}.String()
	h := startAgent(t, dir, yaml)
	eventually(t, 20*time.Second, "two scheduled runs", func() bool {
		runs, _ := h.a.store.RecentRuns(t.Context(), "home", time.Now().Add(time.Hour), 10)
		return len(runs) >= 2
	})
	done := h.verdict(h.deploy("web", "v1"), 30*time.Second)
	if done["status"] != store.StatusPassed {
		t.Fatalf("v1: %v %v", done["status"], done["reason"])
	}
	id := h.deploy("web", "v2")
	before, err := h.a.store.Deploy(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "v2's first rounds", func() bool {
		runs, _ := h.a.store.DeployRuns(t.Context(), id)
		return len(runs) >= 2
	})
	h.stop()
	cut, err := openSQLite(t, dir).DeployRuns(t.Context(), id) // the stopped agent closed its store
	if err != nil {
		t.Fatal(err)
	}

	h = startAgent(t, dir, yaml)
	if d := h.verdict(done["id"].(string), 5*time.Second); d["status"] != store.StatusPassed || d["reason"] != done["reason"] {
		t.Errorf("v1 after the restart: %v %q; want its verdict as it was, passed %q", d["status"], d["reason"], done["reason"])
	}
	if c := checkOf(t, h.verdict(done["id"].(string), 5*time.Second), "home"); c["runs"] != checkOf(t, done, "home")["runs"] {
		t.Errorf("v1 ran %v rounds after the restart; want %v: a decided deploy is not verified again", c["runs"], checkOf(t, done, "home")["runs"])
	}
	d := h.verdict(id, 30*time.Second)
	if d["status"] != store.StatusPassed {
		t.Fatalf("v2 after the restart: %v %v; want passed", d["status"], d["reason"])
	}
	if c := checkOf(t, d, "home"); c["runs"] != float64(len(cut)+10) {
		t.Errorf("v2 ran %v rounds in all, %d before the restart; want its window again in full after it, %d", c["runs"], len(cut), len(cut)+10)
	}
	after, err := h.a.store.Deploy(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if before.Baseline["home"] == nil || !reflect.DeepEqual(after.Baseline, before.Baseline) {
		t.Errorf("v2's baseline %v after the restart; want the one fixed at its registration, %v", after.Baseline, before.Baseline)
	}
}
