package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/alertingtest"
	"github.com/vigil-monitor/vigil/store"
)

// webConfig is a service "web" with one HTTP check ("home") against url. verify is the
// service's verify block, service more keys of the service, top more top-level YAML.
type webConfig struct {
	url, verify, service, top, assert, every string
}

func (c webConfig) String() string {
	if c.assert == "" {
		c.assert = `"status == 200"`
	}
	if c.every == "" {
		c.every = "1h"
	}
	return fmt.Sprintf(`
checks:
  - name: home
    kind: http
    every: %s
    timeout: 2s
    retries: 0
    request: {url: %q}
    assert: [%s]
services:
  web:
    checks: [home]
    verify: {%s}
%s
%s`, c.every, c.url+"/", c.assert, c.verify, indent(c.service, "    "), c.top)
}

func indent(s, by string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i := range lines {
		lines[i] = by + lines[i]
	}
	return strings.Join(lines, "\n")
}

func webhookNotifier(name, action string, hook *alertingtest.Webhook) string {
	return fmt.Sprintf(`
  %s:
    type: webhook
    url: %s
    secret: %s
    action: %s
    max_attempts: 20`, name, hook.URL(), alertingtest.WebhookSecret, action)
}

func TestDeployPassesAfterTheWindow(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 3"}.String())
	id := h.deploy("web", "v1")
	d := h.verdict(id, 30*time.Second)
	if d["status"] != store.StatusPassed {
		t.Fatalf("status = %v, reason %v", d["status"], d["reason"])
	}
	c := checkOf(t, d, "home")
	if c["runs"] != 3.0 || c["passed"] != 3.0 {
		t.Errorf("home ran %v times, passed %v; want 3 rounds, all passing", c["runs"], c["passed"])
	}
}

// The deploy breaks the check: the verdict comes with the first failing run, not at the
// end of a ten-minute window, and the rollback webhook is called once, signed.
func TestDeployFailsFastAndRollsBackOnce(t *testing.T) {
	tg := newTarget(t)
	hook := alertingtest.NewWebhook(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 1m, count: 10, failure_limit: 0",
		service: "on_failure: [rollback]", top: "notifiers:" + webhookNotifier("rollback", "rollback", hook)}.String())
	tg.set("broken")
	id := h.deploy("web", "v2")
	d := h.verdict(id, 30*time.Second)
	if d["status"] != store.StatusFailed {
		t.Fatalf("status = %v, reason %v", d["status"], d["reason"])
	}
	c := checkOf(t, d, "home")
	if c["runs"] != 1.0 {
		t.Errorf("the verdict came after %v runs; want it at the first failing run", c["runs"])
	}
	if !strings.Contains(fmt.Sprint(d["reason"]), "home") || !strings.Contains(fmt.Sprint(c["reasons"]), "status == 200") {
		t.Errorf("reason %q / check reasons %v should name the check and quote the assertion", d["reason"], c["reasons"])
	}
	key := id + ":deploy_failed"
	eventually(t, 20*time.Second, "the rollback webhook", func() bool { return hook.Count(key) == 1 })
	dl := hook.Deliveries()[0]
	if dl.Event != "deploy_failed" || dl.Payload["deploy"].(map[string]any)["version"] != "v2" {
		t.Errorf("webhook got event %q payload %v", dl.Event, dl.Payload)
	}
	// Nothing more arrives: at most once per deploy and event.
	time.Sleep(300 * time.Millisecond)
	if n := len(hook.Deliveries()); n != 1 {
		t.Errorf("the webhook received %d deliveries; want exactly 1", n)
	}
}

// Assertions compare with the baseline from before the deploy; the same latency bound
// passes on the old version and fails on a slow new one.
func TestBaselineComparison(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, every: "1s", verify: "interval: 100ms, count: 3, baseline_runs: 2",
		assert: `"status == 200", "duration_ms < baseline.duration_ms * 3 + 150"`}.String())
	// Scheduled runs before the deploy make the baseline.
	eventually(t, 20*time.Second, "two scheduled runs", func() bool {
		runs, _ := h.a.store.RecentRuns(t.Context(), "home", time.Now().Add(time.Hour), 10)
		return len(runs) >= 2
	})
	d := h.verdict(h.deploy("web", "v1"), 30*time.Second)
	if d["status"] != store.StatusPassed {
		t.Fatalf("same speed: status = %v, reason %v", d["status"], d["reason"])
	}
	if c := checkOf(t, d, "home"); c["has_baseline"] != true {
		t.Errorf("the deploy should have a baseline: %v", c)
	}
	tg.delay.Store(int64(600 * time.Millisecond))
	tg.set("slow")
	d = h.verdict(h.deploy("web", "v2"), 30*time.Second)
	if d["status"] != store.StatusFailed || !strings.Contains(fmt.Sprint(d["reason"]), "baseline.duration_ms") {
		t.Fatalf("slow version: status = %v, reason %v; want failed quoting the baseline assertion", d["status"], d["reason"])
	}
}

