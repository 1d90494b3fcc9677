package checks

import (
	"os"
	"testing"

	"github.com/vigil-monitor/vigil/browser"
)

// BrowserPool returns a pool closed when the test ends, skipping the test when Chromium is
// missing and VIGIL_REQUIRE_BROWSER is unset. It is exported for the package's external
// tests, and exists only in the test binary.
func BrowserPool(t *testing.T) *browser.Pool {
	t.Helper()
	if _, err := browser.Find("", nil); err != nil {
		if os.Getenv("VIGIL_REQUIRE_BROWSER") != "" {
			t.Fatalf("VIGIL_REQUIRE_BROWSER is set: %v", err)
		}
		t.Skipf("Chromium is not installed (set VIGIL_REQUIRE_BROWSER=1 to make this a failure): %v", err)
	}
	p := browser.NewPool(browser.Options{Concurrency: 2})
	t.Cleanup(func() { p.Close() })
	return p
}

// BrowserPoolWith is BrowserPool with options (extra Chromium flags, a concurrency).
func BrowserPoolWith(t *testing.T, opts browser.Options) *browser.Pool {
	t.Helper()
	BrowserPool(t) // skips without Chromium
	p := browser.NewPool(opts)
	t.Cleanup(func() { p.Close() })
	return p
}
