package agent

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"strings"
	"testing"
)

// namesConfig has a service web of one check, home, and a heartbeat check, nightly.
func namesConfig(url string) string {
	return `agent: {api_token: s3cret-token}
checks:
  - name: home
    kind: http
    every: 1h
    request: {url: "` + url + `/"}
  - name: nightly
    kind: heartbeat
    every: 1h
    window: 25h
    token: beat-token-0123456789
services:
  web:
    checks: [home]
    verify: {interval: 1m, count: 2}
`
}

// Every answer that names a check or a service the config does not have, API or page,
// says so in the same words with the nearest name (as a deploy's registration always
// did), under its endpoint's documented status: a typo is fixed from the message, not by
// reading the config. A heartbeat with another check's token is told that check's name,
// and one with a wrong token no name at all.
func TestAnUnknownNameIsAnsweredWithTheNearest(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", namesConfig(tg.srv.URL))
	const (
		service = `unknown service "wbe"; did you mean "web"?`
		check   = `unknown check "hom"; did you mean "home"?`
	)
	beat := func(token string) []string { return []string{"Authorization", "Bearer " + token} }
	for _, c := range []struct {
		name, method, path, body string
		header                   []string
		status                   int
		want, not                string
	}{
		{"silence of a service", "POST", "/api/v1/silences", `{"service":"wbe","duration":"1h","reason":"load test"}`, nil, 422, service, ""},
		{"silence of a check", "POST", "/api/v1/silences", `{"check":"hom","duration":"1h","reason":"load test"}`, nil, 422, check, ""},
		{"run a check", "POST", "/api/v1/checks/hom/run", "", nil, 404, check, ""},
		{"register a deploy", "POST", "/api/v1/deploys", `{"service":"wbe","version":"v2"}`, nil, 422, service, ""},
		{"cancel by service", "POST", "/api/v1/services/wbe/deploys/cancel", `{"version":"v2"}`, nil, 404, service, ""},
		{"preflight", "GET", "/api/v1/services/wbe/preflight?version=v2", "", nil, 422, service, ""},
		{"deploys of a service", "GET", "/api/v1/deploys?service=wbe", "", nil, 422, service, ""},
		{"deploys by status", "GET", "/api/v1/deploys?status=faild", "", nil, 400, `not "faild"; did you mean "failed"?`, ""},
		{"outbox by state", "GET", "/api/v1/outbox?state=dea", "", nil, 400, `not "dea"; did you mean "dead"?`, ""},
		{"beat with the check's token", "POST", "/api/v1/heartbeats/nightlyy", "", beat("beat-token-0123456789"), 401, `did you mean "nightly"?`, ""},
		{"beat with a wrong token", "POST", "/api/v1/heartbeats/nightlyy", "", beat("beat-token-x"), 401, "takes this token", "nightly\""},
		{"shields badge", "GET", "/badges/hom/shields.json", "", nil, 404, check, ""},
		{"SVG badge", "GET", "/badges/hom/health.svg", "", nil, 200, check, ""}, // still an image (badges.go)
		{"SVG badge asked as JSON", "GET", "/badges/hom/health.svg", "", []string{"Accept", "application/json"}, 404, check, ""},
		{"check page", "GET", "/checks/hom", "", nil, 404, check, ""},
		{"search", "GET", "/?q=wbe", "", nil, 200, `No check matches “wbe”: did you mean <a id="did-you-mean" href="/?q=web">web</a>?`, ""},
		{"search of two terms", "GET", "/?q=http+hmoe", "", nil, 200, `did you mean <a id="did-you-mean" href="/?q=http&#43;home">http home</a>?`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, h.url+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer s3cret-token")
			for i := 0; i+1 < len(c.header); i += 2 {
				req.Header.Set(c.header[i], c.header[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			msg := string(raw)
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				var out struct {
					Error  string
					Status int
				}
				if err := json.Unmarshal(raw, &out); err != nil || out.Status != c.status {
					t.Errorf("the JSON error %s: %v; want its status %d", raw, err, c.status)
				}
				msg = out.Error
			} else if resp.StatusCode >= 400 || strings.HasPrefix(resp.Header.Get("Content-Type"), "image/svg") { // an error page or badge: its text escaped
				msg = html.UnescapeString(msg)
			}
			if resp.StatusCode != c.status || !strings.Contains(msg, c.want) || (c.not != "" && strings.Contains(msg, c.not)) {
				t.Errorf("%d %q\nwant %d with %q%s", resp.StatusCode, shortAnswer(msg), c.status, c.want, map[bool]string{true: " and without " + c.not}[c.not != ""])
			}
		})
	}
	// The names were refused: nothing was registered, silenced or beaten.
	if _, out := h.request("GET", "/api/v1/deploys", ""); len(out["deploys"].([]any)) != 0 {
		t.Errorf("refused requests registered deploys: %v", out["deploys"])
	}
	if _, out := h.request("GET", "/api/v1/silences", ""); len(out["silences"].([]any)) != 0 {
		t.Errorf("refused requests added silences: %v", out["silences"])
	}
}

// shortAnswer is an answer cut for a failure message: a status page is long.
func shortAnswer(s string) string {
	if i := strings.Index(s, "No check matches"); i >= 0 {
		s = s[i:]
	}
	if len(s) > 400 {
		return s[:400] + "..."
	}
	return s
}
