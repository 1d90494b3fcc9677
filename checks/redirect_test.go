package checks_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-monitor/vigil/checks"
)

// A redirect to another host gets none of the request's credentials: Go drops
// Authorization and Cookie itself; vigil drops every configured header that is not
// clearly harmless (X-Auth-Token, X-Synthetic, ...) and the Referer, which can carry a
// token in its query. A redirect on the same host keeps them.
func TestRedirectToAnotherHostDropsCredentials(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]http.Header{}
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path] = r.Header.Clone()
		mu.Unlock()
	}))
	defer other.Close()
	elsewhere := strings.Replace(other.URL, "127.0.0.1", "localhost", 1) // another host name
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, elsewhere+"/landed", http.StatusFound)
		case "/stay":
			http.Redirect(w, r, "/here", http.StatusFound)
		default:
			mu.Lock()
			seen[r.URL.Path] = r.Header.Clone()
			mu.Unlock()
		}
	}))
	defer target.Close()
	cs := build(t, target.URL, `
checks:
  - name: away
    kind: http
    request:
      url: "${T}/away?access_token=abcdef123456"
      headers: {X-Auth-Token: tok-123456, X-Synthetic: vigil, Accept: application/json, Cookie: "sid=123456"}
      auth: {bearer: bearer-123456}
  - name: stay
    kind: http
    request:
      url: "${T}/stay"
      headers: {X-Auth-Token: tok-123456, Accept: application/json}
`)
	for _, name := range []string{"away", "stay"} {
		if r := cs[name].Run(context.Background(), checks.Input{}); r.Outcome != checks.Pass {
			t.Fatalf("%s: %s %v", name, r.Outcome, r.Reasons)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	landed := seen["/landed"]
	if landed == nil {
		t.Fatal("the redirect to the other host never arrived")
	}
	for _, h := range []string{"X-Auth-Token", "X-Synthetic", "Authorization", "Cookie", "Referer"} {
		if v := landed.Get(h); v != "" {
			t.Errorf("the other host got %s: %s", h, v)
		}
	}
	if landed.Get("Accept") != "application/json" {
		t.Errorf("a harmless header was dropped: Accept = %q", landed.Get("Accept"))
	}
	t.Logf("reliability: redirect to another host: it received %s; the same host received X-Auth-Token", headerNames(landed))
	if here := seen["/here"]; here == nil || here.Get("X-Auth-Token") != "tok-123456" {
		t.Errorf("a redirect on the same host lost the credential header: %v", here)
	}
}

func headerNames(h http.Header) string {
	var names []string
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// follow_redirects: false judges the redirect itself (a login page's 302 to the identity
// provider, say): status is the 3xx and its Location is a header to assert on; by default
// the redirect is followed.
func TestFollowRedirectsFalse(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			http.Redirect(w, r, "/idp", http.StatusFound)
		}
	}))
	defer target.Close()
	cs := build(t, target.URL, `
checks:
  - name: stays
    kind: http
    request: {url: "${T}/login", follow_redirects: false}
    assert: ["status == 302", "headers['Location'] == '/idp'", "redirects == 0"]
  - name: follows
    kind: http
    request: {url: "${T}/login"}
    assert: ["status == 200", "redirects == 1"]
`)
	for _, name := range []string{"stays", "follows"} {
		if r := cs[name].Run(context.Background(), checks.Input{}); r.Outcome != checks.Pass {
			t.Errorf("%s: %s %v", name, r.Outcome, r.Reasons)
		}
	}
}
