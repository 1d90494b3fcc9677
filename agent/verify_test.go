package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/store"
)

// webConfig is a service "web" with one HTTP check ("home") against url. verify is the
// service's verify block, service more keys of the service, top more top-level YAML.
type webConfig struct {
	url, verify, service, top, assert, every, retries string
}

func (c webConfig) String() string {
	if c.retries == "" {
		c.retries = "0"
	}
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
    retries: %s
    request: {url: %q}
    assert: [%s]
services:
  web:
    checks: [home]
    verify: {%s}
%s
%s`, c.every, c.retries, c.url+"/", c.assert, c.verify, indent(c.service, "    "), c.top)
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

func webhookNotifier(name, action string, hook *loopback.Webhook) string {
	if action != "" {
		action = "\n    action: " + action // a key written empty is refused: leave it out
	}
	return fmt.Sprintf(`
  %s:
    type: webhook
    url: %s
    secret: %s%s
    max_attempts: 20`, name, hook.URL(), loopback.WebhookSecret, action)
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
	hook := loopback.NewWebhook(t)
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
	// Nothing more arrives: the key's one outbox entry is delivered and nothing with it is
	// pending, so the count read after this is final.
	h.outboxSettled(key, map[string]string{"rollback": store.OutboxDelivered})
	if n := hook.Count(key); n != 1 {
		t.Errorf("the webhook received the rollback %d times; want exactly 1", n)
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
	hook := loopback.NewWebhook(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 3",
		assert: `"duration_ms < baseline.duration_ms * 2"`, service: "on_failure: [rollback, ops]",
		top: "notifiers:" + webhookNotifier("rollback", "rollback", hook) + webhookNotifier("ops", "", hook)}.String())
	id := h.deploy("web", "v1")
	d := h.verdict(id, 30*time.Second)
	if d["status"] != store.StatusInconclusive || !strings.Contains(fmt.Sprint(d["reason"]), "no baseline yet") {
		t.Fatalf("status = %v, reason %v; want inconclusive saying there is no baseline", d["status"], d["reason"])
	}
	assertNoRollback(t, h, id, "rollback", "ops")
}

// assertNoRollback checks, in the store, that the verdict of deploy id queued nothing for
// the rollback notifier, and that it did queue its event for other, which proves the
// verdict's notifications were written (they are written in the verdict's transaction).
func assertNoRollback(t *testing.T, h *harness, id, rollback, other string) {
	t.Helper()
	h.outboxSettled(id+":deploy_failed", map[string]string{}) // nothing at all for a failure that did not happen
	entries, err := h.a.store.Outbox(t.Context(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	sawOther := false
	for _, e := range entries {
		if !strings.HasPrefix(e.Key, id+":") {
			continue
		}
		if e.Notifier == rollback {
			t.Errorf("the verdict queued %s for the rollback webhook (%s)", e.Event, e.Status)
		}
		if e.Notifier == other && e.Event != "deploy_started" {
			sawOther = true
		}
	}
	if !sawOther {
		t.Errorf("the verdict queued nothing for %s either: the test cannot see whether notifications were written", other)
	}
}

// A target that cannot be reached is vigil failing to measure, not the deploy failing:
// errors in a row past the limit make the verdict inconclusive, but only once the window
// is over (a later round could still fail the deploy), and it never rolls back.
func TestErrorsInARowAreInconclusive(t *testing.T) {
	tg := newTarget(t)
	url := tg.srv.URL
	tg.srv.Close()
	hook := loopback.NewWebhook(t)
	h := startAgent(t, "", webConfig{url: url, verify: "interval: 100ms, count: 6, consecutive_error_limit: 2",
		service: "on_failure: [rollback, ops]",
		top:     "notifiers:" + webhookNotifier("rollback", "rollback", hook) + webhookNotifier("ops", "", hook)}.String())
	id := h.deploy("web", "v1")
	d := h.verdict(id, 30*time.Second)
	if d["status"] != store.StatusInconclusive || !strings.Contains(fmt.Sprint(d["reason"]), "6 errors in a row") {
		t.Fatalf("status = %v, reason %v", d["status"], d["reason"])
	}
	if c := checkOf(t, d, "home"); c["errors"] != 6.0 {
		t.Errorf("errors = %v; want 6: errors never end a window while rounds remain", c["errors"])
	}
	assertNoRollback(t, h, id, "rollback", "ops")
}

// Errors while the new version starts, then answers: the window's end judges, and the
// deploy passes when the errors stayed within consecutive_error_limit.
func TestEarlyErrorsThenPassesIsPassed(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			// Not up yet: the connection drops before any answer, which is an error.
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	h := startAgent(t, "", webConfig{url: srv.URL, verify: "interval: 100ms, count: 5, consecutive_error_limit: 2, visitors: 1"}.String())
	d := h.verdict(h.deploy("web", "v1"), 30*time.Second)
	if d["status"] != store.StatusPassed {
		t.Fatalf("status = %v, reason %v; want passed: 2 early errors are within the limit", d["status"], d["reason"])
	}
	if c := checkOf(t, d, "home"); c["errors"] != 2.0 || c["passed"] != 3.0 {
		t.Errorf("errors %v passed %v; want 2 and 3", c["errors"], c["passed"])
	}
}

// verify.initial_delay holds the first round: nothing reaches the target before it.
func TestInitialDelay(t *testing.T) {
	var first atomic.Int64 // unix nanos of the first request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first.CompareAndSwap(0, time.Now().UnixNano())
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	h := startAgent(t, "", webConfig{url: srv.URL, verify: "initial_delay: 1500ms, interval: 100ms, count: 2"}.String())
	start := time.Now()
	d := h.verdict(h.deploy("web", "v1"), 30*time.Second)
	if d["status"] != store.StatusPassed {
		t.Fatalf("status = %v, reason %v", d["status"], d["reason"])
	}
	if at := time.Unix(0, first.Load()); at.Sub(start) < 1500*time.Millisecond {
		t.Errorf("the first request reached the target %s after registration; initial_delay is 1.5s", at.Sub(start))
	}
}

// drainingLB behaves as a load balancer in the middle of a rollout: connections accepted
// before the switch stay on the old pods (200), every connection after it reaches the new
// version, which is broken (500).
type drainingLB struct {
	srv      *httptest.Server
	switched atomic.Bool
	oldHits  atomic.Int64
	newHits  atomic.Int64
}

type connEraKey struct{}

func newDrainingLB(t *testing.T) *drainingLB {
	lb := &drainingLB{}
	lb.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(connEraKey{}).(bool) {
			lb.newHits.Add(1)
			http.Error(w, "new version: broken", http.StatusInternalServerError)
			return
		}
		lb.oldHits.Add(1)
		_, _ = w.Write([]byte("old version: fine"))
	}))
	lb.srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connEraKey{}, lb.switched.Load())
	}
	lb.srv.Start()
	t.Cleanup(lb.srv.Close)
	return lb
}

// A deploy is judged only through connections opened after it was registered. Scheduled
// runs keep a kept-alive connection to the old pods; had the verification reused it, the
// broken new version would have passed.
func TestVerificationOpensFreshConnections(t *testing.T) {
	lb := newDrainingLB(t)
	h := startAgent(t, "", webConfig{url: lb.srv.URL, every: "1s", verify: "interval: 100ms, count: 3"}.String())
	eventually(t, 20*time.Second, "scheduled runs over a kept-alive connection", func() bool {
		runs, err := h.a.store.RecentRuns(t.Context(), "home", time.Now().Add(time.Hour), 1)
		return lb.oldHits.Load() >= 2 && err == nil && len(runs) == 1 && runs[0].Vars["conn_reused"] == true
	})
	lb.switched.Store(true)
	d := h.verdict(h.deploy("web", "v2"), 30*time.Second)
	if d["status"] != store.StatusFailed {
		t.Fatalf("status = %v, reason %v; want failed: every new connection reaches the broken version", d["status"], d["reason"])
	}
	if lb.newHits.Load() == 0 {
		t.Errorf("no request of the verification reached the new version")
	}
	// Scheduled monitoring keeps its kept-alive connections: that is where its CPU goes.
	old := lb.oldHits.Load()
	eventually(t, 20*time.Second, "a scheduled run on the old connection", func() bool { return lb.oldHits.Load() > old })
}

// A deploy that fails fast cancels the runs of its other checks still in flight. Those
// runs measured nothing: they change no metric, no last result and no history, so a
// blackbox-style alert on probe_success does not page for a healthy endpoint.
func TestCancelledRunsAreNotResults(t *testing.T) {
	// broken answers once slow's request has arrived: the verdict then cancels a run in
	// flight, not one still connecting (which the slow server would never see).
	arrived := make(chan struct{})
	var arrive sync.Once
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-arrived:
		case <-time.After(5 * time.Second):
		}
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)
	var cancelled atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrive.Do(func() { close(arrived) })
		select {
		case <-time.After(5 * time.Second):
			_, _ = w.Write([]byte("ok"))
		case <-r.Context().Done():
			cancelled.Add(1)
		}
	}))
	t.Cleanup(slow.Close)
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - {name: broken, kind: http, every: 1h, timeout: 8s, retries: 0, request: {url: %q}}
  - {name: slow, kind: http, every: 1h, timeout: 8s, retries: 0, request: {url: %q}}
services:
  web: {checks: [broken, slow], verify: {interval: 1m, count: 3}}
`, broken.URL+"/", slow.URL+"/"))
	id := h.deploy("web", "v2")
	if d := h.verdict(id, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("status = %v, reason %v", d["status"], d["reason"])
	}
	eventually(t, 10*time.Second, "the slow check's run to be cancelled", func() bool { return cancelled.Load() > 0 })
	h.a.verifyWG.Wait() // every verification goroutine has returned: nothing more is recorded

	if r := h.a.lastResult("slow"); r != nil && r.Outcome != checks.Pass {
		t.Errorf("slow's last result is %s (%s); a cancelled run is not a result", r.Outcome, r.Summary())
	}
	runs, err := h.a.store.DeployRuns(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if r.Check == "slow" {
			t.Errorf("the deploy's history holds a run of slow: %s %v", r.Outcome, r.Reasons)
		}
	}
	mfs, _, err := h.a.gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["check"] != "slow" {
				continue
			}
			switch {
			case mf.GetName() == "probe_success" && m.GetGauge().GetValue() == 0:
				t.Errorf("probe_success{check=slow} = 0 after its run was cancelled")
			case mf.GetName() == "vigil_check_runs_total" && labels["result"] != "pass":
				t.Errorf("vigil_check_runs_total{check=slow,result=%s} = %v after its run was cancelled", labels["result"], m.GetCounter().GetValue())
			}
		}
	}
}

