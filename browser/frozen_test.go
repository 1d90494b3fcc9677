package browser

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// A page whose main thread is stuck in a loop answers nothing: its waits run out, and the
// report says the page stopped responding (Report.Unresponsive), not only that an element
// never showed. A page that is only waiting (a request that never answers, an element
// never rendered) still answers and is not called unresponsive. Each visit keeps its
// deadline, the evidence's attempts included.
func TestFrozenPageIsReported(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/after-load", `<!doctype html><title>loop</title><div id=app></div><script>setTimeout(function(){ for(;;){} }, 10);</script>`)
	s.html("/before-load", `<!doctype html><title>loop</title><div id=app></div><script>while (true) {}</script>`)
	s.html("/idle", `<!doctype html><title>idle</title><div id=app></div>`)
	s.html("/idle-loading", `<!doctype html><title>idle</title><div id=app></div><img src=/hang>`)
	s.mux.HandleFunc("/hang", hang(nil))
	const timeout = 8 * time.Second
	for _, tc := range []struct {
		name   string
		visit  Visit
		frozen bool
	}{
		{name: "busy after load", visit: Visit{URL: s.URL + "/after-load", WaitFor: "#app[data-ready]"}, frozen: true},
		{name: "busy before load", visit: Visit{URL: s.URL + "/before-load"}, frozen: true},
		{name: "busy in a journey's step", visit: Visit{URL: s.URL + "/after-load", Steps: []Step{{Kind: StepClick, Selector: "#go"}}}, frozen: true},
		{name: "idle, never rendered", visit: Visit{URL: s.URL + "/idle", WaitFor: "#app[data-ready]"}},
		{name: "idle, never loaded", visit: Visit{URL: s.URL + "/idle-loading"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.visit
			var mu sync.Mutex
			var lines []string
			v.Logf = func(f string, a ...any) {
				line := time.Now().Format("05.000 ") + fmt.Sprintf(f, a...)
				mu.Lock()
				lines = append(lines, line)
				mu.Unlock()
				t.Log("  " + line)
			}
			rep, took, err := visit(t, shared, timeout, &v)
			checkEnded(t, took, timeout)
			if err != nil {
				t.Fatalf("a page that answered is measurable, not an error: %v", err)
			}
			if !tc.frozen {
				if rep.Unresponsive != 0 {
					t.Errorf("a page that is only waiting was reported unresponsive for %s", rep.Unresponsive)
				}
				return
			}
			if rep.Unresponsive < time.Second {
				t.Errorf("unresponsive = %s; want the time the page's main thread answered nothing, a second or more", rep.Unresponsive)
			}
			if rep.WaitForFound && v.WaitFor != "" || rep.Loaded && tc.name == "busy before load" || rep.StepError == "" && len(v.Steps) > 0 {
				t.Errorf("found %t, loaded %t, step error %q: the page's work cannot have succeeded", rep.WaitForFound, rep.Loaded, rep.StepError)
			}
			mu.Lock()
			all := strings.Join(lines, "\n")
			mu.Unlock()
			if !strings.Contains(all, "did not respond") {
				t.Errorf("the transcript does not say the page stopped responding:\n%s", all)
			}
		})
	}
	// And the shared browser still serves the next visit.
	s.html("/ok", `<!doctype html><title>ok</title><div id=app data-ready=1>ok</div>`)
	rep, _, err := visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/ok", WaitFor: "#app[data-ready]"})
	if err != nil || !rep.WaitForFound || rep.Unresponsive != 0 {
		t.Fatalf("next visit after a frozen page: err %v, found %t, unresponsive %s", err, rep.WaitForFound, rep.Unresponsive)
	}
}
