package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// Seed 002: the new version took far longer to start than the old, and with no SLA to
// judge it by, that passed. verify.ready_within is that SLA: a real agent verifies a
// rollout whose new version takes over after some requests (the old one answering until
// then, told apart by served_version). Too slow to come up fails the deploy at the round
// due ready_within after it; quick enough passes, with how long it took in the API and
// on the deploy's page.
func TestDeployReadyWithin(t *testing.T) {
	var serving atomic.Value
	serving.Store("v1")
	var oldAnswers atomic.Int32 // the old version answers this many more requests
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if oldAnswers.Load() > 0 && oldAnswers.Add(-1) == 0 {
			defer serving.Store(r.URL.Query().Get("next"))
		}
		w.Header().Set("X-App-Version", serving.Load().(string))
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)
	hook := loopback.NewWebhook(t)
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - {name: home, kind: http, every: 1h, retries: 0, request: {url: %q}, served_version: {header: X-App-Version}}
  - {name: v3-home, kind: http, every: 1h, retries: 0, request: {url: %q}, served_version: {header: X-App-Version}}
services:
  web: {checks: [home], verify: {interval: 100ms, count: 10, ready_within: 500ms, visitors: 1}}
  web3: {checks: [v3-home], verify: {interval: 100ms, count: 4, ready_within: 300ms, visitors: 1}, on_failure: [hook]}
notifiers:%s
`, srv.URL+"/?next=v2", srv.URL+"/?next=v3", webhookNotifier("hook", "", hook)))

	oldAnswers.Store(8) // the rounds due at 0 to 700 ms meet the old version
	d := h.verdict(h.deploy("web", "v2"), 30*time.Second)
	want := "home: not ready 500ms after the deploy (verify.ready_within 500ms): no run passed in 6 rounds (6 inconclusive); the round due 500ms after the deploy: "
	if d["status"] != store.StatusFailed || !strings.Contains(fmt.Sprint(d["reason"]), want) {
		t.Fatalf("slow to come up: %v %q; want failed, %q", d["status"], d["reason"], want)
	}
	if _, ok := d["ready_ms"]; ok {
		t.Errorf("a deploy that never passed has ready_ms %v", d["ready_ms"])
	}

	oldAnswers.Store(2) // the round due at 200 ms is the new version's first
	id := h.deploy("web3", "v3")
	d = h.verdict(id, 30*time.Second)
	if d["status"] != store.StatusPassed {
		t.Fatalf("up in time: %v %q; want passed", d["status"], d["reason"])
	}
	c := checkOf(t, d, "v3-home")
	ready, ok := d["ready_ms"].(float64)
	if !ok || c["ready_ms"] != d["ready_ms"] || ready < 200 {
		t.Fatalf("ready_ms %v, the check's %v; want the first passing run's end, at least the 200 ms its round was due", d["ready_ms"], c["ready_ms"])
	}
	var passed *alerting.Event
	for _, ev := range outboxEvents(t, h.a, "hook") {
		if ev.Name == "deploy_passed" {
			passed = &ev
		}
	}
	if passed == nil || passed.ReadyAfter < 0.2 {
		t.Errorf("deploy_passed: %+v; want ready_after_seconds, at least the 0.2 s its round was due", passed)
	}
	// Deployed again: its verdict gives the first deploy's startup beside its own.
	again := h.deploy("web3", "v3")
	if d := h.verdict(again, 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("v3 again: %v %q", d["status"], d["reason"])
	}
	passed = nil
	for _, ev := range outboxEvents(t, h.a, "hook") {
		if ev.Name == "deploy_passed" && ev.Deploy.ID == again {
			passed = &ev
		}
	}
	if passed == nil || len(passed.ReadyBefore) != 1 || passed.ReadyBefore[0] < 0.2 {
		t.Errorf("the second deploy's verdict: %+v; want the first's startup (at least 0.2 s) in ready_after_seconds_before", passed)
	}
	// The histogram is observed just after the verdict is recorded, which is when the
	// long-poll above may already have answered: wait for it, not a moment.
	metrics := h.page("/metrics")
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(metrics, `vigil_deploy_ready_seconds_count{service="web3"} 2`) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		metrics = h.page("/metrics")
	}
	if !strings.Contains(metrics, `vigil_deploy_ready_seconds_count{service="web3"} 2`) || strings.Contains(metrics, `vigil_deploy_ready_seconds_count{service="web"}`) {
		t.Errorf("vigil_deploy_ready_seconds: want two observations for web3, none for web, which never passed:\n%s", grepLines(metrics, "vigil_deploy_ready"))
	}
	page := h.page("/deploys/" + id)
	took := (time.Duration(ready) * time.Millisecond).String()
	if !strings.Contains(page, `<div class="v" id="ready">`+took+`</div>`) || !strings.Contains(page, `<td class="num ready">`+took+`</td>`) {
		t.Errorf("the deploy's page does not say when it, and its check, was ready (%s):\n%s", took, page)
	}
}

// A verification cut off by a restart starts its window again; a check that had passed
// before the restart was ready then, and ready_within must not call it "not ready" in
// the new window. The first answer is the new version's, every later one the old's (a
// rollout that goes back, a load balancer that drains the wrong pods).
func TestReadyWithinAcrossARestart(t *testing.T) {
	var answered atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		version := "v1"
		if answered.Add(1) == 1 {
			version = "v2"
		}
		w.Header().Set("X-App-Version", version)
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`
checks:
  - {name: home, kind: http, every: 1h, retries: 0, request: {url: %q}, served_version: {header: X-App-Version}}
