package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
)

// The secrets planted in every place a check can carry them. Each is unique, so a find
// names the place it was planted.
const (
	secUserinfo  = "sEcr-userinfo-Q7x9Lm"  // http://user:PASS@host
	secQuery     = "sEcr-query-F3v8Kp"     // ?access_token=
	secQuery2    = "sEcr-apikey-query-N4"  // ?api_key= of another check
	secBody      = "sEcr-body-pass-D9k2Ws" // "password" in a request body
	secHeader    = "sEcr-header-L5p1Zq"    // X-Auth-Token: (literal in the file)
	secCookie    = "sEcr-cookie-W2m6Rt"    // Cookie: sid=
	secSetCookie = "sEcr-setcookie-Z4t7Yh" // the target's Set-Cookie
	secRespJSON  = "sEcr-resp-jwt-H6y3Bn"  // the target's {"access_token": ...}
	secEnvKey    = "sEcr-env-apikey-R8u4"  // ${SHOP_API_KEY} in a header
	secEnvPass   = "sEcr-env-pass-J1c5Vx"  // ${SYNTH_PASSWORD} in a body
	secEnvBearer = "sEcr-env-bearer-M3e8"  // auth: {bearer: ${API_BEARER}}
	secAPIToken  = "sEcr-api-token-P0o9Ii" // agent.api_token: ${VIGIL_API_TOKEN}
)

// secretTarget is the service under test. Good: /login answers a token and a cookie, /me
// wants that token, /echo answers the request it got (URL, headers, body). Broken: /login
// drops the connection (an error whose reason names the URL), every other path answers 500
// with the request echoed, as a careless error page would, and quotes the URL and token in
// a header that an assertion reads.
func secretTarget(t *testing.T) (*httptest.Server, *atomic.Bool) {
	broken := &atomic.Bool{}
	echo := func(w http.ResponseWriter, r *http.Request, status int) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(struct {
			Headers http.Header `json:"headers"`
			URL     string      `json:"url"`
			Method  string      `json:"method"`
			Body    string      `json:"body"`
			OK      bool        `json:"ok"`
		}{r.Header, r.URL.String(), r.Method, string(body), status < 400})
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() {
			if r.URL.Path == "/login" && r.URL.RawQuery != "" {
				if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
					c.Close()
				}
				return
			}
			w.Header().Set("X-Echo", r.URL.String()+" "+r.Header.Get("X-Auth-Token"))
			echo(w, r, http.StatusInternalServerError)
			return
		}
		switch r.URL.Path {
		case "/login":
			http.SetCookie(w, &http.Cookie{Name: "session", Value: secSetCookie, HttpOnly: true})
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"ok":true,"access_token":%q,"user":"synthetic"}`, secRespJSON)
		case "/me":
			if r.Header.Get("Authorization") != "Bearer "+secRespJSON {
				http.Error(w, "who are you?", http.StatusUnauthorized)
				return
			}
			fmt.Fprint(w, `{"user":"synthetic"}`)
		default:
			echo(w, r, http.StatusOK)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, broken
}

// TestSecretsNeverLeak plants secrets everywhere a check can carry them, runs passing and
// failing checks and a failing deploy through a real agent with Slack, PagerDuty and webhook
// receivers, then searches every output: status pages, API answers, the SQLite files, the
// log and every notifier payload. It must find none.
func TestSecretsNeverLeak(t *testing.T) {
	target, broken := secretTarget(t)
	host := strings.TrimPrefix(target.URL, "http://")
	slack, pd, hook := loopback.NewSlack(t), loopback.NewPagerDuty(t), loopback.NewWebhook(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	yaml := fmt.Sprintf(`
agent: {api_token: "${VIGIL_API_TOKEN}"}
store: {dsn: %[1]s}
defaults: {every: 1s, timeout: 5s, retries: 0, failure_threshold: 1, notify: [ops, oncall, hook]}
services:
  web:
    checks: [login, journey, echo]
    verify: {interval: 300ms, count: 3}
    on_failure: [ops, oncall, rollback, hook]
