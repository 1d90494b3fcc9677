package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/browser"
)

func brokenSite(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			fmt.Fprint(w, `{"ok":true}`)
		case "/app.js":
			w.Header().Set("Content-Type", "application/javascript")
			fmt.Fprint(w, "window.boot();\n")
		default:
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, `<!doctype html><title>Home</title><div id=app></div><script src=/app.js></script>`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func browserConfig(url, chromium string) string {
	return fmt.Sprintf(`
browser: {path: %q}
checks:
  - {name: api, kind: http, request: {url: "%[2]s/ok"}, assert: ["status == 200"]}
  - {name: home, kind: browser, url: "%[2]s/", timeout: 20s, retries: 0}
`, chromium, url)
}

// A failing browser check prints its reason and the paths of its evidence, written under
// --artifacts.
func TestRunBrowserArtifacts(t *testing.T) {
	if _, err := browser.Find("", nil); err != nil {
		if os.Getenv("VIGIL_REQUIRE_BROWSER") != "" {
			t.Fatalf("VIGIL_REQUIRE_BROWSER is set: %v", err)
		}
		t.Skipf("Chromium is not installed (set VIGIL_REQUIRE_BROWSER=1 to make this a failure): %v", err)
	}
	srv := brokenSite(t)
	cfg := writeConfig(t, browserConfig(srv.URL, ""))
	dir := filepath.Join(t.TempDir(), "evidence")
	code, out, errs := run("run", "-c", cfg, "--artifacts", dir)
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "TypeError: window.boot is not a function at "+srv.URL+"/app.js:1:") {
		t.Errorf("output does not name the exception and its line:\n%s", out)
	}
	shot := regexp.MustCompile(`screenshot\.png: (\S+)`).FindStringSubmatch(out)
	if shot == nil || filepath.Dir(shot[1]) != dir {
		t.Fatalf("no screenshot path under %s in:\n%s", dir, out)
	}
	png, err := os.ReadFile(shot[1])
	if err != nil || !strings.HasPrefix(string(png), "\x89PNG") {
		t.Errorf("screenshot %s: %v (%d bytes)", shot[1], err, len(png))
	}
	if !strings.Contains(out, "errors.txt: "+dir) {
		t.Errorf("errors.txt path not printed:\n%s", out)
	}
}

// Without Chromium, browser checks end as error with the install command and every other
// check still runs.
func TestRunWithoutChromium(t *testing.T) {
	srv := brokenSite(t)
	cfg := writeConfig(t, browserConfig(srv.URL, "/nonexistent/chromium"))
	code, out, errs := run("run", "-c", cfg)
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if !regexp.MustCompile(`(?m)^PASS\s+api\s`).MatchString(out) || !regexp.MustCompile(`(?m)^ERROR\s+home\s`).MatchString(out) {
		t.Errorf("want api PASS and home ERROR:\n%s", out)
	}
	if !strings.Contains(out, "sudo apt-get install -y chromium") {
		t.Errorf("no install hint:\n%s", out)
	}
}
