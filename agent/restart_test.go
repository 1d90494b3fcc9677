package agent

import (
	"fmt"
	"reflect"
	"strings"
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

// A verification cut off by a restart starts again under the config the agent restarted
// with, not the one it was registered under: the restart is where a fixed config reaches
// the agent (a new ConfigMap rolled out with the agent's own pods), and there is no
// verification left in memory to keep the old one.
func TestARestartMidVerificationJudgesByTheConfigItRestartedWith(t *testing.T) {
	for _, tc := range []struct {
		name           string
		after          webConfig
		status         string
		roundsAfter    int
		reasonContains string
	}{
		{"verify.count lowered", webConfig{verify: "interval: 200ms, count: 3"}, store.StatusPassed, 3, ""},
		{"assertion changed", webConfig{verify: "interval: 200ms, count: 30", assert: `"status == 201"`}, store.StatusFailed, 1, "status == 201"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTarget(t)
			dir := t.TempDir()
			h := startAgent(t, dir, webConfig{url: tg.srv.URL, verify: "interval: 200ms, count: 30"}.String())
			id := h.deploy("web", "v2")
			eventually(t, 20*time.Second, "the first rounds", func() bool {
				runs, _ := h.a.store.DeployRuns(t.Context(), id)
				return len(runs) >= 2
			})
			h.stop()
			cut, err := openSQLite(t, dir).DeployRuns(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			after := tc.after
			after.url = tg.srv.URL
			h = startAgent(t, dir, after.String())
			d := h.verdict(id, 60*time.Second)
			if d["status"] != tc.status || !strings.Contains(fmt.Sprint(d["reason"]), tc.reasonContains) {
				t.Fatalf("after the restart: %v %q; want %s (%s)", d["status"], d["reason"], tc.status, tc.reasonContains)
			}
			if c := checkOf(t, d, "home"); c["runs"] != float64(len(cut)+tc.roundsAfter) {
				t.Errorf("%v rounds in all, %d before the restart; want %d after it, as the new config says", c["runs"], len(cut), tc.roundsAfter)
			}
		})
	}
}
