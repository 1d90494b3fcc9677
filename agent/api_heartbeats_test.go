package agent

import (
	"strings"
	"testing"
)

const heartbeatConfig = `agent: {api_token: s3cret-token}
checks:
  - name: nightly
    kind: heartbeat
    every: 1h
    window: 25h
    token: beat-token-0123456789
  - name: home
    kind: http
    every: 1h
    request: {url: "http://127.0.0.1:1/"}
`

// A job posts beats with its check's own token; everything else is refused with a JSON
// error that says what to fix, and records nothing.
func TestHeartbeatEndpoint(t *testing.T) {
	h := startAgent(t, "", heartbeatConfig)
	beat := func(path, body string, header ...string) (int, map[string]any) {
		t.Helper()
		return h.request("POST", path, body, append([]string{"Authorization", "Bearer beat-token-0123456789"}, header...)...)
	}
	long := `{"version":"` + strings.Repeat("v", 20<<10) + `"}`
	for _, tc := range []struct {
		name, method, path, body string
		header                   []string
		status                   int
		want                     string
	}{
		{"no token", "POST", "/api/v1/heartbeats/nightly", "", []string{"Authorization", ""}, 401, "missing credentials"},
		{"the API token", "POST", "/api/v1/heartbeats/nightly", "", []string{"Authorization", "Bearer s3cret-token"}, 401, "no heartbeat check of that name takes this token"},
		{"wrong token", "POST", "/api/v1/heartbeats/nightly", "", []string{"Authorization", "Bearer beat-token-012345678"}, 401, "takes this token"},
		{"unknown check", "POST", "/api/v1/heartbeats/nightlyy", "", nil, 401, "takes this token"},
		{"not a heartbeat check", "POST", "/api/v1/heartbeats/home", "", nil, 401, "takes this token"},
		{"basic auth", "POST", "/api/v1/heartbeats/nightly", "", []string{"Authorization", "Basic YTpiZWF0LXRva2VuLTAxMjM0NTY3ODk="}, 401, "missing credentials"},
		{"oversized body", "POST", "/api/v1/heartbeats/nightly", long, nil, 413, "larger than"},
		{"malformed JSON", "POST", "/api/v1/heartbeats/nightly", `{"version":`, nil, 400, "malformed JSON"},
		{"unknown field", "POST", "/api/v1/heartbeats/nightly", `{"version":"v2","url":"http://evil.example"}`, nil, 400, `unknown field "url"`},
		{"bad status", "POST", "/api/v1/heartbeats/nightly", `{"status":"maybe"}`, nil, 400, `status must be "ok" or "fail"`},
		{"control characters", "POST", "/api/v1/heartbeats/nightly", `{"version":"v2\u001b[31m"}`, nil, 400, "printable"},
		{"multi-line message", "POST", "/api/v1/heartbeats/nightly", `{"message":"a\nb"}`, nil, 400, "on one line"},
		{"not JSON", "POST", "/api/v1/heartbeats/nightly", `[1]`, nil, 400, "must be a JSON object"},
		{"wrong method", "GET", "/api/v1/heartbeats/nightly", "", nil, 405, "GET is not allowed here"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header := append([]string{"Authorization", "Bearer beat-token-0123456789"}, tc.header...)
			status, out := h.request(tc.method, tc.path, tc.body, header...)
			msg, _ := out["error"].(string)
			if status != tc.status || !strings.Contains(msg, tc.want) {
				t.Errorf("%d %q, want %d %q", status, msg, tc.status, tc.want)
			}
		})
	}
	_, out := h.request("POST", "/api/v1/checks/nightly/run", "")
	if out["outcome"] != "inconclusive" {
		t.Fatalf("after refused beats only: %v", out)
	}

	if status, out := beat("/api/v1/heartbeats/nightly", ""); status != 202 || out["status"] != "ok" {
		t.Fatalf("a plain beat: %d %v", status, out)
	}
	if status, out := beat("/api/v1/heartbeats/nightly", `{"version":"v2","status":"ok","message":"nightly backup done"}`); status != 202 {
		t.Fatalf("a beat with a body: %d %v", status, out)
	}
	_, out = h.request("POST", "/api/v1/checks/nightly/run", "")
	vars, _ := out["vars"].(map[string]any)
	if out["outcome"] != "pass" || vars["beats"] != 2.0 || vars["last_version"] != "v2" {
		t.Fatalf("after two beats: %v", out)
	}
	if strings.Contains(h.logs.String(), "beat-token-0123456789") {
		t.Error("the heartbeat token reached the log")
	}
}
