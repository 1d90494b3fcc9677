package agent

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// cancelConfig has two services on one check, both paging and rolling back on failure,
// with an initial_delay that leaves a moment to cancel before the first round.
func cancelConfig(tg *target, pd *loopback.PagerDuty, hook *loopback.Webhook) string {
	return webConfig{url: tg.srv.URL, verify: "initial_delay: 1s, interval: 200ms, count: 2",
		service: "on_failure: [pager, rollback]",
		top: `  api:
    checks: [home]
    verify: {initial_delay: 1s, interval: 200ms, count: 2}
    on_failure: [pager, rollback]
notifiers:` + pagerDutyNotifier(pd) + webhookNotifier("rollback", "rollback", hook)}.String()
}

// Argo Rollouts aborted the rollout (or a person rolled back, or the pipeline was cancelled):
// the deploy is cancelled. Its verification stops with no run recorded, its long-polls
// answer "cancelled", and nothing is sent: the same failure without the cancel pages and
// calls the rollback webhook (web v2, api v1 here). A deploy that failed before the cancel
// keeps its verdict (409): the page people got stays open, and the next deploy that passes
// resolves it, the cancelled one between them notwithstanding.
func TestACancelledDeployCallsNoRollback(t *testing.T) {
	tg := newTarget(t)
	pd := loopback.NewPagerDuty(t)
	hook := loopback.NewWebhook(t)
	h := startAgent(t, "", cancelConfig(tg, pd, hook))
	tg.set("broken")

	v2 := h.deploy("web", "v2")
	if d := h.verdict(v2, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("web v2: %v %v; want failed", d["status"], d["reason"])
	}
	h.outboxSettled(v2+":deploy_failed", map[string]string{"pager": store.OutboxDelivered, "rollback": store.OutboxDelivered})
	if n := hook.Count(v2 + ":deploy_failed"); n != 1 {
		t.Fatalf("web v2 failed without a cancel: %d rollback calls; want 1", n)
	}
	page := pd.Events()[0].DedupKey

	// People were paged for v2; the rollout's abort comes after: v2's verdict stands.
	status, out := h.request("POST", "/api/v1/deploys/"+v2+"/cancel", `{"reason":"Argo Rollouts aborted web"}`)
	if status != http.StatusConflict || out["verdict"] != store.StatusFailed || out["deploy"] == nil || !strings.Contains(str(out["error"]), "decided before the cancel") {
		t.Errorf("cancelling the failed v2: %d %v; want 409 with its verdict, failed", status, out)
	}

	v3 := h.deploy("web", "v3")
	waited := make(chan map[string]any, 1)
	go func() { // gate's and Argo's long-poll
		_, d := h.held("GET", "/api/v1/deploys/"+v3+"?wait=30s", "")
		waited <- d
	}()
	status, out = h.request("POST", "/api/v1/deploys/"+v3+"/cancel", `{"reason":"Argo Rollouts aborted web"}`)
	if status != http.StatusOK || out["status"] != store.StatusCancelled || out["reason"] != "cancelled: Argo Rollouts aborted web" {
		t.Fatalf("cancelling v3: %d %v; want 200, cancelled, with the reason", status, out)
	}
	select {
	case d := <-waited:
		if d["status"] != store.StatusCancelled {
			t.Errorf("the long-poll answered %v; want cancelled", d["status"])
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the long-poll did not answer within 20s of the cancel")
	}
	if status, again := h.request("POST", "/api/v1/deploys/"+v3+"/cancel", ""); status != http.StatusOK || again["status"] != store.StatusCancelled {
		t.Errorf("cancelling v3 again: %d %v; want 200, cancelled, as the first time", status, again)
	}

	// The same failure, not cancelled, on another service registered after v3: by its
	// verdict v3's would have come, had it gone on.
	api := h.deploy("api", "v1")
	if d := h.verdict(api, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("api v1: %v %v; want failed", d["status"], d["reason"])
	}
	h.outboxSettled(api+":deploy_failed", map[string]string{"pager": store.OutboxDelivered, "rollback": store.OutboxDelivered})
	for _, key := range []string{v3 + ":deploy_failed", v3 + ":deploy_inconclusive", v3 + ":deploy_halted"} {
		if entries, err := h.a.store.OutboxByKey(t.Context(), key); err != nil || len(entries) > 0 || hook.Count(key) > 0 {
			t.Errorf("the cancelled deploy sent %s: %s (%v), %d webhook calls", key, describeOutbox(entries), err, hook.Count(key))
		}
	}
	if runs, err := h.a.store.DeployRuns(t.Context(), v3); err != nil || len(runs) > 0 {
		t.Errorf("the cancelled deploy has %d runs recorded (%v); want none: its verification stopped", len(runs), err)
	}
	if d, _ := h.a.store.Deploy(t.Context(), v3); d.Status != store.StatusCancelled {
		t.Errorf("v3 is %s; want cancelled", d.Status)
	}

	deployPage := h.page("/deploys/" + v3)
	for _, want := range []string{`<span class="pill muted" id="verdict">cancelled</span>`, "cancelled: Argo Rollouts aborted web", " after it was registered</div>", `<div class="v" id="took">cancelled `} {
		if !strings.Contains(deployPage, want) {
			t.Errorf("the cancelled deploy's page lacks %q", want)
		}
	}
	if index := h.page("/"); !strings.Contains(index, "deploy of web cancelled") {
		t.Errorf("the timeline does not show the cancel")
	}
	if m := getOK(t, h.url+"/metrics"); !strings.Contains(m, `vigil_deploy_verdicts_total{service="web",verdict="cancelled"} 1`) {
		t.Errorf("/metrics does not count the cancel as web's verdict cancelled")
	}

	if !pd.Open(page) {
		t.Fatal("v2's page was resolved by a cancel; it stays open until a deploy passes")
	}
	tg.set("good")
	if d := h.verdict(h.deploy("web", "v4"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("web v4: %v %v", d["status"], d["reason"])
	}
	eventually(t, 30*time.Second, "v2's page resolved by the deploy that passed", func() bool { return !pd.Open(page) })
}

func str(v any) string { s, _ := v.(string); return s }

// held is h.request for a goroutine (a call held by a long-poll): it fails nothing, and
// answers a nil map when the request fails.
func (h *harness) held(method, path, body string) (int, map[string]any) {
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// Every malformed or hostile cancel is a JSON error with the status that says what to fix,
// and cancels nothing; a cancel by service and version finds the deploy verifying that
// version, and no other.
func TestCancelRequests(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "initial_delay: 1m, interval: 1s, count: 2"}.String()+
		"agent: {api_token: s3cret-token}\n")
	v1 := h.deploy("web", "v1")
	v2 := h.deploy("web", "v2") // supersedes v1
	long := strings.Repeat("x", maxCancelReason+1)
	for _, c := range []struct {
		method, path, body string
		header             []string
		status             int
		want               string
	}{
		{"POST", "/api/v1/deploys/20260101-000000-00000000/cancel", "", nil, 404, "no deploy"},
		{"GET", "/api/v1/deploys/" + v2 + "/cancel", "", nil, 405, "use POST"},
		{"POST", "/api/v1/deploys/" + v2 + "/cancel", "", []string{"Authorization", ""}, 401, "missing credentials"},
		{"POST", "/api/v1/deploys/" + v2 + "/cancel", "", []string{"Authorization", "Bearer wrong"}, 401, "wrong token"},
		{"POST", "/api/v1/deploys/" + v2 + "/cancel", `{"reason":`, nil, 400, "malformed JSON"},
		{"POST", "/api/v1/deploys/" + v2 + "/cancel", `{"reason":"a"} {}`, nil, 400, "one object"},
		{"POST", "/api/v1/deploys/" + v2 + "/cancel", `{"reason":"a","reason":"b"}`, nil, 400, "given twice"},
		{"POST", "/api/v1/deploys/" + v2 + "/cancel", `{"why":"a"}`, nil, 400, "unknown field"},
		{"POST", "/api/v1/deploys/" + v2 + "/cancel", `{"reason":5}`, nil, 400, "must be string"},
		{"POST", "/api/v1/deploys/" + v2 + "/cancel", `[]`, nil, 400, "JSON object"},
		{"POST", "/api/v1/deploys/" + v2 + "/cancel", `{"reason":"` + long + `"}`, nil, 400, "at most 500 bytes"},
		{"POST", "/api/v1/deploys/" + v2 + "/cancel", `{"reason":"a\u001b[2Jb"}`, nil, 400, "control characters"},
		{"POST", "/api/v1/deploys/" + v2 + "/cancel", `{"reason":"a\nb"}`, nil, 400, "control characters"},
		{"POST", "/api/v1/deploys/" + v2 + "/cancel", `{"version":"v2"}`, nil, 400, "send only a reason"},
		{"POST", "/api/v1/deploys/" + v2 + "/cancel", `{}`, []string{"Content-Type", "text/plain"}, 415, "Content-Type: application/json"},
		{"POST", "/api/v1/deploys/" + v2 + "/cancel", `{"reason":"` + strings.Repeat("x", 2<<20) + `"}`, nil, 413, "larger than"},
		{"POST", "/api/v1/deploys/" + v2 + "/cancel", "", []string{"Origin", "https://evil.example"}, 403, "another site"},
		{"POST", "/api/v1/services/web/deploys/cancel", "", nil, 400, "empty body"},
		{"POST", "/api/v1/services/web/deploys/cancel", `{"reason":"aborted"}`, nil, 400, "version is required"},
		{"POST", "/api/v1/services/web/deploys/cancel", `{"version":"` + long + `"}`, nil, 400, "at most 200"},
		{"POST", "/api/v1/services/web/deploys/cancel", `{"version":"v2","reason":"` + long + `"}`, nil, 400, "at most 500 bytes"},
		{"POST", "/api/v1/services/wbe/deploys/cancel", `{"version":"v2"}`, nil, 404, `did you mean "web"`},
		{"POST", "/api/v1/services/web/deploys/cancel", `{"version":"v9"}`, nil, 404, "the one verifying is v2 (deploy " + v2},
		{"POST", "/api/v1/services/web/deploys/cancel", `{"version":"v1"}`, nil, 409, "superseded"},
	} {
		status, out := h.request(c.method, c.path, c.body, append([]string{"Content-Type", "application/json"}, c.header...)...)
		if status != c.status || out["status"] != float64(c.status) || !strings.Contains(str(out["error"]), c.want) {
			t.Errorf("%s %s %.60q %v: %d %v; want a JSON %d saying %q", c.method, c.path, c.body, c.header, status, out, c.status, c.want)
		}
	}
	if d, _ := h.a.store.Deploy(t.Context(), v2); d.Status != store.StatusVerifying {
		t.Fatalf("v2 is %s after the refused cancels; want verifying", d.Status)
	}
	if d, _ := h.a.store.Deploy(t.Context(), v1); d.Status != store.StatusSuperseded {
		t.Fatalf("v1 is %s; want superseded, as before", d.Status)
	}

	// Argo Rollouts' notification: the service and the version it knows.
	status, out := h.request("POST", "/api/v1/services/web/deploys/cancel", `{"version":"v2","reason":"rollout shop aborted"}`)
	if status != http.StatusOK || out["id"] != v2 || out["status"] != store.StatusCancelled || out["reason"] != "cancelled: rollout shop aborted" {
		t.Errorf("cancel by service and version: %d %v; want 200, deploy %s cancelled", status, out, v2)
	}
	if status, out := h.request("POST", "/api/v1/services/web/deploys/cancel", `{"version":"v2"}`); status != http.StatusOK || out["id"] != v2 {
		t.Errorf("the same cancel again: %d %v; want 200 with the same deploy", status, out)
	}
	if status, out := h.request("GET", "/api/v1/deploys?status=cancelled", ""); status != 200 || len(out["deploys"].([]any)) != 1 {
		t.Errorf("listing the cancelled deploys: %d %v; want v2", status, out)
	}
}

// Flagger's call held by ?wait is answered when the deploy is cancelled, and every call
// after it: 409, verdict cancelled (Flagger counts a failed check; the canary goes no
// further).
func TestFlaggerWaitSeesACancel(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "initial_delay: 1m, interval: 1s, count: 2"}.String())
	payload := `{"name":"web","namespace":"prod","phase":"Progressing","checksum":"7c9f8c8b4","metadata":{"type":"pre-rollout"}}`
	if status, out := h.request("POST", "/api/v1/flagger", payload, "Content-Type", "application/json"); status != http.StatusTooEarly {
		t.Fatalf("the first call: %d %v; want 425 verifying", status, out)
	}
	answered := make(chan map[string]any, 1)
	go func() {
		status, out := h.held("POST", "/api/v1/flagger?wait=30s", payload)
		out["http"] = float64(status)
		answered <- out
	}()
	// Whether the cancel lands while the call is held or just before it, the answer is the same.
	if status, out := h.request("POST", "/api/v1/services/web/deploys/cancel", `{"version":"7c9f8c8b4","reason":"canary called off"}`); status != http.StatusOK {
		t.Fatalf("cancel: %d %v", status, out)
	}
	select {
	case out := <-answered:
		if out["http"] != float64(http.StatusConflict) || out["verdict"] != store.StatusCancelled {
			t.Errorf("Flagger's held call: %v; want 409, verdict cancelled", out)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Flagger's held call was not answered within 20s of the cancel")
	}
}
