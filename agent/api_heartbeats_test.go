package agent

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
		{"oversized body", "POST", "/api/v1/heartbeats/nightly", long, nil, 413, "larger than 16384 bytes"},
		{"the job's own time", "POST", "/api/v1/heartbeats/nightly", `{"at":"2020-01-01T00:00:00Z"}`, nil, 400, `unknown field "at"`},
		{"binary body", "POST", "/api/v1/heartbeats/nightly", "\x00\xff\xfe\x89PNG\r\n", nil, 400, "malformed JSON"},
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

	// The beats are in the store: the agent restarted on it reads them at once, where a
	// record in memory would wait a window (25h) for a new beat.
	h.stop()
	h = startAgent(t, h.dir, heartbeatConfig)
	_, out = h.request("POST", "/api/v1/checks/nightly/run", "")
	vars, _ = out["vars"].(map[string]any)
	if out["outcome"] != "pass" || vars["beats"] != 2.0 || vars["last_version"] != "v2" {
		t.Fatalf("after a restart: %v", out)
	}
}

// A beat the store cannot keep is not acknowledged: the job is told to post it again
// (503, Retry-After), readiness names the failing writes, and the check reports the store's
// error rather than judging the job.
func TestHeartbeatStoreFailure(t *testing.T) {
	dir := t.TempDir()
	h := startAgent(t, dir, heartbeatConfig)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "vigil.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DROP TABLE beats`); err != nil { // another process broke the store
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", h.url+"/api/v1/heartbeats/nightly", nil)
	req.Header.Set("Authorization", "Bearer beat-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || !strings.Contains(string(body), "post it again") {
		t.Fatalf("a beat the store refused: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if status, out := h.request("GET", "/readyz", ""); status != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(out), "saving beats") {
		t.Errorf("/readyz with beats failing: %d %v", status, out)
	}
	_, out := h.request("POST", "/api/v1/checks/nightly/run", "")
	if out["outcome"] != "error" || !strings.Contains(fmt.Sprint(out), "reading the check's beats from the store") {
		t.Errorf("a run that cannot read the beats: %v", out)
	}
}

// A deploy that requires a beat from its own version: while only the old version beats,
// the verification fails once a window has passed since the deploy; when the new version
// beats, it passes.
func TestHeartbeatDeployRequiresItsVersion(t *testing.T) {
	h := startAgent(t, "", `agent: {api_token: s3cret-token}
checks:
  - name: worker
    kind: heartbeat
    every: 1s
    window: 2s
    token: beat-token-0123456789
    require_deploy_version: true
services:
  jobs:
    checks: [worker]
    verify: {interval: 250ms, count: 16}
`)
	var version atomic.Value
	version.Store("v1")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { // the worker: a beat every 100ms, reporting the version it runs
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				req, _ := http.NewRequestWithContext(ctx, "POST", h.url+"/api/v1/heartbeats/worker",
					strings.NewReader(fmt.Sprintf(`{"version":%q}`, version.Load())))
				req.Header.Set("Authorization", "Bearer beat-token-0123456789")
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })

	d := h.verdict(h.deploy("jobs", "v2"), time.Minute)
	if d["status"] != "failed" || !strings.Contains(fmt.Sprint(d), "no beat from version v2") {
		t.Fatalf("a deploy whose version never beat: %v", d)
	}
	version.Store("v3")
	d = h.verdict(h.deploy("jobs", "v3"), time.Minute)
	if d["status"] != "passed" {
		t.Fatalf("a deploy whose version beats: %v", d)
	}
}
