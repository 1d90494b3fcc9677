package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// flaggerConfig is a service named like Flagger's example canary (podinfo), so the
// documentation's payload works as it is.
func flaggerConfig(targetURL, verify string) string {
	return flaggerHead(targetURL) + fmt.Sprintf(`
services:
  podinfo:
    checks: [home]
    verify: {%s}
`, verify)
}

// flaggerHead is the agent and the one check (home, on targetURL) of every Flagger test.
func flaggerHead(targetURL string) string {
	return fmt.Sprintf(`
agent: {api_token: s3cret-token}
checks:
  - name: home
    kind: http
    every: 1h
    timeout: 2s
    retries: 0
    request: {url: %q}
    assert: ["status == 200"]`, targetURL+"/")
}

// The payload Flagger's documentation shows (docs/gitbook/usage/webhooks.md).
const flaggerDocsPayload = `{
  "name": "podinfo",
  "namespace": "test",
  "phase": "Progressing",
  "checksum": "85d557f47b",
  "metadata": {
    "test":  "all",
    "token":  "16688eb5e9f289f1991c"
  }
}`

// flaggerHookPayload is what Flagger's CallWebhook (pkg/controller/webhook.go) sends: the
// canary's name and namespace, the phase, the checksum of its spec, and the webhook's
// metadata as written in the Canary. Nothing else: not the hook's type, not the weight.
func flaggerHookPayload(name, namespace, phase, checksum string, metadata map[string]string) string {
	b, _ := json.Marshal(map[string]any{"name": name, "namespace": namespace, "phase": phase, "checksum": checksum, "metadata": metadata})
	return string(b)
}

// flaggerEventPayload is what Flagger's CallEventWebhook sends an event hook: its own
// metadata keys first, then the webhook's.
func flaggerEventPayload(checksum string, metadata map[string]string) string {
	md := map[string]string{"eventMessage": "New revision detected! Scaling up podinfo.test", "eventType": "Normal", "timestamp": "1767225600000"}
	for k, v := range metadata {
		if _, ok := md[k]; !ok {
			md[k] = v
		}
	}
	return flaggerHookPayload("podinfo", "test", "Progressing", checksum, md)
}

// flaggerCall posts a payload the way Flagger does: Go's HTTP client, Content-Type
// application/json and no other header; the token is the URL's user info, which the client
// sends as basic auth. It returns the status and the decoded answer.
func flaggerCall(t *testing.T, h *harness, query, token, payload string) (int, map[string]any) {
	t.Helper()
	u, err := url.Parse(h.url + "/api/v1/flagger" + query)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		u.User = url.UserPassword("flagger", token)
	}
	req, err := http.NewRequest("POST", u.String(), strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("the answer is not JSON: %v\n%s", err, raw)
	}
	return resp.StatusCode, out
}

func deploysOf(t *testing.T, h *harness, service string) []any {
	t.Helper()
	_, out := h.request("GET", "/api/v1/deploys?service="+service, "")
	list, _ := out["deploys"].([]any)
	return list
}

func TestFlaggerWebhookLifecycle(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", flaggerConfig(tg.srv.URL, "interval: 100ms, count: 3"))

	if status, out := flaggerCall(t, h, "", "", flaggerDocsPayload); status != http.StatusUnauthorized {
		t.Fatalf("without the token: %d %v", status, out)
	}

	// The first call registers the canary's deploy and answers at once: not yet.
	status, out := flaggerCall(t, h, "", h.token, flaggerDocsPayload)
	if status != http.StatusTooEarly || out["verdict"] != "verifying" || out["version"] != "85d557f47b" || out["service"] != "podinfo" {
		t.Fatalf("first call: %d %v; want 425 verifying podinfo 85d557f47b", status, out)
	}
	first := out["deploy"].(string)
	if s, _ := out["error"].(string); !strings.Contains(s, "verifying podinfo 85d557f47b") {
		t.Errorf("Flagger shows the body in the canary's events; it says %q", s)
	}

	// Later calls for the same checksum read the same deploy; with ?wait they get the verdict.
	status, out = flaggerCall(t, h, "?wait=20s", h.token, flaggerDocsPayload)
	if status != http.StatusOK || out["verdict"] != "passed" || out["deploy"] != first {
		t.Fatalf("second call: %d %v; want 200 passed for deploy %s", status, out, first)
	}
	d := h.verdict(first, 5*time.Second)
	if d["environment"] != "test" || d["version"] != "85d557f47b" {
		t.Errorf("the deploy records the namespace as environment and the checksum as version: %v", d)
	}

	// A new checksum is a new deploy; the broken version fails, and keeps failing.
	tg.set("broken")
	broken := strings.Replace(flaggerDocsPayload, "85d557f47b", "9f3c21aa07", 1)
	status, out = flaggerCall(t, h, "?wait=20s", h.token, broken)
	if status != http.StatusConflict || out["verdict"] != "failed" || out["deploy"] == first {
		t.Fatalf("broken canary: %d %v; want 409 failed with a new deploy", status, out)
	}
	if s, _ := out["error"].(string); !strings.Contains(s, "vigil's verdict on podinfo 9f3c21aa07 is failed: ") {
		t.Errorf("the failure does not say why: %q", s)
	}
	failed := out["deploy"]
	status, out = flaggerCall(t, h, "", h.token, broken)
	if status != http.StatusConflict || out["deploy"] != failed {
		t.Errorf("calling again: %d %v; want the same failed deploy %v", status, out, failed)
	}

	// Going back to the first checksum (A, B, A) is a deploy again: it must be verified,
	// not answered with A's old verdict.
	tg.set("good")
	status, out = flaggerCall(t, h, "", h.token, flaggerDocsPayload)
	if status != http.StatusTooEarly || out["deploy"] == first {
		t.Errorf("A after B: %d %v; want a new deploy, verifying", status, out)
	}
	if n := len(deploysOf(t, h, "podinfo")); n != 3 {
		t.Errorf("%d deploys registered; want 3 (A, B, A again)", n)
	}
}

