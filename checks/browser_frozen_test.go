package checks_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/checks"
)

// A page whose main thread is stuck in a loop fails, with a reason that says the page
// stopped responding (not only that an element never showed), even for a check that
// asserts nothing about rendering; its evidence goes as far as a frozen page allows (the
// transcript says why there is no screenshot) and the run keeps its timeout. A page that
// is only waiting is not called unresponsive.
func TestFrozenPageFails(t *testing.T) {
	pool := browserPool(t)
	mux := http.NewServeMux()
	page := func(path, body string) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, body)
		})
	}
	page("/frozen", `<!doctype html><title>Shop</title><div id=app></div><script>setTimeout(function () { while (true) {} }, 10);</script>`)
	page("/idle", `<!doctype html><title>Shop</title><div id=app></div>`)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	// 12 s: on a loaded machine under -race, the tab and the load took 3 s of an 8 s run, and
	// the wait that ran out had seen under 2 s of silence, too little to call a page frozen.
	const timeout = 12 * time.Second
	cs := buildDeps(t, checks.Deps{Browser: pool}, srv.URL, fmt.Sprintf(`
checks:
  - {name: frozen, kind: browser, url: "${T}/frozen", wait_for: "#app[data-ready]", timeout: %s}
  - {name: frozen-lenient, kind: browser, url: "${T}/frozen", wait_for: "#app[data-ready]", timeout: %s, assert: ["js_errors == 0"]}
  - {name: idle, kind: browser, url: "${T}/idle", wait_for: "#app[data-ready]", timeout: %s}
`, timeout, timeout, timeout))
	for _, name := range []string{"frozen", "frozen-lenient"} {
		t.Run(name, func(t *testing.T) {
			r := cs[name].Run(context.Background(), checks.Input{})
			transcript := strings.Join(r.Transcript, "\n")
			t.Logf("%s %v in %s\n%s", r.Outcome, r.Reasons, r.Duration, transcript)
			if r.Outcome != checks.Fail || !strings.Contains(strings.Join(r.Reasons, "\n"), "the page did not respond for ") ||
				!strings.Contains(r.Reasons[0], "a script busy in a loop?") {
				t.Fatalf("%s %v, want a failure that says the page did not respond", r.Outcome, r.Reasons)
			}
			if !strings.Contains(transcript, "no screenshot") && !hasArtifact(r, "screenshot.png") {
				t.Error("neither a screenshot nor a word on why there is none")
			}
			if r.Duration > timeout+5*time.Second {
				t.Errorf("the run took %s, past its %s timeout", r.Duration, timeout)
			}
		})
	}
	t.Run("idle", func(t *testing.T) {
		r := cs["idle"].Run(context.Background(), checks.Input{})
		if r.Outcome != checks.Fail || strings.Contains(strings.Join(r.Reasons, "\n"), "did not respond") {
			t.Fatalf("%s %v, want a failure for the element alone, the page answering", r.Outcome, r.Reasons)
		}
	})
}

func hasArtifact(r *checks.Result, name string) bool {
	for _, a := range r.Artifacts {
		if a.Name == name {
			return true
		}
	}
	return false
}
