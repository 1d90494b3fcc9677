package checks_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/browser"
	"github.com/vigil-monitor/vigil/checks"
)

// leakPage allocates without bound, as a release whose script leaks on every frame
// would: the renderer runs out of memory and crashes (Inspector.targetCrashed).
const leakPage = `<!doctype html><title>Shop</title><div id=app></div><script>
var kept = [];
(function grow() {
  for (var i = 0; i < 20; i++) kept.push(new Array(1e6).fill(kept.length));
  setTimeout(grow, 0);
})();
</script>`

// A page that crashes Chromium's renderer in every tab fails the run: the check visits it
// once more in a fresh tab, and a second crash in a row is the page's doing. A crash
// followed by a good load (the renderer died of something else) is judged on the good
// load, and the transcript says the first visit crashed. The renderers' V8 heap is capped
// at 64 MiB here, so the leak kills one in seconds rather than after gigabytes. The whole
// browser exiting stays an error (TestBrowserCheckErrors).
func TestRendererCrashTwiceFails(t *testing.T) {
	pool := checks.BrowserPoolWith(t, browser.Options{Concurrency: 1, Flags: []string{"--js-flags=--max-old-space-size=64"}})
	var flakyHits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/leak", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, leakPage)
	})
	mux.HandleFunc("/flaky", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		if flakyHits.Add(1) == 1 {
			fmt.Fprint(w, leakPage)
			return
		}
		fmt.Fprint(w, `<!doctype html><title>Shop</title><div id=app data-ready=1>ok</div>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	const timeout = 60 * time.Second
	cs := buildDeps(t, checks.Deps{Browser: pool}, srv.URL, fmt.Sprintf(`
checks:
  - {name: leak, kind: browser, url: "${T}/leak", wait_for: "#app[data-ready]", timeout: %s}
  - {name: flaky, kind: browser, url: "${T}/flaky", wait_for: "#app[data-ready]", timeout: %s}
`, timeout, timeout))
	transcript := func(r *checks.Result) string { return strings.Join(r.Transcript, "\n") }

	t.Run("twice in a row fails", func(t *testing.T) {
		r := cs["leak"].Run(context.Background(), checks.Input{})
		t.Logf("%s %v in %s\n%s", r.Outcome, r.Reasons, r.Duration, transcript(r))
		if r.Outcome != checks.Fail || len(r.Reasons) == 0 || !strings.Contains(r.Reasons[0], "the page crashed Chromium's renderer twice in a row") {
			t.Fatalf("%s %v, want a failure for two crashes in a row", r.Outcome, r.Reasons)
		}
		if !strings.Contains(transcript(r), "visiting it once more in a fresh tab") {
			t.Error("the transcript does not say the page was visited again")
		}
		if r.Duration > timeout+5*time.Second {
			t.Errorf("the run took %s, past its %s timeout", r.Duration, timeout)
		}
	})
	t.Run("once, then a good load, is judged on the good load", func(t *testing.T) {
		r := cs["flaky"].Run(context.Background(), checks.Input{})
		t.Logf("%s %v in %s\n%s", r.Outcome, r.Reasons, r.Duration, transcript(r))
		if r.Outcome != checks.Pass {
			t.Fatalf("%s %v, want a pass on the second visit", r.Outcome, r.Reasons)
		}
		if flakyHits.Load() != 2 {
			t.Errorf("the page was asked for %d times, want 2", flakyHits.Load())
		}
		if r.Vars["wait_for_found"] != true {
			t.Errorf("not judged on the good load: wait_for_found = %v", r.Vars["wait_for_found"])
		}
	})
}

// slowCrash is a runner whose first visit crashes the renderer (a real one) and then takes
// the run's time up to a second before its end, as a crash that came late in a slow load
// would: it counts the visits it was asked for.
type slowCrash struct {
	pool   checks.BrowserRunner
	visits atomic.Int32
}

func (s *slowCrash) Visit(ctx context.Context, v *browser.Visit) (*browser.Report, error) {
	if s.visits.Add(1) > 1 {
		return s.pool.Visit(ctx, v)
	}
	rep, err := s.pool.Visit(ctx, v)
	if deadline, ok := ctx.Deadline(); ok {
		select {
		case <-time.After(time.Until(deadline) - time.Second):
		case <-ctx.Done():
		}
	}
	return rep, err
}

// A renderer crash with too little of the run left to load the page again (under 2 s) is
// not visited again: the second visit could only be cut short, and would say nothing of
// the page. The run is an error that says why, not a failure: one crash is not the page's
// doing for sure.
func TestRendererCrashWithNoTimeLeftIsNotVisitedAgain(t *testing.T) {
	pool := checks.BrowserPoolWith(t, browser.Options{Concurrency: 1, Flags: []string{"--js-flags=--max-old-space-size=64"}})
	runner := &slowCrash{pool: pool}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, leakPage)
	}))
	t.Cleanup(srv.Close)
	cs := buildDeps(t, checks.Deps{Browser: runner}, srv.URL, `
checks:
  - {name: leak, kind: browser, url: "${T}/", wait_for: "#app[data-ready]", timeout: 15s}
`)
	r := cs["leak"].Run(context.Background(), checks.Input{})
	transcript := strings.Join(r.Transcript, "\n")
	t.Logf("%s %v in %s\n%s", r.Outcome, r.Reasons, r.Duration, transcript)
	if n := runner.visits.Load(); n != 1 {
		t.Fatalf("the page was visited %d times, want once: there was no time for a second visit", n)
	}
	if r.Outcome != checks.Error || len(r.Reasons) == 0 || !strings.Contains(r.Reasons[0], "renderer") {
		t.Errorf("%s %v, want an error that names the renderer's crash", r.Outcome, r.Reasons)
	}
	if !strings.Contains(transcript, "too little to visit it again") {
		t.Error("the transcript does not say why the page was not visited again")
	}
	if r.Duration > 20*time.Second {
		t.Errorf("the run took %s, past its 15s timeout", r.Duration)
	}
}
