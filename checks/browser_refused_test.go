package checks_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/checks"
)

// A deploy with old and new servers side by side: the new page (a Vite build) names
// /assets/index-3f9a1c.js, the old server does not have it and its SPA fallback answers
// with the site's page, text/html, 200 OK. Chromium refuses the module script and the app
// never starts, with no exception and no failed request: a check without wait_for passed,
// and one with it waited out its timeout to say only that its element never showed. The
// refused script fails the default assertions, at once, with the reason.
func TestBrowserScriptServedAsThePage(t *testing.T) {
	pool := browserPool(t)
	mux := http.NewServeMux()
	const index = `<!doctype html><title>Shop</title><div id=app></div><script type=module src="/assets/index-3f9a1c.js"></script>`
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, index)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cs := buildDeps(t, checks.Deps{Browser: pool}, srv.URL, `
checks:
  - {name: home, kind: browser, url: "${T}/", timeout: 20s}
  - {name: rendered, kind: browser, url: "${T}/", wait_for: "#app[data-ready]", timeout: 20s}
`)
	want := "failed_scripts == 0 is false: failed_scripts = 1 (GET " + srv.URL +
		"/assets/index-3f9a1c.js: answered 200 OK as text/html, which the browser refused to run (script))"
	for _, name := range []string{"home", "rendered"} {
		t.Run(name, func(t *testing.T) {
			r := cs[name].Run(context.Background(), checks.Input{})
			transcript := strings.Join(r.Transcript, "\n")
			t.Logf("%s %v in %s\n%s", r.Outcome, r.Reasons, r.Duration, transcript)
			if r.Outcome != checks.Fail || len(r.Reasons) == 0 || r.Reasons[0] != want {
				t.Fatalf("%s %q\nwant a failure for %q", r.Outcome, r.Reasons, want)
			}
			if name == "rendered" && !strings.Contains(transcript, "stopped at the first fatal error") {
				t.Error("the run waited for wait_for after the page's script was refused")
			}
		})
	}
}
