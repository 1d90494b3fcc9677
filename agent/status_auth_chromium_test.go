package agent_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// With status_page_auth, people open the status page in a browser with the token as basic
// auth's password. A 401 that offered only a Bearer challenge, which no browser handles,
// showed the JSON error and asked nothing: the token typed into the prompt, or given in the
// URL (http://vigil:TOKEN@host/, which a browser sends only to a Basic challenge), never
// went. Pages now also offer Basic; the API keeps to Bearer.
func TestStatusPageAuthInABrowser(t *testing.T) {
	base := startPlainAgent(t, "agent: {api_token: s3cret-token, status_page_auth: true}\n")
	for _, tc := range []struct {
		path  string
		basic bool
	}{{"/", true}, {"/checks/home", true}, {"/api/v1/checks", false}} {
		resp, err := http.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Values("WWW-Authenticate")
		hasBasic := slices.ContainsFunc(got, func(v string) bool { return strings.HasPrefix(v, "Basic ") })
		if resp.StatusCode != http.StatusUnauthorized || !slices.Contains(got, `Bearer realm="vigil"`) || hasBasic != tc.basic {
			t.Errorf("GET %s without the token: %d, WWW-Authenticate %q; want 401 with Bearer, and Basic %v", tc.path, resp.StatusCode, got, tc.basic)
		}
	}

	path := chromium(t)
	page := func(tb *tab, u string) string {
		t.Helper()
		// the tab's own context (3 minutes): a shorter one on a tab's first call would end
		// its browser with it
		if err := chromedp.Do(tb.ctx, chromedp.Navigate(u)); err != nil {
			t.Fatalf("open %s: %v", u, err)
		}
		return eval[string](tb, `document.title + " | " + document.body.innerText.slice(0, 200)`)
	}
	host := strings.TrimPrefix(base, "http://")
	tb := newTab(t, path)
	if got := page(tb, "http://vigil:s3cret-token@"+host+"/"); !strings.Contains(got, "vigil") || strings.Contains(got, "credentials") {
		t.Fatalf("the status page with the token in the URL: %q; want the status page", got)
	}
	// the browser keeps the credentials for the origin, as after a prompt
	if got := page(tb, base+"/checks/home"); !strings.HasPrefix(got, "home · vigil") {
		t.Errorf("a check's page after signing in: %q; want the page of home", got)
	}
	// a wrong token: the browser tried it (it answers a Basic challenge) and was refused
	other := newTab(t, path)
	err := chromedp.Do(other.ctx, chromedp.Navigate("http://vigil:wrong@"+host+"/"))
	if err == nil || !strings.Contains(err.Error(), "ERR_INVALID_AUTH_CREDENTIALS") {
		t.Errorf("a wrong token in the URL: %v; want Chromium's ERR_INVALID_AUTH_CREDENTIALS", err)
	}
}