// Many registrations of one service at once: exactly one deploy is left verifying, every
// other one is superseded, none of them keeps running checks, and the gauge agrees.
func TestParallelRegistrationsLeaveOneVerifying(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 1h, count: 2"}.String())
	const n = 200
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := h.a.StartDeploys(t.Context(), DeployRequest{Service: "web", Version: fmt.Sprintf("v%d", i)})
			if err != nil {
				t.Errorf("registration %d: %v", i, err)
				return
			}
			ids <- d[0].ID
		}()
	}
	wg.Wait()
	close(ids)
	verifying := 0
	for id := range ids {
		d, err := h.a.store.Deploy(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status == store.StatusVerifying {
			verifying++
		}
	}
	h.a.mu.Lock()
	inMemory := len(h.a.verify)
	h.a.mu.Unlock()
	if verifying != 1 || inMemory != 1 {
		t.Errorf("%d deploys verifying in the store, %d verifications running; want 1 and 1", verifying, inMemory)
	}
	var m dto.Metric
	if err := h.a.metrics.verifying.Write(&m); err != nil {
		t.Fatal(err)
	}
	if g := m.GetGauge().GetValue(); g != 1 {
		t.Errorf("vigil_deploys_verifying = %v; want 1", g)
	}
	t.Logf("reliability: %d parallel registrations: %d verifying in the store, %d running, gauge %v", n, verifying, inMemory, m.GetGauge().GetValue())
	if strings.Contains(h.logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", h.logs.String())
	}
}
