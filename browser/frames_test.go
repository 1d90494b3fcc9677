package browser

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// An iframe served from another site (the shop's checkout widget on its own domain) is the
// deploy's page as much as the main frame is. Chromium runs such a frame in a process of
// its own when site isolation is on, and nothing it did reached the page's listeners: its
// startup TypeError, the error an SDK in it hid with preventDefault(), its console.error
// and its 404 script were all missing from the report, and the check passed (only its
// alert(), which Chromium hands to the tab, was seen). vigil's Chromium keeps every frame
// in the page's process, so all of them are seen.
//
// The other site is widgets.test, which this pool's Chromium resolves to 127.0.0.1
// (--host-resolver-rules): a different site to Chromium, the same loopback server here.
func TestProblemsInAFrameFromAnotherSite(t *testing.T) {
	needBrowser(t)
	pool := NewPool(Options{Concurrency: 1, Flags: []string{"--host-resolver-rules=MAP widgets.test 127.0.0.1"}})
	t.Cleanup(func() { pool.Close() })
	s := newSite(t)
	port := s.URL[strings.LastIndex(s.URL, ":"):]
	widget := "http://widgets.test" + port
	s.html("/", `<!doctype html><title>Checkout</title><div id=app></div>
<iframe id=pay src="`+widget+`/widget"></iframe>
<script>document.getElementById('pay').onload = function () { document.getElementById('app').dataset.ready = '1'; };</script>`)
	s.html("/widget", `<!doctype html><title>Widget</title>
<script src="/widget.js"></script>
<script src="/sdk.js"></script>
<script src="/later.js"></script>
<script src="/gone.js"></script>
<script>alert("card form unavailable");</script>`)
	s.js("/widget.js", "var cfg = null;\ncfg.currency;\n")
	s.js("/sdk.js", `window.addEventListener('error', function (e) { e.preventDefault(); });`)
	s.js("/later.js", "console.error('payment provider refused the key');\nsetTimeout(function () { null.amount; }, 0);\n")

	rep, took, err := visit(t, pool, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 20*time.Second)
	if err != nil {
		t.Fatalf("visit: %v", err)
	}
	if s.hitCount("/widget") != 1 {
		t.Fatalf("the frame was loaded %d times, want once", s.hitCount("/widget"))
	}
	var startup, hidden bool
	for _, e := range rep.Exceptions {
		switch {
		case strings.Contains(e.Message, "currency") && e.URL == widget+"/widget.js" && e.Line == 2:
			startup = true
		case strings.Contains(e.Message, "amount") && e.URL == widget+"/later.js" && e.Line == 2:
			hidden = true
		}
	}
	if !startup || !hidden || len(rep.Exceptions) != 2 {
		t.Errorf("want the frame's startup TypeError and the one its SDK hid, once each; got:\n%s", problems(rep))
	}
	if len(rep.ConsoleErrors) != 1 || rep.ConsoleErrors[0].Text != "payment provider refused the key" || rep.ConsoleErrors[0].URL != widget+"/later.js" {
		t.Errorf("console errors: %+v", rep.ConsoleErrors)
	}
	if len(rep.FailedRequests) != 1 || rep.FailedRequests[0].URL != widget+"/gone.js" || rep.FailedRequests[0].Type != "script" || rep.FailedRequests[0].Status != 404 {
		t.Errorf("failed requests: %+v", rep.FailedRequests)
	}
	if len(rep.Dialogs) != 1 || rep.Dialogs[0].Message != "card form unavailable" || !strings.HasPrefix(rep.Dialogs[0].URL, widget) {
		t.Errorf("dialogs: %+v", rep.Dialogs)
	}
	if !rep.WaitForFound {
		t.Error("the page never saw its frame load")
	}
}

// An operator's own --disable-features adds to vigil's list: it does not put each site
// back in a process of its own (and so hide the frames' problems again), nor drop the
// features vigil turns off. The browser's command line shows both.
func TestOperatorDisableFeaturesKeepsFramesSeen(t *testing.T) {
	needBrowser(t)
	pool := NewPool(Options{Concurrency: 1, Flags: []string{"--host-resolver-rules=MAP widgets.test 127.0.0.1", "--disable-features=MediaRouter"}})
	t.Cleanup(func() { pool.Close() })
	s := newSite(t)
	port := s.URL[strings.LastIndex(s.URL, ":"):]
	s.html("/", `<!doctype html><title>t</title><iframe src="http://widgets.test`+port+`/widget"></iframe>`)
	s.html("/widget", `<!doctype html><script>null.inFrame;</script>`)
	rep, took, err := visit(t, pool, 20*time.Second, &Visit{URL: s.URL + "/"})
	checkEnded(t, took, 20*time.Second)
	if err != nil {
		t.Fatalf("visit: %v", err)
	}
	if len(rep.Exceptions) != 1 || !strings.Contains(rep.Exceptions[0].Message, "inFrame") {
		t.Errorf("want the frame's TypeError; got:\n%s", problems(rep))
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pool.BrowserPID()))
	if err != nil {
		t.Fatal(err)
	}
	var disabled string
	for _, arg := range strings.Split(string(cmdline), "\x00") {
		if v, ok := strings.CutPrefix(arg, "--disable-features="); ok {
			disabled += v + ","
		}
	}
	for _, f := range []string{"site-per-process", "IsolateOrigins", "Translate", "MediaRouter"} {
		if !strings.Contains(","+disabled, ","+f+",") {
			t.Errorf("--disable-features=%s does not name %s", disabled, f)
		}
	}
}

// A dedicated Web Worker (a search index, a PDF renderer) that throws as it starts is the
// page's problem: its uncaught error reaches the page's Worker object, and the run.
func TestProblemsInAWorker(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/", `<!doctype html><title>Search</title><div id=app></div>
<script>new Worker('/index-worker.js'); setTimeout(function () { document.getElementById('app').dataset.ready = '1'; }, 500);</script>`)
	s.js("/index-worker.js", "var index = null;\nindex.terms;\n")
	rep, took, err := visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 20*time.Second)
	if err != nil {
		t.Fatalf("visit: %v", err)
	}
	if len(rep.Exceptions) != 1 || !strings.Contains(rep.Exceptions[0].Message, "terms") || rep.Exceptions[0].URL != s.URL+"/index-worker.js" || rep.Exceptions[0].Line != 2 {
		t.Errorf("want the worker's TypeError at index-worker.js:2; got:\n%s", problems(rep))
	}
}
