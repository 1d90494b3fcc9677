package checks

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/configs"
)

// A server certificate every client refuses (for other names, or out of date) is the
// service's answer: the run fails, once, without a retry, and a deploy that did it is
// failed. One signed by an authority vigil does not trust stays an error (vigil's trust
// store may be the cause), retried, with a hint; so does a bad certificate on a server
// that is not the service (a Prometheus).
func TestServerCertificateFaults(t *testing.T) {
	ca := newTestCA(t)
	// served counts the requests that got through a handshake.
	var served atomic.Int64
	// service is an HTTPS server presenting a certificate of ca for names and ips; it
	// answers every request as a Prometheus query with one sample would.
	service := func(ttl time.Duration, names []string, ips []net.IP) func(*testing.T) string {
		return func(t *testing.T) string {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				served.Add(1)
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`)
			}))
			srv.TLS = serverTLS(ca.leafFor(t, ttl, names, ips))
			srv.StartTLS()
			t.Cleanup(srv.Close)
			return srv.URL
		}
	}
	loopback := []net.IP{net.IPv4(127, 0, 0, 1)}
	good := service(30*24*time.Hour, []string{"localhost"}, loopback)
	// an ingress controller's default certificate, for its own name and address
	otherName := service(30*24*time.Hour, []string{"ingress.local"}, []net.IP{net.IPv4(192, 0, 2, 1)})
	expired := service(-48*time.Hour, []string{"localhost"}, loopback)

	httpCheck := func(url, tlsBlock string) string {
		return fmt.Sprintf(`
checks:
  - name: api
    kind: http
    timeout: 5s
    request: {url: %q%s}
`, url+"/healthz", tlsBlock)
	}
	caFile := fmt.Sprintf(", tls: {ca_file: %q}", ca.pemFile)
	attempts := func(t *testing.T, yaml string) *Result {
		t.Helper()
		c := buildOne(t, yaml)
		res := RunWithRetries(t.Context(), c, Input{}, Retry{Attempts: 1, Backoff: time.Millisecond})
		t.Logf("%s: %s after %d attempts: %v", c.Name, res.Outcome, res.Attempts, res.Reasons)
		return res
	}

	t.Run("a good certificate passes", func(t *testing.T) {
		wantOutcome(t, attempts(t, httpCheck(good(t), caFile)), Pass)
	})
	t.Run("a certificate for other names fails at once", func(t *testing.T) {
		res := attempts(t, httpCheck(otherName(t), caFile))
		wantOutcome(t, res, Fail, "certificate is valid for 192.0.2.1, not 127.0.0.1")
		if res.Attempts != 1 {
			t.Errorf("a fail is an answer, not retried: %d attempts", res.Attempts)
		}
	})
	t.Run("an expired certificate fails", func(t *testing.T) {
		wantOutcome(t, attempts(t, httpCheck(expired(t), caFile)), Fail, "certificate has expired")
	})
	t.Run("an unknown authority is an error with a hint", func(t *testing.T) {
		res := attempts(t, httpCheck(good(t), ""))
		wantOutcome(t, res, Error, "certificate signed by unknown authority", "the check's tls.ca_file")
		if res.Attempts != 2 {
			t.Errorf("an error is retried: %d attempts", res.Attempts)
		}
	})
	t.Run("a journey step fails on it too", func(t *testing.T) {
		url := otherName(t)
		wantOutcome(t, attempts(t, fmt.Sprintf(`
checks:
  - name: journey
    kind: script
    timeout: 5s
    steps:
      - name: home
        request: {url: %q, tls: {ca_file: %q}}
`, url+"/", ca.pemFile)), Fail, "step 1 (home)", "not 127.0.0.1")
	})
	t.Run("a Prometheus with a bad certificate is vigil's problem, not the service's", func(t *testing.T) {
		before := served.Load()
		wantOutcome(t, attempts(t, fmt.Sprintf(`
checks:
  - name: errors
    kind: promql
    timeout: 5s
    server: %q
    query: up
`, otherName(t))), Error, "not 127.0.0.1")
		if served.Load() != before {
			t.Error("a request went through a refused certificate")
		}
	})
}

// An answer that is not HTTP, or HTTP no client reads, is the service's: a run fails on
// it at once (a TLS port asked in plain HTTP, another protocol's banner, headers past any
// client's limit, a redirect without a usable Location, plain HTTP on an https URL). A
// connection closed without a byte stays no answer: an error, retried.
func TestAnswersThatAreNotHTTPFail(t *testing.T) {
	raw := func(t *testing.T, answer string) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(5 * time.Second))
					buf := make([]byte, 4096)
					_, _ = c.Read(buf) // the request
					_, _ = c.Write([]byte(answer))
				}()
			}
		}()
		return "http://" + ln.Addr().String()
	}
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	t.Cleanup(plain.Close)
	check := func(url string) string {
		return fmt.Sprintf("checks:\n  - {name: api, kind: http, timeout: 3s, request: {url: %q}}\n", url+"/")
	}
	for _, c := range []struct{ name, url, reason string }{
		{"a TLS alert", raw(t, "\x15\x03\x01\x00\x02\x02\x46"), "malformed HTTP response"},
		{"another protocol", raw(t, "SSH-2.0-OpenSSH_9.2\r\n"), "malformed HTTP"},
		{"headers past every limit", raw(t, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 1<<20)+"\r\n\r\n"), "server response headers exceeded"},
		{"a redirect nowhere", raw(t, "HTTP/1.1 302 Found\r\nLocation: http://[::1\r\nContent-Length: 0\r\n\r\n"), "failed to parse Location header"},
		{"plain HTTP on https", strings.Replace(plain.URL, "http://", "https://", 1), "server gave HTTP response to HTTPS client"},
		{"a redirect to file:", raw(t, "HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\nContent-Length: 0\r\n\r\n"), `unsupported protocol scheme "file"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := RunWithRetries(t.Context(), buildOne(t, check(c.url)), Input{}, Retry{Attempts: 1, Backoff: time.Millisecond})
			wantOutcome(t, res, Fail, c.reason, "no HTTP client can read the answer")
			if res.Attempts != 1 {
				t.Errorf("a fail is an answer, not retried: %d attempts", res.Attempts)
			}
		})
	}
	t.Run("closed without a byte stays no answer", func(t *testing.T) {
		res := RunWithRetries(t.Context(), buildOne(t, check(raw(t, ""))), Input{}, Retry{Attempts: 1, Backoff: time.Millisecond})
		wantOutcome(t, res, Error)
		if !res.NoAnswer {
			t.Errorf("not marked as no answer: %v", res.Reasons)
		}
	})
}