// Flagger sends the webhook's metadata as written, and its extra keys (cmd, a load
// tester's) are none of vigil's business; metadata.type names the hook, since Flagger's
// payload does not.
func TestFlaggerWebhookFullPayload(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", flaggerConfig(tg.srv.URL, "interval: 100ms, count: 2"))
	payload := flaggerHookPayload("shop", "prod", "Progressing", "5d8fb6bdf5", map[string]string{"service": "podinfo", "type": "pre-rollout", "cmd": "ignored"})
	status, out := flaggerCall(t, h, "?wait=20s", h.token, payload)
	if status != http.StatusOK || out["verdict"] != "passed" || out["service"] != "podinfo" {
		t.Fatalf("%d %v; want 200 passed for the service named in metadata", status, out)
	}
	if u, _ := out["url"].(string); !strings.HasSuffix(u, "/deploys/"+out["deploy"].(string)) {
		t.Errorf("url %q does not link the deploy", u)
	}
	for _, typ := range []string{"rollout", "confirm-traffic-increase", "confirm-promotion", ""} {
		md := map[string]string{"service": "podinfo"}
		if typ != "" {
			md["type"] = typ
		}
		status, out := flaggerCall(t, h, "", h.token, flaggerHookPayload("shop", "prod", "Progressing", "5d8fb6bdf5", md))
		if status != http.StatusOK {
			t.Errorf("a %q hook of the same canary: %d %v; want 200", typ, status, out)
		}
	}
	if n := len(deploysOf(t, h, "podinfo")); n != 1 {
		t.Errorf("%d deploys; every hook of one canary should share one", n)
	}
}

func TestFlaggerWebhookRefuses(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", flaggerConfig(tg.srv.URL, "interval: 1m, count: 2"))
	typed := func(typ, phase string) string {
		return flaggerHookPayload("podinfo", "test", phase, "85d557f47b", map[string]string{"type": typ})
	}
	cases := []struct {
		name, query, payload string
		header               []string
		status               int
		want                 string
	}{
		{"an event hook, as Flagger calls it", "", flaggerEventPayload("85d557f47b", nil), nil, 400, "a event webhook cannot gate on vigil"},
		{"an event hook with the webhook's metadata", "", flaggerEventPayload("85d557f47b", map[string]string{"service": "podinfo"}), nil, 400, "a event webhook cannot gate on vigil"},
		{"a rollback hook (2xx would mean roll back)", "", typed("rollback", "Progressing"), nil, 400, "a rollback webhook cannot gate"},
		{"a rollback hook while waiting", "", typed("rollback", "Waiting"), nil, 400, "a rollback webhook cannot gate"},
		{"confirm-rollout (the canary is not up yet)", "", typed("confirm-rollout", "Progressing"), nil, 400, "confirm-rollout webhook cannot gate"},
		{"an event hook as the canary fails", "", strings.Replace(flaggerEventPayload("85d557f47b", nil), "Progressing", "Failed", 1), nil, 400, "a event webhook cannot gate"},
		{"a gate hook after the analysis", "", typed("confirm-promotion", "Succeeded"), nil, 400, "its analysis is over"},
		{"post-rollout while progressing", "", typed("post-rollout", "Progressing"), nil, 400, "is metadata.type right?"},
		{"no checksum (Flagger before checksums)", "", `{"name":"podinfo","namespace":"test","phase":"Progressing","metadata":{}}`, nil, 400, "name and checksum are required"},
		{"a checksum of 201 bytes", "", flaggerHookPayload("podinfo", "test", "Progressing", strings.Repeat("a", 201), nil), nil, 400, "checksum is at most 200 characters"},
		{"a checksum with a newline", "", flaggerHookPayload("podinfo", "test", "Progressing", "85d5\n57f47b", nil), nil, 400, "checksum is at most 200 characters of one line"},
		{"a version of 201 bytes", "", flaggerHookPayload("podinfo", "test", "Progressing", "1", map[string]string{"version": strings.Repeat("v", 201)}), nil, 400, "at most 200 characters"},
		{"metadata that is not strings", "", `{"name":"podinfo","checksum":"1","metadata":{"n":1}}`, nil, 400, "not a Flagger webhook payload"},
		{"unknown service", "", strings.Replace(flaggerDocsPayload, `"podinfo"`, `"podinf"`, 1), nil, 422, `unknown service "podinf"; did you mean "podinfo"?`},
		{"not JSON", "", flaggerDocsPayload, []string{"Content-Type", "text/plain"}, 415, "send JSON"},
		{"bad wait", "?wait=forever", flaggerDocsPayload, nil, 400, "wait must be a duration"},
		{"wrong method", "", "", nil, 405, "GET is not allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := "POST"
			if tc.status == 405 {
				method = "GET"
			}
			status, out := h.request(method, "/api/v1/flagger"+tc.query, tc.payload, tc.header...)
			msg, _ := out["error"].(string)
			if status != tc.status || !strings.Contains(msg, tc.want) {
				t.Errorf("%d %q; want %d and %q", status, msg, tc.status, tc.want)
			}
		})
	}
	if n := len(deploysOf(t, h, "podinfo")); n != 0 {
		t.Errorf("refused calls registered %d deploys", n)
	}
}

