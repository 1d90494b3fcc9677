package checks_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-monitor/vigil/browser"
	"github.com/vigil-monitor/vigil/checks"
)

// A browser check's cookies (with their domain and path) and viewport are the config's:
// each key, ignored between the YAML and Chromium, changes what the server or the page
// sees here. The journey starts on 127.0.0.1 and goes on to there.test (the same loopback
// server under another host name, mapped to 127.0.0.1 by --host-resolver-rules): a cookie
// whose domain is there.test reaches only the
// second, one whose path is /app only the pages under /app, and the page titles itself
// with the window size it was given.
func TestBrowserCookiesAndViewportAreTheConfigs(t *testing.T) {
	pool := checks.BrowserPoolWith(t, browser.Options{Concurrency: 1, Flags: []string{"--host-resolver-rules=MAP there.test 127.0.0.1"}})
	var mu sync.Mutex
	seen := map[string]string{} // host+path -> Cookie header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := strings.Split(r.Host, ":")[0]
		mu.Lock()
		seen[host+r.URL.Path] = r.Header.Get("Cookie")
		mu.Unlock()
		if r.URL.Path == "/other.png" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>-</title><img src=/other.png>
<script>document.title = innerWidth + 'x' + innerHeight</script>`)
	}))
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	cs := buildDeps(t, checks.Deps{Browser: pool}, srv.URL, `
checks:
  - name: journey
    kind: browser
    url: "${T}/app/home"
    timeout: 30s
    viewport: {width: 390, height: 844}
    cookies:
      - {name: consent, value: "yes"}
      - {name: scoped, value: "s1", domain: "127.0.0.1", path: /app}
      - {name: there, value: "t1", domain: there.test, path: /}
    steps:
      - navigate: "http://there.test:`+port+`/app/next"
    assert: ['title == "390x844"']
`)
	r := cs["journey"].Run(context.Background(), checks.Input{})
	t.Logf("%s %v\n%s", r.Outcome, r.Reasons, strings.Join(r.Transcript, "\n"))
	if r.Outcome != checks.Pass {
		t.Errorf("outcome %s, want pass (the page saw the configured viewport): %v", r.Outcome, r.Reasons)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, tc := range []struct{ at, want string }{
		{"127.0.0.1/app/home", "consent=yes; scoped=s1"},
		{"127.0.0.1/other.png", "consent=yes"},
		{"there.test/app/next", "there=t1"},
		{"there.test/other.png", "there=t1"},
	} {
		got, ok := seen[tc.at]
		sent := strings.Split(got, "; ")
		slices.Sort(sent) // Chromium orders cookies by path, then by creation
		if !ok || strings.Join(sent, "; ") != tc.want {
			t.Errorf("%s: Cookie %q (requested %t), want %q", tc.at, got, ok, tc.want)
		}
	}
}
