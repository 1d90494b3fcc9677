package agent

import (
	"reflect"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// A deploy registered while another of its service is still verifying (a pipeline's retry
// of the same version, a second deploy, a rollback) is compared with the service from
// before the first: the runs since were of a version no verdict accepted. Here the first
// registration of a slow v2 waits out its initial_delay while scheduled runs of v2 pass
// (they read no baseline); the retry of v2 took its baseline from them, and a slow
// version became the yardstick it was measured by.
func TestASupersedingDeployKeepsTheBaselineFromBeforeIt(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, every: "1s", verify: "initial_delay: 1m, interval: 1s, count: 2, baseline_runs: 3",
		assert: `"status == 200", "duration_ms < baseline.duration_ms * 3 + 150"`}.String())
	runs := func() int {
		rs, err := h.a.store.RecentRuns(t.Context(), "home", time.Now().Add(time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}
	eventually(t, 30*time.Second, "three scheduled runs of v1", func() bool { return runs() >= 3 })
	tg.delay.Store(int64(400 * time.Millisecond))
	tg.set("slow")
	first := h.deploy("web", "v2")
	n := runs()
	eventually(t, 30*time.Second, "three scheduled runs of v2", func() bool { return runs() >= n+3 })
	retry := h.deploy("web", "v2")
	then := h.deploy("web", "v3") // and a newer deploy still, before any verdict

	deploys := map[string]*store.Deploy{}
	for _, id := range []string{first, retry, then} {
		d, err := h.a.store.Deploy(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		deploys[id] = d
	}
	if d := deploys[first]; d.Status != store.StatusSuperseded || d.SupersededBy != retry {
		t.Fatalf("first registration: status %s, superseded by %q; want superseded by the retry %s", d.Status, d.SupersededBy, retry)
	}
	base := deploys[first].Baseline["home"]
	if ms, _ := base["duration_ms"].(float64); base == nil || ms >= 300 {
		t.Fatalf("the first registration's baseline %v should be v1's quick runs", base)
	}
	for _, id := range []string{retry, then} {
		if got := deploys[id].Baseline["home"]; !reflect.DeepEqual(got, base) {
			t.Errorf("deploy %s (%s) has the baseline %v; want the one from before the deploy it superseded, %v",
				id, deploys[id].Version, got, base)
		}
	}
}

// The same rule where a deploy is verified in another location, or resumed: its baseline
// there ends where the first deploy it superseded, in a chain of them, was registered.
func TestSupersededSince(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	list := []*store.Deploy{ // newest first, as the store lists them
		{ID: "d4", CreatedAt: at(4), Status: store.StatusVerifying},
		{ID: "d3", CreatedAt: at(3), Status: store.StatusSuperseded, SupersededBy: "d4"},
		{ID: "d2", CreatedAt: at(2), Status: store.StatusSuperseded, SupersededBy: "d3"},
		{ID: "d1", CreatedAt: at(1), Status: store.StatusPassed},
		{ID: "d0", CreatedAt: at(0), Status: store.StatusSuperseded, SupersededBy: "d1"},
	}
	for _, c := range []struct {
		id   string
		at   time.Time
		want time.Time
	}{
		{"", at(5), at(2)},   // registering: supersedes d4, which superseded d3, which superseded d2
		{"d4", at(4), at(2)}, // d4 in another location
		{"d2", at(2), at(2)}, // superseded nothing
		{"d1", at(1), at(0)}, // passed, but it had superseded d0: the same baseline as where it was registered
	} {
		if got := supersededSince(list, c.id, c.at); !got.Equal(c.want) {
			t.Errorf("supersededSince(%q) = %s; want %s", c.id, got.Format("15:04"), c.want.Format("15:04"))
		}
	}
	if got := supersededSince(list[3:], "", at(5)); !got.Equal(at(5)) {
		t.Errorf("nothing verifying: %s; want the registration", got.Format("15:04"))
	}
}

// The baseline is the newest passing runs before the deploy, however many failed since:
// a hotfix shipped into an outage comes after a run of failures, and only the 50 newest
// runs were read, so a check every 10 s failing for nine minutes had no baseline, and the
// hotfix's verification was inconclusive on every assertion that compares with it.
func TestTheBaselineReachesBackPastAnOutage(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2, baseline_runs: 3",
		assert: `"status == 200", "duration_ms < baseline.duration_ms * 3 + 150"`}.String())
	start := time.Now().Add(-time.Hour)
	var past []*store.RunRecord
	for i := range 3 {
		past = append(past, &store.RunRecord{Check: "home", Kind: "http", Started: start.Add(time.Duration(i) * time.Second),
			Duration: 20 * time.Millisecond, Outcome: "pass", Attempts: 1, Location: h.a.location,
			Vars: map[string]any{"status": 200, "duration_ms": 20 + i}})
	}
	for i := range 300 { // then fifty minutes of an outage
		past = append(past, &store.RunRecord{Check: "home", Kind: "http", Started: start.Add(time.Minute + time.Duration(i)*10*time.Second),
			Duration: time.Millisecond, Outcome: "fail", Attempts: 1, Location: h.a.location, Reasons: []string{"status == 200 is false: status = 500"},
			Vars: map[string]any{"status": 500, "duration_ms": 1}})
	}
	if err := h.a.store.SaveRuns(t.Context(), past); err != nil {
		t.Fatal(err)
	}
	id := h.deploy("web", "hotfix")
	d, err := h.a.store.Deploy(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if ms, _ := d.Baseline["home"]["duration_ms"].(float64); ms != 21 {
		t.Fatalf("the hotfix's baseline is %v; want the median of the three passing runs before the outage, duration_ms 21", d.Baseline["home"])
	}
	if v := h.verdict(id, 30*time.Second); v["status"] != store.StatusPassed {
		t.Errorf("the hotfix: %v, %v; want passed", v["status"], v["reason"])
	}
}