// Flagger retries a call that timed out while the first still waits: however many arrive
// at once, one canary checksum is one deploy.
func TestFlaggerWebhookConcurrentCalls(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", flaggerConfig(tg.srv.URL, "interval: 1m, count: 2"))
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", h.url+"/api/v1/flagger", strings.NewReader(flaggerDocsPayload))
			req.SetBasicAuth("flagger", h.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var out map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&out)
			ids[i], _ = out["deploy"].(string)
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("concurrent calls answered with deploys %v; want one", ids)
		}
	}
	if n := len(deploysOf(t, h, "podinfo")); n != 1 {
		t.Errorf("%d deploys registered by concurrent calls; want 1", n)
	}
}

// A registration the store cannot take now (locked, full) is a 503 with Retry-After, not
// a 500: Flagger calls again after its interval, and that call registers the canary once.
func TestFlaggerWebhookStoreRefused(t *testing.T) {
	dir := t.TempDir()
	st := &refusingRegistrations{Store: openSQLite(t, dir)}
	tg := newTarget(t)
	h := startAgentWith(t, dir, flaggerConfig(tg.srv.URL, "interval: 100ms, count: 2"), Options{Store: st})
	st.refusing.Store(true)
	req, _ := http.NewRequest("POST", h.url+"/api/v1/flagger", strings.NewReader(flaggerDocsPayload))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("flagger", h.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(raw), "database is locked") || !strings.Contains(string(raw), "Flagger calls again") {
		t.Fatalf("refused by the store: %d, Retry-After %q, %s; want 503 with Retry-After saying why", resp.StatusCode, resp.Header.Get("Retry-After"), raw)
	}
	if n := len(deploysOf(t, h, "podinfo")); n != 0 {
		t.Fatalf("%d deploys after the refusal; want none", n)
	}
	st.refusing.Store(false)
	if status, out := flaggerCall(t, h, "?wait=20s", h.token, flaggerDocsPayload); status != http.StatusOK || out["verdict"] != "passed" {
		t.Fatalf("called again once the store takes it: %d %v; want 200 passed", status, out)
	}
	if n := len(deploysOf(t, h, "podinfo")); n != 1 {
		t.Errorf("%d deploys; want the canary's one", n)
	}
}

// Flagger calls a rollout hook at every analysis step, and again while it waits: each
// call is the same canary's deploy, none registers another or restarts its verification.
func TestFlaggerWebhookCalledEveryStep(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", flaggerConfig(tg.srv.URL, "interval: 100ms, count: 6"))
	payload := flaggerHookPayload("podinfo", "test", "Progressing", "85d557f47b", map[string]string{"type": "rollout"})
	var first string
	for i := range 12 {
		status, out := flaggerCall(t, h, "", h.token, payload)
		if first == "" {
			first, _ = out["deploy"].(string)
		}
		if (status != http.StatusTooEarly && status != http.StatusOK) || out["deploy"] != first {
			t.Fatalf("call %d: %d %v; want 425 or 200 for deploy %s", i, status, out, first)
		}
	}
	if status, out := flaggerCall(t, h, "?wait=20s", h.token, payload); status != http.StatusOK || out["deploy"] != first {
		t.Fatalf("last call: %d %v; want 200 passed for deploy %s", status, out, first)
	}
	d := h.verdict(first, 5*time.Second)
	checks, _ := d["checks"].([]any)
	if len(checks) != 1 || checks[0].(map[string]any)["runs"] != float64(6) {
		t.Errorf("the verification ran %v; want one check with its 6 rounds, not restarted", d["checks"])
	}
	if n := len(deploysOf(t, h, "podinfo")); n != 1 {
		t.Errorf("%d deploys after 13 calls of one canary; want 1", n)
	}
}