checks:
  - name: login
    kind: http
    request:
      method: POST
      url: "http://synthetic:%[3]s@%[2]s/login?access_token=%[4]s&page=1"
      headers: {Content-Type: application/json, X-Auth-Token: %[5]s, X-Api-Key: "${SHOP_API_KEY}", Cookie: "sid=%[6]s"}
      body: '{"user":"synthetic","password":"%[7]s","note":"${SYNTH_PASSWORD}"}'
    assert: ["status == 200", "json.access_token != ''", "headers['Set-Cookie'] contains 'session='"]
  - name: journey
    kind: script
    steps:
      - name: log in
        request: {method: POST, url: "http://%[2]s/login", headers: {Content-Type: application/json}, body: '{"password":"%[7]s"}', auth: {bearer: "${API_BEARER}"}}
        extract: {token: json.access_token}
      - name: who am i
        request: {url: "http://%[2]s/me", headers: {Authorization: "Bearer {{ .token }}"}}
        assert: ["status == 200"]
  - name: echo
    kind: http
    store_body: true
    request: {url: "http://%[2]s/echo?api_key=%[8]s", headers: {X-Auth-Token: %[5]s}}
    assert: ["headers['X-Echo'] == ''", "status == 200", "json.ok == true"]
notifiers:
  ops: {type: slack, token: "${SLACK_TOKEN}", channel: "#deploys", api_url: "%[9]s"}
  oncall: {type: pagerduty, routing_key: "${PD_KEY}", url: "%[10]s"}
  rollback: {type: webhook, action: rollback, url: "%[11]s", secret: "${HOOK_SECRET}"}
  hook: {type: webhook, url: "%[11]s", secret: "${HOOK_SECRET}"}
