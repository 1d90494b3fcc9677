package checks

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/vigil-monitor/vigil/configs"
)

// A page behind HTTP basic authentication answers 401 with a challenge: every visitor
// without credentials gets a sign-in prompt, not the page. That answer is the page's
// fault, a fail (it was an error, "vigil could not measure", with Chromium's
// net::ERR_INVALID_AUTH_CREDENTIALS as its only words); with the credentials in headers,
// the check passes.
func TestBrowserPageBehindHTTPAuth(t *testing.T) {
	pool := BrowserPool(t)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "synthetic" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="shop"`)
			http.Error(w, "sign in", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `<!doctype html><title>Shop</title><div id=app data-ready=1>ok</div>`)
	}))
	check := func(headers string) *Check {
		cfg, err := configs.Parse(t.TempDir()+"/vigil.yaml", []byte(fmt.Sprintf(`
checks:
  - {name: home, kind: browser, url: %q, wait_for: "#app[data-ready]", timeout: 15s, headers: %s}
`, srv.URL+"/", headers)), configs.Options{Environ: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		list, err := Build(cfg, Deps{Browser: pool})
		if err != nil {
			t.Fatal(err)
		}
		return list[0]
	}
	wantOutcome(t, run(t, check("{}"), Input{}), Fail, "answered 401 Unauthorized asking for credentials",
		`WWW-Authenticate: Basic realm="shop"`, "sign-in prompt")
	wantOutcome(t, run(t, check(`{Authorization: "Basic c3ludGhldGljOnMzY3JldA=="}`), Input{}), Pass)
}
