package checks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/checks"
)

// resultText is everything a result carries that can leave the run: what the store, the
// API, the status page and the notifiers are built from.
func resultText(r *checks.Result) string {
	b, _ := json.Marshal(r)
	var s strings.Builder
	s.Write(b)
	for _, a := range r.Artifacts {
		s.Write(a.Data)
	}
	return s.String()
}

// TestResultsHoldNoSecrets runs http and script checks that carry credentials in every
// place a request can hold one, against a target that echoes what it got and answers a
// cookie and a token, passing and failing. No secret may be in the result.
func TestResultsHoldNoSecrets(t *testing.T) {
	var broken bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		status := http.StatusOK
		if broken {
			status = http.StatusInternalServerError
		}
		http.SetCookie(w, &http.Cookie{Name: "s", Value: "answered-cookie-0001"})
		w.Header().Set("X-Echo", r.URL.String()+" "+r.Header.Get("X-Auth-Token"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"headers": r.Header, "url": r.URL.String(), "body": string(body),
			"access_token": "answered-token-0002", "ok": !broken})
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	secrets := []string{"userinfo-pass-0003", "query-token-0004", "body-password-0005", "header-token-0006",
		"cookie-value-0007", "env-secret-0008", "answered-cookie-0001", "answered-token-0002", "bearer-token-0009"}
	cs := build(t, srv.URL, fmt.Sprintf(`
checks:
  - name: login
    kind: http
    request:
      method: POST
      url: "http://synthetic:userinfo-pass-0003@%[1]s/login?access_token=query-token-0004"
      headers: {X-Auth-Token: header-token-0006, Cookie: "sid=cookie-value-0007", X-Api-Key: "${API_KEY:-env-secret-0008}"}
      body: '{"user":"synthetic","password":"body-password-0005"}'
    store_body: true
    assert: ["headers['X-Echo'] == ''", "json.access_token == ''", "body contains 'nothing'", "headers['Set-Cookie'] == ''", "status == 200"]
  - name: journey
    kind: script
    steps:
      - request: {method: POST, url: "${T}/login", body: 'password=body-password-0005&user=u', auth: {bearer: bearer-token-0009}}
        extract: {token: json.access_token, page: body}
      - request: {url: "${T}/me", headers: {Authorization: "Bearer {{ .token }}"}}
        assert: ["status == 200", "vars.token == ''"]
`, host))
	for _, mode := range []bool{false, true} {
		broken = mode
		for _, name := range []string{"login", "journey"} {
			r := cs[name].Run(context.Background(), checks.Input{})
			if r.Outcome != checks.Fail {
				t.Errorf("%s (broken %v): %s %v", name, mode, r.Outcome, r.Reasons)
			}
			text := resultText(r)
			for _, s := range secrets {
				if i := strings.Index(text, s); i >= 0 {
					t.Errorf("%s (broken %v) holds %s: …%s…", name, mode, s, text[max(0, i-100):min(len(text), i+40)])
				}
			}
		}
	}
	t.Logf("reliability: %d secrets in URL userinfo, query, body, headers, cookies, ${VAR}, answered Set-Cookie and JSON token; http and script checks, passing and failing: none in the results", len(secrets))
	// A run that errors quotes its URL: without the password and the token.
	srv.Close()
	r := cs["login"].Run(context.Background(), checks.Input{})
	if r.Outcome != checks.Error || !strings.Contains(r.Summary(), "http://synthetic:****@") || !strings.Contains(r.Summary(), "access_token=****") {
		t.Errorf("error reason: %s %v", r.Outcome, r.Reasons)
	}
}

// TestBodiesAreOptInAndBounded: a response body is kept in a result only when the check
// says store_body: true, then as an excerpt of checks.BodyExcerpt characters; a failing run
// keeps the body as evidence up to checks.EvidenceMaxBytes; a binary body is never text.
func TestBodiesAreOptInAndBounded(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB of text
	bin := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"), bytes.Repeat([]byte{0, 1, 2, 255}, 50_000)...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write(big)
		case "/bin":
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(bin)
		case "/json":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"ok":true,"items":[1,2,3]}`)
		}
	}))
	defer srv.Close()
	cs := build(t, srv.URL, `
