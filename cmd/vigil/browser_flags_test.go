package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/browser"
)

// browser.flags reach the Chromium that browser checks share: a host that only the
// configured --host-resolver-rules maps to the loopback page loads with them, not without.
func TestBrowserFlagsFromConfig(t *testing.T) {
	if _, err := browser.Find("", nil); err != nil {
		if os.Getenv("VIGIL_REQUIRE_BROWSER") != "" {
			t.Fatalf("VIGIL_REQUIRE_BROWSER is set: %v", err)
		}
		t.Skipf("Chromium is not installed (set VIGIL_REQUIRE_BROWSER=1 to make this a failure): %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>Shop</title><div id=app data-ready>ok</div>`)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	page := "http://shop.vigil.test:" + u.Port() + "/"
	for _, tc := range []struct {
		flags string
		code  int
	}{
		{`["--host-resolver-rules=MAP shop.vigil.test 127.0.0.1"]`, 0},
		{`[]`, 1},
	} {
		cfg := writeConfig(t, fmt.Sprintf(`
browser: {flags: %s}
checks:
  - {name: home, kind: browser, url: %q, wait_for: "#app[data-ready]", timeout: 20s, retries: 0}
`, tc.flags, page))
		code, out, errs := run("run", "-c", cfg)
		if code != tc.code {
			t.Errorf("browser.flags %s: exit %d, want %d\n%s\n%s", tc.flags, code, tc.code, out, errs)
		}
		if tc.code == 0 && !strings.Contains(out, "home") {
			t.Errorf("no line for the check:\n%s", out)
		}
	}
}