// A check that compares with a baseline it does not have says so: inconclusive, never a
// crash or a silent pass; and an inconclusive verdict never rolls back.
func TestNoBaselineIsInconclusiveAndDoesNotRollBack(t *testing.T) {
	tg := newTarget(t)
	hook := alertingtest.NewWebhook(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 3",
		assert: `"duration_ms < baseline.duration_ms * 2"`, service: "on_failure: [rollback]",
		top: "notifiers:" + webhookNotifier("rollback", "rollback", hook)}.String())
	d := h.verdict(h.deploy("web", "v1"), 30*time.Second)
	if d["status"] != store.StatusInconclusive || !strings.Contains(fmt.Sprint(d["reason"]), "no baseline yet") {
		t.Fatalf("status = %v, reason %v; want inconclusive saying there is no baseline", d["status"], d["reason"])
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(hook.Deliveries()); n != 0 {
		t.Errorf("an inconclusive verdict called the rollback webhook %d times", n)
	}
}

// A target that cannot be reached is vigil failing to measure, not the deploy failing:
// errors in a row past the limit make the verdict inconclusive.
func TestErrorsInARowAreInconclusive(t *testing.T) {
	tg := newTarget(t)
	url := tg.srv.URL
	tg.srv.Close()
	h := startAgent(t, "", webConfig{url: url, verify: "interval: 100ms, count: 10, consecutive_error_limit: 2"}.String())
	d := h.verdict(h.deploy("web", "v1"), 30*time.Second)
	if d["status"] != store.StatusInconclusive || !strings.Contains(fmt.Sprint(d["reason"]), "errors in a row") {
		t.Fatalf("status = %v, reason %v", d["status"], d["reason"])
	}
	if c := checkOf(t, d, "home"); c["errors"] != 3.0 {
		t.Errorf("errors = %v; want 3 (the limit of 2 exceeded at the third)", c["errors"])
	}
}

func TestNewDeploySupersedesTheOneVerifying(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 1m, count: 5"}.String())
	first := h.deploy("web", "v1")
	second := h.deploy("web", "v2")
	status, d := h.request("GET", "/api/v1/deploys/"+first, "")
	if status != 200 || d["status"] != store.StatusSuperseded || d["superseded_by"] != second {
		t.Fatalf("first deploy: %d %v; want superseded by %s", status, d, second)
	}
	// The first's long-poll answers at once instead of waiting for a window that was cut.
	start := time.Now()
	h.request("GET", "/api/v1/deploys/"+first+"?wait=20s", "")
	if time.Since(start) > 10*time.Second {
		t.Errorf("long-polling a superseded deploy waited %s", time.Since(start))
	}
	_, d = h.request("GET", "/api/v1/deploys/"+second, "")
	if d["status"] != store.StatusVerifying {
		t.Errorf("second deploy: %v", d["status"])
	}
}

// A verdict reached before a restart is still answered after it, and a verification
// cut off by the restart resumes.
func TestVerdictsSurviveARestart(t *testing.T) {
	tg := newTarget(t)
	dir := t.TempDir()
	// An hour between rounds: a failing deploy fails at once; a good one stays verifying.
	h := startAgent(t, dir, webConfig{url: tg.srv.URL, verify: "interval: 1h, count: 2"}.String())
	tg.set("broken")
	failed := h.deploy("web", "v2")
	if d := h.verdict(failed, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("status = %v", d["status"])
	}
	tg.set("good")
	pending := h.deploy("web", "v3")
	eventually(t, 10*time.Second, "the first round of v3", func() bool {
		runs, _ := h.a.store.DeployRuns(t.Context(), pending)
		return len(runs) == 1
	})
	h.stop()

	h2 := startAgent(t, dir, webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2"}.String())
	status, d := h2.request("GET", "/api/v1/deploys/"+failed, "")
	if status != 200 || d["status"] != store.StatusFailed {
		t.Fatalf("after restart: %d %v", status, d)
	}
	if d := h2.verdict(pending, 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("the resumed verification: status = %v, reason %v", d["status"], d["reason"])
	}
}

// SIGTERM (ctx cancelled) lets runs in flight finish up to shutdown_grace, then cancels
// them: a hung target cannot hold the agent's exit past the grace.
func TestShutdownCancelsHungRunsAfterTheGrace(t *testing.T) {
	var hits atomic.Int64
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hang) })
	h := startAgent(t, "", fmt.Sprintf(`
agent: {shutdown_grace: 500ms}
checks:
  - {name: home, kind: http, every: 1h, timeout: 30s, retries: 0, request: {url: %q}}
services:
  web: {checks: [home], verify: {interval: 1m, count: 2}}
`, srv.URL+"/"))
	h.deploy("web", "v1")
	eventually(t, 10*time.Second, "the run to reach the hung target", func() bool { return hits.Load() > 0 })
	start := time.Now()
	h.stop()
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("shutdown took %s with a 500ms grace and a 30s check timeout", took)
	}
	if !strings.Contains(h.logs.String(), "grace period over, cancelling runs in flight") {
		t.Errorf("the log should say runs were cancelled at the grace:\n%s", h.logs.String())
	}
}
