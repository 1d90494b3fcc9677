package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Text a caller or a target chooses (a deploy's version, environment, commit and links, a
// silence's reason, a label, a failing answer quoted in a reason) is shown on the status
// pages and badges as text: it never becomes markup, a script or a link elsewhere.
func TestHostileTextIsInertOnThePages(t *testing.T) {
	const script = `<script>alert(1)</script>`
	const attr = `"><img src=x onerror=alert(2)>`
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, script+attr)
	}))
	defer target.Close()
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - name: home
    kind: http
    every: 1h
    timeout: 2s
    retries: 0
    labels: {team: %q}
    request: {url: %q}
    assert: ["status == 200", "body contains \"welcome\""]
services:
  web:
    checks: [home]
    verify: {interval: 1m, count: 2}
`, script+attr, target.URL+"/"))
	status, out := h.request("POST", "/api/v1/deploys", fmt.Sprintf(`{"service":"web","version":%q,"environment":%q,"commit":%q,
		"links":[{"name":%q,"url":"https://ci.example/runs/7?q=%%22%%3E%%3Cscript%%3E"}]}`, script, attr, script, attr))
	if status != http.StatusAccepted {
		t.Fatalf("registering: %d %v", status, out)
	}
	dep := out["id"].(string)
	if status, out := h.request("POST", "/api/v1/silences", fmt.Sprintf(`{"service":"web","duration":"1h","reason":%q,"created_by":%q}`, script, attr)); status != 201 {
		t.Fatalf("silence: %d %v", status, out)
	}
	status, out = h.request("POST", "/api/v1/checks/home/run", "")
	if status != 200 || out["outcome"] != "fail" {
		t.Fatalf("run: %d %v", status, out)
	}
	run := strings.TrimPrefix(out["run_url"].(string), h.url)
	pages := []string{"/", "/?q=team%3D" + strings.ReplaceAll(script, "<", "%3C"), "/?group=label%3Ateam", "/checks/home", "/checks/home?range=7d",
		"/deploys/" + dep, run, "/badges/home/health.svg?label=" + strings.ReplaceAll(script, "<", "%3C")}
	shown := 0
	for _, p := range pages {
		resp, body := send(t, "GET", h.url+p, "")
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d %.200s", p, resp.StatusCode, body)
		}
		// No script and nothing from elsewhere: the headers forbid it as well.
		csp := "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
		if strings.HasSuffix(p, ".svg") || strings.Contains(p, ".svg?") {
			csp = "default-src 'none'; style-src 'unsafe-inline'"
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != csp {
			t.Errorf("%s: Content-Security-Policy %q, want %q", p, got, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: X-Content-Type-Options %q, X-Frame-Options %q", p, resp.Header.Get("X-Content-Type-Options"), resp.Header.Get("X-Frame-Options"))
		}
		for _, far := range []string{`src="http`, `src="//`, `href="//`, `rel="stylesheet"`} {
			if strings.Contains(body, far) {
				t.Errorf("%s loads something (%s): the page is to need nothing from elsewhere", p, far)
			}
		}
		for _, bad := range []string{"<script", "<img src=x"} {
			if i := strings.Index(body, bad); i >= 0 {
				t.Errorf("%s holds %q raw: …%s…", p, bad, body[max(0, i-80):min(len(body), i+80)])
			}
		}
		shown += strings.Count(body, "&lt;script&gt;alert(1)")
	}
	if shown < len(pages) {
		t.Errorf("the hostile text was shown escaped %d times over %d pages; the test did not reach it everywhere", shown, len(pages))
	}
}
