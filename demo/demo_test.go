package demo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/browser"
	"github.com/vigil-monitor/vigil/checks"
)

// The demo is the product's main job on a built-in default: it must catch the broken
// deploy with a real browser, roll it back once and tell Slack, every time.
func TestDemo(t *testing.T) {
	pool := browser.NewPool(browser.Options{Concurrency: 2})
	t.Cleanup(func() { _ = pool.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := pool.Check(ctx); err != nil {
		if os.Getenv("VIGIL_REQUIRE_BROWSER") != "" {
			t.Fatalf("VIGIL_REQUIRE_BROWSER is set and the demo needs Chromium: %v", err)
		}
		t.Skipf("the demo needs Chromium (scripts/setup installs it): %v", err)
	}
	hc := checks.NewHTTPClient("vigil-demo-test")
	defer hc.CloseIdle()
	var out bytes.Buffer
	err := Run(ctx, Options{Out: &out, Deps: checks.Deps{HTTP: hc, Browser: pool}, BrowserReady: pool.Check})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"verdict: PASSED",
		"(every check passed once by ",
		"verdict: FAILED",
		"TypeError: r.formatPrice is not a function at http://127.0.0.1:",
		"/static/app.js:6:54",
		"the shop rolled back: v2 → v1",
		"Deploy of shop v2 in demo failed verification",
		"uploaded home-page-screenshot-", // then a tag of the delivery: home-page-screenshot-1a2b3c4d5e6f.png
		"Deploy history of the sample shop: v1 → v2 → v1",
		"== 4. the pipeline tries v2 again",
		"   blocked (version_failed): shop v2 failed verification ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo output lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "verdict: PASSED"); n != 2 {
		t.Errorf("want the good deploy and the rollback to pass, got %d passes", n)
	}
}

// Without Chromium the demo says how to get one, and names only ways out it can use: it
// reads no config, so not browser.path. (The search for a binary cannot be made to miss on
// a machine with Chromium installed: its error is given as the pool gives it.)
func TestDemoWithoutChromiumSaysHowToGetIt(t *testing.T) {
	var out bytes.Buffer
	missing := func(context.Context) error {
		return fmt.Errorf("starting the browser: %w", &browser.NotFoundError{Tried: []string{"/usr/lib/chromium/chromium", "chromium"}})
	}
	err := Run(t.Context(), Options{Out: &out, BrowserReady: missing})
	msg := fmt.Sprint(err)
	for _, want := range []string{"vigil demo needs Chromium", "sudo apt-get install -y chromium", "VIGIL_BROWSER", "scripts/demo installs it"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "browser.path") {
		t.Errorf("%q names browser.path, a config key the demo has no config for", msg)
	}
}