`, filepath.Join(dir, "vigil.db"), host, secUserinfo, secQuery, secHeader, secCookie, secBody, secQuery2,
		slack.APIURL(), pd.URL(), hook.URL())
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startAgentProc(t, cfg, "", "VIGIL_API_TOKEN="+secAPIToken, "SHOP_API_KEY="+secEnvKey, "SYNTH_PASSWORD="+secEnvPass,
		"API_BEARER="+secEnvBearer, "SLACK_TOKEN="+loopback.SlackToken, "PD_KEY="+loopback.PagerDutyRoutingKey,
		"HOOK_SECRET="+loopback.WebhookSecret)
	api := func(method, path string) string {
		t.Helper()
		req, _ := http.NewRequest(method, p.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+secAPIToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return string(b)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\n%s", what, p.logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Passing runs first: scheduled, and one of each check by hand.
	waitFor("passing scheduled runs", func() bool {
		var out struct {
			Checks []struct {
				Last *struct{ Outcome string } `json:"last"`
			} `json:"checks"`
		}
		_ = json.Unmarshal([]byte(api("GET", "/api/v1/checks")), &out)
		for _, c := range out.Checks {
			if c.Last == nil || c.Last.Outcome != "pass" {
				return false
			}
		}
		return len(out.Checks) == 3
	})
	outputs := map[string]string{}
	for _, c := range []string{"login", "journey", "echo"} {
		outputs["API POST /api/v1/checks/"+c+"/run (passing)"] = api("POST", "/api/v1/checks/"+c+"/run")
	}

	// Then failing: a failed deploy (rollback, Slack, PagerDuty) and scheduled failures.
	broken.Store(true)
	var reg struct {
		ID string `json:"id"`
	}
	{
		req, _ := http.NewRequest("POST", p.url+"/api/v1/deploys", strings.NewReader(`{"service":"web","version":"v2"}`))
		req.Header.Set("Authorization", "Bearer "+secAPIToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = json.NewDecoder(resp.Body).Decode(&reg)
		resp.Body.Close()
	}
	waitFor("the failed verdict", func() bool {
		return strings.Contains(api("GET", "/api/v1/deploys/"+reg.ID+"?wait=5s"), `"status": "failed"`)
	})
	waitFor("Slack, PagerDuty and the rollback webhook", func() bool {
		return len(slack.Roots()) > 0 && len(pd.Events()) > 0 && hook.Count(reg.ID+":deploy_failed") > 0
	})
	waitFor("check incidents from scheduled failures", func() bool {
		return strings.Contains(api("GET", "/api/v1/outbox?limit=1000"), "check_failed")
	})
	for _, c := range []string{"login", "journey", "echo"} {
		outputs["API POST /api/v1/checks/"+c+"/run (failing)"] = api("POST", "/api/v1/checks/"+c+"/run")
	}
	waitFor("the check_failed notifications delivered", func() bool {
		return !strings.Contains(api("GET", "/api/v1/outbox?state=pending"), `"id"`)
	})

	// Every output a person or a machine can read.
	for _, path := range []string{"/api/v1/checks", "/api/v1/deploys?limit=100", "/api/v1/deploys/" + reg.ID,
		"/api/v1/outbox?limit=1000", "/api/v1/silences"} {
		outputs["API GET "+path] = api("GET", path)
	}
	_, outputs["GET /metrics"] = p.get("/metrics")
	pages := []string{"/", "/checks/login", "/checks/journey", "/checks/echo", "/deploys/" + reg.ID}
	seen := map[string]bool{}
	links := regexp.MustCompile(`href="(/runs/[0-9]+(?:/artifacts/[^"]+)?)"|src="(/runs/[0-9]+/artifacts/[^"]+)"`)
	for len(pages) > 0 {
		path := pages[0]
		pages = pages[1:]
		if seen[path] {
			continue
		}
		seen[path] = true
		code, body := p.get(path)
		if code != 200 {
			t.Errorf("status page %s: %d", path, code)
		}
		outputs["status page "+path] = body
		for _, m := range links.FindAllStringSubmatch(body, -1) {
			pages = append(pages, m[1]+m[2])
		}
	}
	if runs := 0; true {
		for path := range seen {
			if strings.HasPrefix(path, "/runs/") {
				runs++
			}
		}
		if runs < 6 || !seen[firstWith(seen, "/artifacts/response-body.txt")] {
			t.Errorf("the status pages linked only %d run pages and artifacts, and the echo check's evidence %v; the search would miss evidence",
				runs, firstWith(seen, "/artifacts/response-body.txt") != "")
		}
	}
	if code := p.terminate(); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
	outputs["agent log"] = p.logs.String()
	files, _ := filepath.Glob(filepath.Join(dir, "vigil.db*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		outputs["store file "+filepath.Base(f)] = string(b)
	}
	for i, c := range slack.Calls() {
		b, _ := json.Marshal(c)
		outputs[fmt.Sprintf("Slack call %d (%s)", i, c.Method)] = string(b) + string(c.File)
	}
	for i, c := range pd.Calls() {
		outputs[fmt.Sprintf("PagerDuty call %d", i)] = string(c.Body)
	}
	for i, d := range hook.Deliveries() {
		outputs[fmt.Sprintf("webhook delivery %d (%s)", i, d.Event)] = string(d.Body)
	}

	secrets := map[string]string{"URL userinfo password": secUserinfo, "query token": secQuery, "api_key query": secQuery2,
		"request body password": secBody, "X-Auth-Token header": secHeader, "request cookie": secCookie,
		"response Set-Cookie": secSetCookie, "token in response JSON": secRespJSON, "${SHOP_API_KEY}": secEnvKey,
		"${SYNTH_PASSWORD}": secEnvPass, "${API_BEARER}": secEnvBearer, "agent.api_token": secAPIToken,
		"basic auth from the URL": base64.StdEncoding.EncodeToString([]byte("synthetic:" + secUserinfo)),
		"Slack token":             loopback.SlackToken, "webhook secret": loopback.WebhookSecret}
	found := 0
	places := make([]string, 0, len(outputs))
	for place := range outputs {
		places = append(places, place)
	}
	sort.Strings(places)
	for _, place := range places {
		text := outputs[place]
		for what, s := range secrets {
			for _, form := range []string{s, url.QueryEscape(s)} {
				if i := strings.Index(text, form); i >= 0 {
					found++
					lo, hi := max(0, i-80), min(len(text), i+len(form)+40)
					t.Errorf("%s leaks the %s: …%q…", place, what, text[lo:hi])
					break
				}
			}
		}
	}
	// The PagerDuty routing key travels in PagerDuty's own payload, as its API requires; it
	// must be nowhere else.
	for _, place := range places {
		if !strings.HasPrefix(place, "PagerDuty call") && strings.Contains(outputs[place], loopback.PagerDutyRoutingKey) {
			found++
			t.Errorf("%s leaks the PagerDuty routing key", place)
		}
	}
	t.Logf("reliability: secrets planted in %d places, searched for in %d outputs (%d bytes: status pages, API answers, store files, log, %d Slack, %d PagerDuty and %d webhook payloads): %d found",
		len(secrets)+1, len(outputs), totalLen(outputs), len(slack.Calls()), len(pd.Calls()), len(hook.Deliveries()), found)
}

func firstWith(set map[string]bool, suffix string) string {
	for k := range set {
		if strings.HasSuffix(k, suffix) {
			return k
		}
	}
	return ""
}

func totalLen(m map[string]string) int {
	n := 0
	for _, s := range m {
		n += len(s)
	}
	return n
}
