package agent

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/store"
)

// scheduledRuns counts home's runs in the store that no verification made.
func scheduledRuns(t *testing.T, h *harness) int {
	t.Helper()
	rs, err := h.a.store.RecentRuns(t.Context(), "home", time.Now().Add(time.Hour), 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rs {
		if r.DeployID == "" {
			n++
		}
	}
	return n
}

// cancelled cancels deploy id as Argo Rollouts' abort does, and fails the test unless it
// ends cancelled (its verification must not have decided it first).
func cancelled(t *testing.T, h *harness, id string) {
	t.Helper()
	status, out := h.request("POST", "/api/v1/deploys/"+id+"/cancel", `{"reason":"Argo Rollouts aborted web"}`)
	if status != http.StatusOK || out["status"] != store.StatusCancelled {
		t.Fatalf("cancelling %s: %d %v; want 200, cancelled (its initial_delay should leave time for it)", id, status, out)
	}
}

// A deploy registered right after a cancelled one (the fix, once Argo Rollouts aborted the
// rollout) is compared with the service from before the aborted rollout: the runs between
// its registration and its cancel, and while the stable version came back, were of a
// rollout under way. Here the aborted version breaks home, its scheduled runs fail and the
// check's incident opens; the fix breaks it the same way. With registered_before_rollout,
// the fix's failures read as "failing as before the deploy", and it was inconclusive, no
// rollback called, when it is failed.
func TestADeployAfterACancelledOneIsNotExcusedByItsFailures(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - {name: home, kind: http, every: 1s, timeout: 2s, retries: 0, failure_threshold: 2, request: {url: %q}, assert: ["status == 200"]}
services:
  web: {checks: [home], verify: {initial_delay: 6s, interval: 100ms, count: 3, registered_before_rollout: true}}
`, tg.srv.URL+"/"))
	eventually(t, 20*time.Second, "a first passing run", func() bool { return h.a.lastResult("home") != nil })

	aborted := h.deploy("web", "v2")
	tg.set("broken")
	eventually(t, 20*time.Second, "home's incident, opened by the aborted rollout's failures", func() bool {
		h.a.incMu.Lock()
		defer h.a.incMu.Unlock()
		in := h.a.incidents["home"]
		return in != nil && in.Open
	})
	cancelled(t, h, aborted)

	fix := h.deploy("web", "v2.1")
	d := h.verdict(fix, 30*time.Second)
	if d["status"] != store.StatusFailed || strings.Contains(fmt.Sprint(d["reason"]), "failing as before") {
		t.Fatalf("the deploy after the cancelled one, failing as the aborted version did: %v %q; want failed, its own failure", d["status"], d["reason"])
	}
}

// A deploy's latency baseline leaves out the runs of a rollout called off before it: the
// slow version's scheduled runs passed (they read no baseline) while it rolled out, and a
// deploy registered after the abort, or after the failed verdict that rolled it back, was
// compared with them and passed as slow as the version rolled back.
func TestABaselineLeavesOutARolloutCalledOff(t *testing.T) {
	for _, how := range []string{store.StatusCancelled, store.StatusFailed} {
		t.Run(how, func(t *testing.T) {
			tg := newTarget(t)
			h := startAgent(t, "", webConfig{url: tg.srv.URL, every: "1s", verify: "initial_delay: 6s, interval: 100ms, count: 2, baseline_runs: 3",
				assert: `"status == 200", "duration_ms < baseline.duration_ms * 3 + 150"`}.String())
			eventually(t, 30*time.Second, "three scheduled runs of v1", func() bool { return scheduledRuns(t, h) >= 3 })
			tg.delay.Store(int64(400 * time.Millisecond))
			tg.set("slow")
			first := h.deploy("web", "v2")
			n := scheduledRuns(t, h)
			eventually(t, 30*time.Second, "three scheduled runs of the slow v2", func() bool { return scheduledRuns(t, h) >= n+3 })
			if how == store.StatusCancelled {
				cancelled(t, h, first)
			} else if d := h.verdict(first, 30*time.Second); d["status"] != store.StatusFailed {
				t.Fatalf("the slow v2: %v %q; want failed", d["status"], d["reason"])
			}

			next := h.deploy("web", "v2.1") // as slow
			nd, err := h.a.store.Deploy(t.Context(), next)
			if err != nil {
				t.Fatal(err)
			}
			fd, err := h.a.store.Deploy(t.Context(), first)
			if err != nil {
				t.Fatal(err)
			}
			ms, _ := nd.Baseline["home"]["duration_ms"].(float64)
			if ms == 0 || ms >= 300 || ms != fd.Baseline["home"]["duration_ms"] {
				t.Fatalf("the deploy after the %s one has the baseline duration_ms %v; want v1's quick runs', as the %s one had: %v",
					how, ms, how, fd.Baseline["home"]["duration_ms"])
			}
			if d := h.verdict(next, 30*time.Second); d["status"] != store.StatusFailed {
				t.Errorf("a deploy as slow as the version rolled back: %v %q; want failed", d["status"], d["reason"])
			}
		})
	}
}

// The spans a baseline leaves out: a cancelled or failed deploy's, from the first deploy it
// superseded to its verdict plus the rollback's time; none for one that passed, was
// inconclusive or is later than the deploy whose baseline it is.
func TestCalledOff(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	list := []*store.Deploy{ // newest first
		{ID: "d6", CreatedAt: at(60), DecidedAt: at(61), Status: store.StatusCancelled}, // after the deploy
		{ID: "d5", CreatedAt: at(50), DecidedAt: at(52), Status: store.StatusFailed},
		{ID: "d4", CreatedAt: at(40), DecidedAt: at(42), Status: store.StatusInconclusive},
		{ID: "d3", CreatedAt: at(30), DecidedAt: at(33), Status: store.StatusCancelled},
		{ID: "d2", CreatedAt: at(20), DecidedAt: at(30), Status: store.StatusSuperseded, SupersededBy: "d3"},
		{ID: "d1", CreatedAt: at(10), DecidedAt: at(11), Status: store.StatusPassed},
	}
	got := calledOff(list, at(55), time.Minute)
	want := []span{{at(50), at(53)}, {at(20), at(34)}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("calledOff = %v; want %v", got, want)
	}
	for _, c := range []struct{ in, want time.Time }{
		{at(55), at(55)}, {at(53), at(50)}, {at(51), at(50)}, {at(50), at(50)}, {at(34), at(20)}, {at(19), at(19)},
	} {
		if got := before(want, c.in); !got.Equal(c.want) {
			t.Errorf("before(%s) = %s; want %s", c.in.Format("15:04"), got.Format("15:04"), c.want.Format("15:04"))
		}
	}
}

// A check with no passing run outside the spans left out (one added while the rollout
// rolled out) takes its baseline from the runs in them, as before: with none, every
// baseline.* assertion would be inconclusive. With passing runs outside, it takes those,
// however few.
func TestABaselineFallsBackToTheRunsOfARolloutCalledOff(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2, baseline_runs: 3"}.String())
	now := time.Now()
	run := func(ago time.Duration, ms int) *store.RunRecord {
		return &store.RunRecord{Check: "home", Kind: "http", Started: now.Add(-ago), Duration: time.Duration(ms) * time.Millisecond,
			Outcome: string(checks.Pass), Attempts: 1, Location: h.a.location, Vars: map[string]any{"status": 200, "duration_ms": ms}}
	}
	if err := h.a.store.SaveRuns(t.Context(), []*store.RunRecord{run(3*time.Minute, 400), run(2*time.Minute, 400), run(time.Minute, 400)}); err != nil {
		t.Fatal(err)
	}
	svc := h.a.Runtime().Config.Services["web"]
	list := h.a.Runtime().serviceChecks("web")
	aborted := []*store.Deploy{{ID: "d1", Service: "web", CreatedAt: now.Add(-4 * time.Minute), DecidedAt: now.Add(-30 * time.Second), Status: store.StatusCancelled}}
	b := h.a.baseline(t.Context(), list, svc, baselineEnd{at: now, deploys: aborted})
	if ms, _ := b["home"]["duration_ms"].(float64); ms != 400 {
		t.Errorf("only runs of the aborted rollout: the baseline is %v; want theirs, duration_ms 400", b["home"])
	}
	if err := h.a.store.SaveRuns(t.Context(), []*store.RunRecord{run(5*time.Minute, 20)}); err != nil {
		t.Fatal(err)
	}
	b = h.a.baseline(t.Context(), list, svc, baselineEnd{at: now, deploys: aborted})
	if ms, _ := b["home"]["duration_ms"].(float64); ms != 20 {
		t.Errorf("one run from before the aborted rollout: the baseline is %v; want it, duration_ms 20", b["home"])
	}
}