services:
  web: {checks: [home], verify: {interval: 200ms, count: 50, ready_within: 1s}}
`, srv.URL+"/")
	h := startAgent(t, dir, yaml)
	id := h.deploy("web", "v2")
	eventually(t, 20*time.Second, "the first round's pass", func() bool {
		_, d := h.request("GET", "/api/v1/deploys/"+id, "")
		return d["ready_ms"] != nil
	})
	h.stop()
	h = startAgent(t, dir, yaml)
	d := h.verdict(id, 60*time.Second)
	if d["status"] == store.StatusFailed || strings.Contains(fmt.Sprint(d["reason"]), "not ready") {
		t.Fatalf("after the restart: %v %q; want it not failed as not ready: home passed before the restart", d["status"], d["reason"])
	}
}

// Metrics that arrive late say nothing of whether the new version is up: a promql check
// against a real Prometheus whose series the new pods export only after the round due
// ready_within is inconclusive (no data yet) until then, and the deploy is judged on the
// series once it is there, not failed as "not ready". What fails a deploy under
// ready_within is news of the new version: the old one answering, silence, failures
// (TestDeployReadyWithin).
func TestReadyWithinWaitsForLateMetrics(t *testing.T) {
	reg, prom := scrapedRegistry(t)
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - {name: pool, kind: promql, every: 1h, retries: 0, server: %q, query: "max(max_over_time(late_ready_pool[10s]))", assert: ["value < 50"]}
services:
  app: {checks: [pool], verify: {interval: 300ms, count: 20, ready_within: 600ms}}
`, prom.URL))
	id := h.deploy("app", "v2")
	eventually(t, 20*time.Second, "the round due ready_within, without data", func() bool {
		runs, _ := h.a.store.DeployRuns(t.Context(), id)
		return len(runs) >= 4
	})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "late_ready_pool", Help: "pool in use"})
	g.Set(3)
	reg.MustRegister(g)
	d := h.verdict(id, 60*time.Second)
	c := checkOf(t, d, "pool")
	if d["status"] != store.StatusPassed {
		t.Fatalf("status %v, reason %q; want passed once the series appeared, not failed as not ready", d["status"], d["reason"])
	}
	if c["inconclusive"].(float64) < 3 {
		t.Errorf("%v inconclusive rounds; want the three due by ready_within at least (the test did not reproduce late metrics)", c["inconclusive"])
	}
}

// verify.ready_slowdown judges a startup by the service's own history, with no SLA given:
// a real agent verifies rollouts whose new version takes over after some requests (the
// old one answering until then, told apart by served_version). With fewer than three
// deploys that passed before it there is no usual startup and a slow one passes; the
// median then leaves that slow deploy out of the usual, and the same startup fails the
// deploy: up two rounds later than usual is slow, one round later is not. The API and the
// deploy's page give the check's usual startup once three deploys show it.
func TestDeployReadySlowdown(t *testing.T) {
	var serving, next atomic.Value
	serving.Store("v0")
	var oldAnswers atomic.Int32 // the old version answers this many more requests
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if oldAnswers.Load() > 0 && oldAnswers.Add(-1) == 0 {
			defer serving.Store(next.Load())
		}
		w.Header().Set("X-App-Version", serving.Load().(string))
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - {name: home, kind: http, every: 1h, retries: 0, request: {url: %q}, served_version: {header: X-App-Version}}
services:
  web: {checks: [home], verify: {interval: 300ms, count: 6, ready_slowdown: 3, visitors: 1}}
`, srv.URL))
	rollout := func(version string, old int32) map[string]any {
		t.Helper()
		if old == 0 {
			serving.Store(version)
		} else {
			next.Store(version)
			oldAnswers.Store(old)
		}
		return h.verdict(h.deploy("web", version), 30*time.Second)
	}
	for i, step := range []struct {
		version string
		old     int32 // requests the old version answers first: one a round
		want    string
	}{
		{"v1", 0, store.StatusPassed},
		{"v2", 0, store.StatusPassed},
		{"v3", 3, store.StatusPassed}, // slow, but only two deploys passed before it
		{"v4", 0, store.StatusPassed},
		{"v5", 3, store.StatusFailed}, // as slow as v3, but now the usual startup is the first round's
		{"v6", 1, store.StatusPassed}, // up at the second round: no slower than rounds can tell
	} {
		d := rollout(step.version, step.old)
		if d["status"] != step.want {
			t.Fatalf("deploy %d (%s, the old version answering %d requests): %v %q; want %s", i+1, step.version, step.old, d["status"], d["reason"], step.want)
		}
		usual, known := checkOf(t, d, "home")["usual_ready_ms"].(float64)
		if known != (i >= 3) || known && usual >= 300 {
			t.Errorf("deploy %d (%s): usual_ready_ms %v; want it from the fourth deploy on, under the 300 ms of a round", i+1, step.version, usual)
		}
		if page := h.page("/deploys/" + fmt.Sprint(d["id"])); known && !strings.Contains(page, `<span class="muted small usual">usually `+(time.Duration(usual)*time.Millisecond).String()+`</span>`) {
			t.Errorf("deploy %d's page does not give the check's usual startup (%v ms)", i+1, usual)
		}
		if step.want == store.StatusFailed {
			for _, want := range []string{"home: not ready ", " after the deploy, far slower than usual (verify.ready_slowdown 3: it first passed ",
				"the median of the service's last 4 deploys that passed): no run passed in "} {
				if !strings.Contains(fmt.Sprint(d["reason"]), want) {
					t.Errorf("the slow deploy's reason %q lacks %q", d["reason"], want)
				}
			}
		}
	}
}