checks:
  - {name: default, kind: http, request: {url: "${T}/big"}, assert: ["body_bytes == 1000000", "body startsWith '0123'"]}
  - {name: kept, kind: http, store_body: true, request: {url: "${T}/big"}, assert: ["body_bytes == 1000000"]}
  - {name: kept-failing, kind: http, store_body: true, request: {url: "${T}/big"}, assert: ["body_bytes == 1"]}
  - {name: small-json, kind: http, store_body: true, request: {url: "${T}/json"}, assert: ["json.ok"]}
  - {name: binary, kind: http, store_body: true, request: {url: "${T}/bin"}, assert: ["body_bytes > 0"]}
  - {name: binary-failing, kind: http, store_body: true, request: {url: "${T}/bin"}, assert: ["body_bytes == 1"]}
`)
	run := func(name string, want checks.Outcome) *checks.Result {
		t.Helper()
		r := cs[name].Run(context.Background(), checks.Input{})
		if r.Outcome != want {
			t.Fatalf("%s: %s %v", name, r.Outcome, r.Reasons)
		}
		return r
	}
	size := func(r *checks.Result) int { return len(resultText(r)) }

	r := run("default", checks.Pass)
	if _, ok := r.Vars["body"]; ok {
		t.Errorf("default: the body is stored without store_body")
	}
	if _, ok := r.Vars["json"]; ok {
		t.Errorf("default: the parsed body is stored without store_body")
	}
	if n := size(r); n > 32<<10 {
		t.Errorf("default: a passing run of a 1 MB page is %d bytes", n)
	}

	r = run("kept", checks.Pass)
	if b, _ := r.Vars["body"].(string); !strings.HasPrefix(b, "0123456789") || len(b) > checks.BodyExcerpt+100 {
		t.Errorf("kept: body is %d bytes, want an excerpt of %d: %.60q", len(b), checks.BodyExcerpt, b)
	}
	if len(r.Artifacts) != 0 {
		t.Errorf("kept: a passing run keeps artifacts %v", r.Artifacts)
	}
	if n := size(r); n > 32<<10 {
		t.Errorf("kept: a passing run of a 1 MB page is %d bytes", n)
	}

	r = run("kept-failing", checks.Fail)
	if len(r.Artifacts) != 1 || r.Artifacts[0].Name != "response-body.txt" || len(r.Artifacts[0].Data) != checks.EvidenceMaxBytes {
		t.Errorf("kept-failing: want the body as evidence cut at %d bytes, got %v", checks.EvidenceMaxBytes, r.Artifacts)
	}
	if n := size(r); n > checks.EvidenceMaxBytes+32<<10 {
		t.Errorf("kept-failing: %d bytes", n)
	}

	r = run("small-json", checks.Pass)
	if j, ok := r.Vars["json"].(map[string]any); !ok || j["ok"] != true {
		t.Errorf("small-json: a small JSON answer keeps json: %v", r.Vars["json"])
	}

	r = run("binary", checks.Pass)
	if b, _ := r.Vars["body"].(string); !strings.Contains(b, "binary") || strings.ContainsRune(b, 0) || len(b) > 200 {
		t.Errorf("binary: body var %q", b)
	}
	if n := size(r); n > 16<<10 {
		t.Errorf("binary: a passing run of a 200 KB image is %d bytes", n)
	}
	t.Logf("reliability: a 1 MB text answer and a 200 KB PNG: stored result %d bytes by default, %d with store_body (excerpt %d), %d failing with store_body (evidence %d), PNG %d passing",
		size(run("default", checks.Pass)), size(run("kept", checks.Pass)), checks.BodyExcerpt, size(run("kept-failing", checks.Fail)),
		checks.EvidenceMaxBytes, size(run("binary", checks.Pass)))
	r = run("binary-failing", checks.Fail)
	if len(r.Artifacts) != 1 || !bytes.Equal(r.Artifacts[0].Data, bin[:min(len(bin), checks.EvidenceMaxBytes)]) || r.Artifacts[0].ContentType != "image/png" {
		t.Errorf("binary-failing: the evidence must be the raw bytes: %v", r.Artifacts)
	}
}
