package browser

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A page behind HTTP basic authentication. Without credentials, a browser shows a sign-in
// prompt, not the page: headless Chromium ends the navigation with
// net::ERR_INVALID_AUTH_CREDENTIALS, which was an error vigil could not measure (the
// page's server answered). It is a LoginPromptError that says what the server asked for.
// With the credentials in Headers, the page loads.
func TestPageBehindHTTPAuth(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.mux.HandleFunc("/admin", func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "synthetic" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="shop admin"`)
			http.Error(w, "sign in", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>Admin</title><div id=app data-ready=1>in</div>`)
	})
	// Another origin of the same server (cookies and headers are scoped by host name):
	// the check's headers never go there, even when a redirect takes the page there.
	other := strings.Replace(s.URL, "127.0.0.1", "localhost", 1)
	s.mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, other+"/admin", http.StatusFound) })
	right := map[string]string{"Authorization": "Basic c3ludGhldGljOnMzY3JldA=="}
	for _, c := range []struct {
		name, path, url, says string
		headers               map[string]string
		sent, elsewhere       bool
	}{
		{"no credentials", "/admin", s.URL + "/admin", "sends its credentials in headers", nil, false, false},
		{"wrong credentials", "/admin", s.URL + "/admin", "was refused", map[string]string{"Authorization": "Basic d3Jvbmc6d3Jvbmc="}, true, false},
		{"redirected to another origin", "/moved", other + "/admin", "a redirect brought the page to another", right, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep, took, err := visit(t, shared, 15*time.Second, &Visit{URL: s.URL + c.path, WaitFor: "#app[data-ready]", Headers: c.headers})
			checkEnded(t, took, 15*time.Second)
			var lp *LoginPromptError
			if !errors.As(err, &lp) {
				t.Fatalf("err = %v; want a LoginPromptError", err)
			}
			if lp.Status != 401 || lp.Challenge != `Basic realm="shop admin"` || lp.URL != c.url || lp.Sent != c.sent || lp.Elsewhere != c.elsewhere {
				t.Errorf("got %+v", lp)
			}
			for _, w := range []string{"answered 401 Unauthorized asking for credentials", `WWW-Authenticate: Basic realm="shop admin"`, "sign-in prompt", c.says} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if rep.Status != 401 {
				t.Errorf("status %d, want 401", rep.Status)
			}
		})
	}
	t.Run("credentials in headers", func(t *testing.T) {
		rep, _, err := visit(t, shared, 15*time.Second, &Visit{URL: s.URL + "/admin", WaitFor: "#app[data-ready]",
			Headers: right})
		if err != nil || !rep.WaitForFound || rep.Status != 200 || len(rep.Problems()) > 0 {
			t.Fatalf("err %v, status %d, found %t, problems:\n%s", err, rep.Status, rep.WaitForFound, problems(rep))
		}
	})
}

// vigil's listeners are injected through the DevTools protocol, which a page's
// Content-Security-Policy does not govern: a page whose policy forbids inline scripts
// and requires Trusted Types still has its exceptions seen, even with an
// error-reporting SDK that calls preventDefault(), and its rendering waited for.
func TestInjectedListenersUnderAStrictCSP(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; require-trusted-types-for 'script'")
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>Shop</title><div id=app></div>
<script src=/sdk.js></script><script src=/app.js></script>`)
	})
	s.js("/sdk.js", `addEventListener('error', function (e) { e.preventDefault(); });`)
	s.js("/app.js", "document.getElementById('app').dataset.ready = '1';\nsetTimeout(function () { null.total; }, 0);\n")
	rep, took, err := visit(t, shared, 15*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 15*time.Second)
	if err != nil || !rep.WaitForFound {
		t.Fatalf("err %v, found %t", err, rep.WaitForFound)
	}
	if len(rep.Exceptions) != 1 || !strings.Contains(rep.Exceptions[0].Message, "TypeError") || rep.Exceptions[0].Line != 2 {
		t.Errorf("want the TypeError at app.js:2 once; got:\n%s", problems(rep))
	}
}

// A document that redirects twice, and a page that replaces itself while it loads
// (location.replace), are judged on the page they end on: its status, URL, title and
// version header, with no failed request and no error.
func TestRedirectsAndSelfNavigation(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App-Version", "v0")
		http.Redirect(w, r, "/mid", http.StatusMovedPermanently)
	})
	s.mux.HandleFunc("/mid", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/app", http.StatusFound) })
	s.html("/replace", `<!doctype html><title>Old</title><script>location.replace('/app')</script><img src=/slow.png>`)
	s.mux.HandleFunc("/slow.png", func(w http.ResponseWriter, r *http.Request) { time.Sleep(300 * time.Millisecond) })
	s.mux.HandleFunc("/app", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App-Version", "v2")
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>App</title><div id=app data-ready=1>app</div>`)
	})
	for _, path := range []string{"/old", "/replace"} {
		t.Run(path, func(t *testing.T) {
			rep, _, err := visit(t, shared, 15*time.Second, &Visit{URL: s.URL + path, WaitFor: "#app[data-ready]", VersionHeader: "X-App-Version"})
			if err != nil || !rep.WaitForFound || !rep.Loaded || len(rep.Problems()) > 0 {
				t.Fatalf("err %v, found %t, loaded %t, problems:\n%s", err, rep.WaitForFound, rep.Loaded, problems(rep))
			}
			if rep.Status != 200 || rep.URL != s.URL+"/app" || rep.Title != "App" || rep.ServedVersion != "v2" {
				t.Errorf("status %d, url %q, title %q, version %q; want the last page's", rep.Status, rep.URL, rep.Title, rep.ServedVersion)
			}
		})
	}
}
