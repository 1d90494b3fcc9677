package checks

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The http kind's variables hold what the README's table says, against a TLS server that
// speaks HTTP/2 (ALPN h2) and a private CA given in tls.ca_file, reached by its IP with
// tls.server_name naming the certificate's host: proto, the certificate's expiry in days
// and Unix seconds, the final url and redirects, content_length with and without the
// header, basic auth, and a second run that reuses the kept-alive connection (conn_reused,
// its connection phases 0). Over plain http, cert_expiry_days is -1 and the timestamp 0.
func TestHTTPVariablesAsTheREADMESays(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/old":
			http.Redirect(w, r, "/new", http.StatusMovedPermanently)
		case "/new":
			if u, p, ok := r.BasicAuth(); !ok || u != "synthetic" || p != "pw" {
				http.Error(w, "who are you", http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Length", "2")
			fmt.Fprint(w, "ok")
		case "/chunked":
			fmt.Fprint(w, "a")
			w.(http.Flusher).Flush()
			fmt.Fprint(w, "b")
		}
	})
	tsrv := httptest.NewUnstartedServer(h)
	tsrv.EnableHTTP2 = true
	tsrv.StartTLS()
	t.Cleanup(tsrv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tsrv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	notAfter := tsrv.Certificate().NotAfter
	days := time.Until(notAfter).Hours() / 24
	c := buildOne(t, fmt.Sprintf(`
checks:
  - name: api
    kind: http
    request:
      url: "%s/old"
      tls: {ca_file: %q, server_name: example.com}
      auth: {username: synthetic, password: pw}
    assert:
      - "status == 200 && body == 'ok' && proto == 'HTTP/2.0'"
      - "url == '%[1]s/new' && redirects == 1 && content_length == 2 && body_bytes == 2"
      - "cert_expiry_days > %[3]f && cert_expiry_days < %[4]f"
      - "cert_expiry_timestamp == %[5]d"
`, tsrv.URL, ca, days-1, days+1, notAfter.Unix()))
	wantOutcome(t, run(t, c, Input{}), Pass)
	res := run(t, c, Input{})
	wantOutcome(t, res, Pass)
	if res.Vars["conn_reused"] != true || res.Vars["connect_ms"] != 0.0 || res.Vars["tls_ms"] != 0.0 || res.Vars["dns_ms"] != 0.0 {
		t.Errorf("second run: conn_reused %v, dns_ms %v, connect_ms %v, tls_ms %v; want a reused connection and phases 0",
			res.Vars["conn_reused"], res.Vars["dns_ms"], res.Vars["connect_ms"], res.Vars["tls_ms"])
	}
	// Without the CA, the certificate is one vigil cannot verify: an error, not a fail.
	wantOutcome(t, httpCheck(t, tsrv.URL+"/chunked", "", "status == 200"), Error, "certificate")
	// insecure_skip_verify accepts it.
	wantOutcome(t, httpCheck(t, tsrv.URL+"/chunked", ", tls: {insecure_skip_verify: true}", "body == 'ab'"), Pass)

	plain := serve(t, h)
	wantOutcome(t, httpCheck(t, plain.URL+"/chunked", "",
		"proto == 'HTTP/1.1'", "content_length == -1", "cert_expiry_days == -1", "cert_expiry_timestamp == 0", "body == 'ab'"), Pass)
	// Wrong credentials are the answer's 401: a fail under the default assertion.
	res = run(t, buildOne(t, fmt.Sprintf(`
checks:
  - name: api
    kind: http
    request: {url: "%s/new", auth: {username: synthetic, password: wrong}}
`, plain.URL)), Input{})
	wantOutcome(t, res, Fail, "status >= 200 && status < 300 is false: status = 401")
}

// request.timeout defaults to the check's timeout and cannot outlast it: a request given
// 30s in a check of 300ms times out at 300ms, an error.
func TestHTTPRequestTimeoutIsTheChecks(t *testing.T) {
	srv := serve(t, hang(testDone(t)))
	for _, extra := range []string{"", ", timeout: 30s"} {
		start := time.Now()
		res := run(t, buildOne(t, fmt.Sprintf(`
checks:
  - name: api
    kind: http
    timeout: 300ms
    retries: 0
    request: {url: "%s"%s}
`, srv.URL, extra)), Input{})
		wantOutcome(t, res, Error, "timed out: no complete answer within 300ms")
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("request.timeout%q: the run took %s", extra, d)
		}
	}
}

// A journey's variables and extracts as the README says: extract status, body and
// header.NAME; templates in the url, a header value and the body; steps, steps_total,
// failed_step, vars and the last step's status for the whole journey; a step without
// assertions judged by 2xx.
func TestScriptVariablesAsTheREADMESays(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /a", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Next", "b")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, "token-less text")
	})
	mux.HandleFunc("PUT /b", func(w http.ResponseWriter, r *http.Request) {
		buf := new(strings.Builder)
		_, _ = fmt.Fprint(buf, r.Header.Get("X-Code"), "|")
		b := make([]byte, 64)
		n, _ := r.Body.Read(b)
		buf.Write(b[:n])
		fmt.Fprint(w, buf.String())
	})
	mux.HandleFunc("GET /c", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := serve(t, mux)
	c := buildOne(t, fmt.Sprintf(`
checks:
  - name: flow
    kind: script
    steps:
      - {name: a, request: {method: POST, url: "%[1]s/a"}, extract: {code: status, text: body, next: header.X-Next}}
      - {name: b, request: {method: PUT, url: "%[1]s/{{ .next }}", headers: {X-Code: "{{ .code }}"}, body: "{{ .text }}"},
         assert: ["body == '202|token-less text'", "vars.code == 202"]}
    assert: ["steps == 2", "steps_total == 2", "failed_step == ''", "status == 200", "vars.next == 'b'", "duration_ms > 0"]
`, srv.URL))
	wantOutcome(t, run(t, c, Input{}), Pass)
	c = buildOne(t, fmt.Sprintf(`
checks:
  - name: flow
    kind: script
    steps:
      - {name: a, request: {method: POST, url: "%[1]s/a"}}
      - {name: teapot, request: {url: "%[1]s/c"}}
      - {name: never, request: {url: "%[1]s/a"}}
`, srv.URL))
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "step 2 (teapot): status >= 200 && status < 300 is false: status = 418")
	if res.Vars["steps"] != 2 || res.Vars["failed_step"] != "teapot" || res.Vars["steps_total"] != 3 {
		t.Errorf("steps %v, failed_step %v, steps_total %v", res.Vars["steps"], res.Vars["failed_step"], res.Vars["steps_total"])
	}
}
