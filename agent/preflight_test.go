package agent

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// preflightNotes is a preflight answer's notes of one kind ("blocked" or "warnings"), as
// rule -> message.
func preflightNotes(t *testing.T, out map[string]any, kind string) map[string]string {
	t.Helper()
	list, ok := out[kind].([]any)
	if !ok {
		t.Fatalf("preflight answer without %q: %v", kind, out)
	}
	notes := map[string]string{}
	for _, n := range list {
		m := n.(map[string]any)
		notes[m["rule"].(string)] += fmt.Sprint(m["message"]) + " " + fmt.Sprint(m["deploy"]) + " " + fmt.Sprint(m["check"])
	}
	return notes
}

// Seed 004's team kept pushing version B after it made its version-A peers crash. A real
// agent answers a pipeline's preflight from what it has verified: a version that failed
// is blocked wherever it goes next; while the service's newest verdict is a halt, only the
// version to go back to is clear; the rest (a deploy still verifying, a last deploy that
// failed, checks already failing, a silence) are warnings.
func TestPreflight(t *testing.T) {
	web, api, down := newTarget(t), newTarget(t), newTarget(t)
	down.set("broken")
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - {name: home, kind: http, every: 1h, timeout: 2s, retries: 0, request: {url: %q}, assert: ["status == 200"]}
  - {name: api-home, kind: http, every: 1s, timeout: 2s, retries: 0, failure_threshold: 1, request: {url: %q}, assert: ["status == 200"]}
  - {name: down-home, kind: http, every: 1s, timeout: 2s, retries: 0, request: {url: %q}, assert: ["status == 200"]}
services:
  web: {checks: [home], verify: {interval: 100ms, count: 2}}
  api: {checks: [api-home], verify: {interval: 100ms, count: 2, registered_before_rollout: true}}
  down: {checks: [down-home], verify: {interval: 100ms, count: 2}}
`, web.srv.URL+"/", api.srv.URL+"/", down.srv.URL+"/"))
	ask := func(service, version string, want int) map[string]any {
		t.Helper()
		status, out := h.request("GET", "/api/v1/services/"+service+"/preflight?version="+version, "")
		if status != want {
			t.Fatalf("preflight %s %s: %d %v; want %d", service, version, status, out, want)
		}
		if clear := out["clear"] == true; clear != (want == http.StatusOK) {
			t.Fatalf("preflight %s %s: clear %v with status %d", service, version, out["clear"], status)
		}
		return out
	}
	// No run yet (these agents run no check at start): nothing to compare with.
	if warn := preflightNotes(t, ask("web", "v1", http.StatusOK), "warnings"); len(warn) != 1 ||
		!strings.HasPrefix(warn["no_baseline"], "home has no passing run here yet: a deploy now has no baseline for it") {
		t.Errorf("a first deploy: %v; want clear, with one warning: no baseline", warn)
	}
	eventually(t, 20*time.Second, "down-home's first run", func() bool { return h.a.lastResult("down-home") != nil })
	if warn := preflightNotes(t, ask("down", "d1", http.StatusOK), "warnings"); !strings.Contains(warn["no_baseline"], "down-home has no passing run in its last ") {
		t.Errorf("a service whose check never passed: %v; want a no_baseline warning", warn)
	}

	if d := h.verdict(h.deploy("web", "v1"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("v1: %v %v", d["status"], d["reason"])
	}
	web.set("broken")
	failed := h.deploy("web", "v2")
	if d := h.verdict(failed, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("v2: %v %v", d["status"], d["reason"])
	}
	web.set("good")
	blocked := preflightNotes(t, ask("web", "v2", http.StatusConflict), "blocked")
	if m := blocked["version_failed"]; !strings.Contains(m, "web v2 failed verification ") || !strings.Contains(m, failed) ||
		!strings.Contains(m, "in test") || !strings.Contains(m, "status == 200 is false") {
		t.Errorf("v2 again: %v; want it blocked as the version that failed, naming the deploy, its environment and why", blocked)
	}
	if out := ask("web", "v1", http.StatusOK); len(preflightNotes(t, out, "warnings")) != 0 {
		t.Errorf("the rollback to v1: %v; want clear, no warnings", out)
	}
	if page := h.page("/deploys/" + failed); !strings.Contains(page, `<p id="preflight" class="muted">a pipeline&#39;s preflight of web v2 is blocked until a deploy of it passes`) {
		t.Errorf("the failed deploy's page does not say its version is blocked:\n%s", grepLines(page, "preflight"))
	}
	warn := preflightNotes(t, ask("web", "v3", http.StatusOK), "warnings")
	if m := warn["last_deploy_failed"]; !strings.Contains(m, "the last deploy of web, v2, failed ") || !strings.Contains(m, "(v1 is the version a rollback goes back to)") {
		t.Errorf("v3 while v2 is out: %v; want a warning that the last deploy failed", warn)
	}
	if d := h.verdict(h.deploy("web", "v1"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("the rollback: %v %v", d["status"], d["reason"])
	}
	ask("web", "v2", http.StatusConflict) // rolled back, v2 is still the version that failed
	if out := ask("web", "v3", http.StatusOK); len(preflightNotes(t, out, "warnings")) != 0 {
		t.Errorf("v3 after the rollback passed: %v; want clear, no warnings", out)
	}

	// A halt (a fleet's old-version peers crashing as the new version appeared), in another
	// environment: every version but the one to go back to is blocked.
	ctx := t.Context()
	halted := "20261206-120000-0000beef"
	if _, err := h.a.store.CreateDeploy(ctx, &store.Deploy{ID: halted, Service: "web", Version: "v4", Environment: "eu", CreatedAt: time.Now(), Status: store.StatusVerifying}, nil); err != nil {
		t.Fatal(err)
	}
	halt := "3 instances on older versions failed once v4 appeared (1 instances run it); stop the rollout, do not push through it"
	if _, err := h.a.store.(*store.SQLite).DecideDeploy(ctx, &store.Decision{DeployID: halted, Status: store.StatusFailed, Reason: "fleet: 1 failed run", Halt: halt, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	blocked = preflightNotes(t, ask("web", "v5", http.StatusConflict), "blocked")
	if m := blocked["rollout_halted"]; !strings.Contains(m, "the rollout of web v4 was halted ") || !strings.Contains(m, halt) ||
		!strings.Contains(m, "roll back to v1 first") || !strings.Contains(m, halted) {
		t.Errorf("v5 while v4's rollout is halted: %v; want it blocked until the rollback", blocked)
	}
	blocked = preflightNotes(t, ask("web", "v4", http.StatusConflict), "blocked")
	if len(blocked) != 1 || !strings.Contains(blocked["version_failed"], halt) || !strings.Contains(blocked["version_failed"], "in eu") {
		t.Errorf("v4 pushed on: %v; want it blocked once, as the version that failed, with the halt", blocked)
	}
	ask("web", "v1", http.StatusOK)

	// Warnings: a deploy still verifying, a check already failing, a silence.
	verifying := "20261206-120000-0000cafe"
	if _, err := h.a.store.CreateDeploy(ctx, &store.Deploy{ID: verifying, Service: "api", Version: "a1", CreatedAt: time.Now(), Status: store.StatusVerifying}, nil); err != nil {
		t.Fatal(err)
	}
	api.set("broken")
	eventually(t, 20*time.Second, "api-home's incident", func() bool {
		_, out := h.request("GET", "/api/v1/checks", "")
		for _, c := range out["checks"].([]any) {
			if m := c.(map[string]any); m["name"] == "api-home" {
				return m["incident_open"] == true
			}
		}
		return false
	})
	if status, out := h.request("POST", "/api/v1/silences", `{"service":"api","duration":"1h","reason":"failover drill"}`); status != 201 {
		t.Fatalf("silence: %d %v", status, out)
	}
	warn = preflightNotes(t, ask("api", "a2", http.StatusOK), "warnings")
	for rule, want := range map[string]string{
		"verifying":      "api a1 (deploy " + verifying + ") is still being verified",
		"checks_failing": "api-home has been failing for ",
		"muted":          "(failover drill): a failed verdict would be recorded and sent to no one, and no rollback or halt webhook would be called",
	} {
		if !strings.Contains(warn[rule], want) {
			t.Errorf("preflight api a2: %s is %q; want %q", rule, warn[rule], want)
		}
	}
	if !strings.Contains(warn["checks_failing"], "the verdict is inconclusive, not a rollback") || !strings.Contains(warn["checks_failing"], "status == 200 is false") {
		t.Errorf("the failing check's warning says neither what a deploy into it gets nor why it fails: %q", warn["checks_failing"])
	}
	// A service whose deploys are registered after the rollout (the default): a deploy
	// into the outage is judged as any.
	eventually(t, 20*time.Second, "down-home's incident", func() bool {
		h.a.incMu.Lock()
		defer h.a.incMu.Unlock()
		in := h.a.incidents["down-home"]
		return in != nil && in.Open
	})
	if warn := preflightNotes(t, ask("down", "d1", http.StatusOK), "warnings"); !strings.Contains(warn["checks_failing"], "it fails and is rolled back like any failure") {
		t.Errorf("a failing check of a service registered after its rollouts: %v", warn)
	}
	// Once a deploy of the service has failed, the outage may be its doing.
	if _, err := h.a.store.(*store.SQLite).DecideDeploy(ctx, &store.Decision{DeployID: verifying, Status: store.StatusFailed, Reason: "api-home: 1 failed run", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	warn = preflightNotes(t, ask("api", "a2", http.StatusOK), "warnings")
	if !strings.Contains(warn["checks_failing"], "the service's last deploy failed, so the outage may be its doing") || warn["last_deploy_failed"] == "" {
		t.Errorf("after a failed deploy: %v; want the failing check's warning to say a deploy that does not end it is rolled back", warn)
	}
}

// Malformed and hostile preflight requests get a JSON error with the right status.
func TestPreflightBadRequests(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2", top: "agent: {api_token: s3cret-token}"}.String())
	for _, tc := range []struct {
		method, path string
		status       int
		want         string
	}{
		{"GET", "/api/v1/services/web/preflight", 400, "name the version going out: /api/v1/services/web/preflight?version=v2"},
		{"GET", "/api/v1/services/web/preflight?version=%20", 400, "name the version going out"},
		{"GET", "/api/v1/services/web/preflight?version=" + strings.Repeat("v", 201), 400, "at most 200 characters"},
		{"GET", "/api/v1/services/wbe/preflight?version=v2", 422, `unknown service "wbe"; did you mean "web"?`},
		{"GET", "/api/v1/services/" + strings.Repeat("%00", 300) + "/preflight?version=v2", 422, "unknown service"},
		{"POST", "/api/v1/services/web/preflight?version=v2", 405, ""},
		{"GET", "/api/v1/services/web/preflight/x?version=v2", 404, "no such API endpoint"},
	} {
		status, out := h.request(tc.method, tc.path, "")
		if status != tc.status || !strings.Contains(fmt.Sprint(out["error"]), tc.want) {
			t.Errorf("%s %s: %d %v; want %d with %q", tc.method, tc.path, status, out, tc.status, tc.want)
		}
	}
	if status, out := h.request("GET", "/api/v1/services/web/preflight?version=v2", "", "Authorization", "Bearer wrong"); status != http.StatusUnauthorized {
		t.Errorf("a wrong token: %d %v; want 401", status, out)
	}
}