// Chromium reports one reason for refusing a certificate, an unknown authority first: the
// browser kind judges the certificate's names and dates itself, as the http kind does. A
// redirect loop fails it too.
func TestBrowserTargetFaults(t *testing.T) {
	pool := BrowserPool(t)
	ca := newTestCA(t)
	site := func(ttl time.Duration, names []string, ips []net.IP) string {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `<!doctype html><title>Shop</title><div id=app data-ready=1>ok</div>`)
		}))
		srv.TLS = serverTLS(ca.leafFor(t, ttl, names, ips))
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.URL
	}
	loopback := []net.IP{net.IPv4(127, 0, 0, 1)}
	check := func(url string, timeout ...string) *Check {
		if len(timeout) == 0 {
			timeout = []string{"15s"}
		}
		cfg, err := configs.Parse(t.TempDir()+"/vigil.yaml", []byte(fmt.Sprintf(`
checks:
  - {name: home, kind: browser, url: %q, wait_for: "#app[data-ready]", timeout: %s}
`, url+"/", timeout[0])), configs.Options{Environ: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		list, err := Build(cfg, Deps{Browser: pool})
		if err != nil {
			t.Fatal(err)
		}
		return list[0]
	}
	t.Run("for other names", func(t *testing.T) {
		res := run(t, check(site(30*24*time.Hour, []string{"ingress.local"}, []net.IP{net.IPv4(192, 0, 2, 1)})), Input{})
		wantOutcome(t, res, Fail, "net::ERR_CERT_AUTHORITY_INVALID", "the server's certificate: x509: certificate is valid for 192.0.2.1, not 127.0.0.1")
	})
	t.Run("out of date", func(t *testing.T) {
		res := run(t, check(site(-48*time.Hour, nil, loopback)), Input{})
		wantOutcome(t, res, Fail, "certificate has expired or is not yet valid: valid from")
	})
	// A redirect no visitor gets past: to file:, where a deploy's misconfigured rewrite sent it.
	t.Run("a redirect to file:", func(t *testing.T) {
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		}))
		wantOutcome(t, run(t, check(srv.URL), Input{}), Fail, "net::ERR_UNSAFE_REDIRECT")
	})
	// A page served as a download: every visitor gets a file, not the page
	// (TestPageServedAsADownload has Chromium's side).
	t.Run("a page served as a download", func(t *testing.T) {
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Disposition", `attachment; filename="index.html"`)
			fmt.Fprint(w, `<!doctype html><title>Shop</title><div id=app data-ready=1>ok</div>`)
		}))
		res := run(t, check(srv.URL), Input{})
		wantOutcome(t, res, Fail, "served as a download", "200", "Content-Type: application/octet-stream",
			`Content-Disposition: attachment; filename="index.html"`, "visitors get a file")
	})
	// A page that answers 204: there is nothing to show, whatever the status says.
	t.Run("a page that answers 204", func(t *testing.T) {
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
		wantOutcome(t, run(t, check(srv.URL), Input{}), Fail, "answered 204 No Content, which has no page", "net::ERR_ABORTED")
	})
	t.Run("an unknown authority alone is an error", func(t *testing.T) {
		res := run(t, check(site(30*24*time.Hour, nil, loopback)), Input{})
		wantOutcome(t, res, Error, "net::ERR_CERT_AUTHORITY_INVALID")
		if res.NoAnswer {
			t.Error("a certificate vigil cannot verify is marked as the service giving no answer")
		}
	})
	// No answer at all is an error, marked as the service's silence (see TestNoAnswer).
	t.Run("nothing listens", func(t *testing.T) {
		res := run(t, check(closedURL(t)), Input{})
		wantOutcome(t, res, Error, "net::ERR_CONNECTION_REFUSED")
		if !res.NoAnswer {
			t.Error("not marked as the service giving no answer")
		}
	})
	t.Run("sent, never answered", func(t *testing.T) {
		// 8 s: with 4, a loaded machine running two suites at once once spent the run's
		// time before the request was sent (a tab, the browser), and the reason differed.
		srv := serve(t, hang(testDone(t)))
		res := run(t, check(srv.URL, "8s"), Input{})
		wantOutcome(t, res, Error, "timed out: no response within")
		if !res.NoAnswer {
			t.Error("not marked as the service giving no answer")
		}
	})
	t.Run("a redirect loop", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, map[string]string{"/": "/login", "/login": "/"}[r.URL.Path], http.StatusFound)
		}))
		t.Cleanup(srv.Close)
		wantOutcome(t, run(t, check(srv.URL), Input{}), Fail, "net::ERR_TOO_MANY_REDIRECTS")
	})
}
