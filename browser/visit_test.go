package browser

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestGoodPagePasses(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/", `<!doctype html><title>Shop</title><link rel=stylesheet href=/app.css>
<div id=app></div><script src=/app.js></script>`)
	s.mux.HandleFunc("/app.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		w.Write([]byte("#app{color:#333}"))
	})
	s.js("/app.js", `document.getElementById('app').textContent = 'Welcome to the shop'; document.getElementById('app').dataset.ready = '1';`)
	rep, took, err := visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 20*time.Second)
	if err != nil {
		t.Fatalf("visit: %v", err)
	}
	if p := problems(rep); p != "" {
		t.Errorf("a good page reported problems:\n%s", p)
	}
	if rep.Status != 200 || rep.Title != "Shop" || !rep.Loaded || !rep.WaitForFound || !strings.HasPrefix(rep.URL, s.URL) {
		t.Errorf("report: status %d title %q loaded %t found %t url %q", rep.Status, rep.Title, rep.Loaded, rep.WaitForFound, rep.URL)
	}
	if rep.Requests < 3 {
		t.Errorf("requests = %d, want the document, the script and the stylesheet", rep.Requests)
	}
	if rep.Timings.Load <= 0 || rep.Timings.TTFB <= 0 || rep.Timings.DOMContentLoaded <= 0 || rep.Timings.LCP <= 0 {
		t.Errorf("timings not measured: %+v", rep.Timings)
	}
	if rep.Screenshot != nil {
		t.Errorf("a passing visit took a screenshot (%d bytes)", len(rep.Screenshot))
	}
}

// A bundle that throws at startup, before the error-reporting SDK it would initialise: the
// page's own reporting never sees it, vigil must.
func TestStartupExceptionBeforeSDK(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/", `<!doctype html><title>Distributor</title><div id=app></div>
<script src=/bundle.js></script>
<script src=/sdk.js></script>`)
	s.js("/bundle.js", "var config = {};\n"+
		"function start() {\n"+
		"  config.widgets.forEach(function (w) { w(); });\n"+ // line 3
		"}\n"+
		"start();\n"+
		"window.SDK_SHOULD_INIT = true;\n")
	s.js("/sdk.js", `if (window.SDK_SHOULD_INIT) { window.addEventListener('error', function (e) { e.preventDefault(); }); }`)
	rep, took, err := visit(t, shared, 10*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 10*time.Second)
	if err != nil {
		t.Fatalf("visit: %v", err)
	}
	if len(rep.Exceptions) != 1 {
		t.Fatalf("want exactly 1 exception, got:\n%s", problems(rep))
	}
	e := rep.Exceptions[0]
	if !strings.Contains(e.Message, "TypeError") || !strings.Contains(e.Message, "forEach") {
		t.Errorf("message %q does not name the TypeError", e.Message)
	}
	if e.URL != s.URL+"/bundle.js" || e.Line != 3 || e.Column == 0 {
		t.Errorf("location %q, want %s/bundle.js:3:COL", e.Location(), s.URL)
	}
	if !strings.Contains(e.Stack, "start") {
		t.Errorf("stack does not show the function: %q", e.Stack)
	}
	if rep.WaitForFound {
		t.Error("the app never rendered, yet wait_for was found")
	}
	if !isPNG(rep.Screenshot) {
		t.Errorf("no PNG screenshot kept on a failing page (%d bytes)", len(rep.Screenshot))
	}
}

// An error-reporting SDK that calls preventDefault() hides errors from CDP's
// Runtime.exceptionThrown; the injected capture-phase listeners still see them.
func TestSDKPreventDefaultDoesNotHideErrors(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/", `<!doctype html><title>t</title><div id=app></div>
<script src=/sdk.js></script>
<script src=/app.js></script>`)
	s.js("/sdk.js", `window.addEventListener('error', function (e) { e.preventDefault(); });
window.onerror = function () { return true; };
window.addEventListener('unhandledrejection', function (e) { e.preventDefault(); });`)
	s.js("/app.js", `document.getElementById('app').dataset.ready = '1';
setTimeout(function later() { null.total; }, 0);
Promise.reject(new RangeError('price out of range'));
console.error('cart failed to render', 42);`)
	rep, took, err := visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 20*time.Second)
	if err != nil {
		t.Fatalf("visit: %v", err)
	}
	// The timer fires after load at the latest; the visit reads timings after load, so
	// the exception had its chance. Look for both.
	var thrown, rejected bool
	for _, e := range rep.Exceptions {
		switch {
		case e.Kind == KindException && strings.Contains(e.Message, "TypeError") && strings.HasSuffix(e.URL, "/app.js") && e.Line == 2:
			thrown = true
		case e.Kind == KindRejection && strings.Contains(e.Message, "RangeError: price out of range"):
			rejected = true
		}
	}
	if !thrown || !rejected || len(rep.Exceptions) != 2 {
		t.Errorf("want the TypeError at app.js:2 and the rejection, once each; got:\n%s", problems(rep))
	}
	if len(rep.ConsoleErrors) != 1 || rep.ConsoleErrors[0].Text != "cart failed to render 42" || rep.ConsoleErrors[0].Line != 4 {
		t.Errorf("console errors: %+v", rep.ConsoleErrors)
	}
}

func TestFailedScriptAndStylesheet(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/", `<!doctype html><title>t</title><link rel=stylesheet href=/missing.css>
<div id=app data-ready=1>hi</div><img src=/missing.png><script src=/missing.js></script>`)
	rep, took, err := visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 20*time.Second)
	if err != nil {
		t.Fatalf("visit: %v", err)
	}
	t.Logf("problems:\n%s", problems(rep))
	got := map[string]FailedRequest{}
	for _, f := range rep.FailedRequests {
		got[f.Type] = f
	}
	if f := got["script"]; f.Status != 404 || f.URL != s.URL+"/missing.js" || f.Method != "GET" {
		t.Errorf("404 script not recorded: %+v", rep.FailedRequests)
	}
	if f := got["stylesheet"]; f.Status != 404 {
		t.Errorf("404 stylesheet not recorded: %+v", rep.FailedRequests)
	}
	if _, ok := got["image"]; ok || len(rep.FailedRequests) != 2 {
		t.Errorf("want only the script and the stylesheet (a missing image is cosmetic): %+v", rep.FailedRequests)
	}
	if rep.Status != 200 {
		t.Errorf("document status %d", rep.Status)
	}
}

func TestErrorDocumentStatus(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream unavailable", http.StatusBadGateway)
	})
	rep, _, err := visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/down"})
	if err != nil {
		t.Fatalf("an error page is a page, not a failure to measure: %v", err)
	}
	if rep.Status != 502 || len(rep.FailedRequests) != 1 || rep.FailedRequests[0].Type != "document" {
		t.Errorf("status %d, failed %+v", rep.Status, rep.FailedRequests)
	}
}

// A document that never answers ends the visit as an error at its deadline; one that
// answers but whose subresource never finishes is recorded as not loaded.
func TestNeverLoadingPageEndsAtTimeout(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.mux.HandleFunc("/hang", hang(nil))
	s.html("/partial", `<!doctype html><title>partial</title><div id=app>hi</div><script src=/hang-script.js></script>`)
	s.mux.HandleFunc("/hang-script.js", hang(nil))

	const timeout = 4 * time.Second
	t.Run("no answer", func(t *testing.T) {
		rep, took, err := visit(t, shared, timeout, &Visit{URL: s.URL + "/hang"})
		checkEnded(t, took, timeout)
		if err == nil || !strings.Contains(err.Error(), "timed out") {
			t.Fatalf("want a timeout error, got %v", err)
		}
		if rep == nil || rep.Loaded {
			t.Errorf("report: %+v", rep)
		}
	})
	t.Run("answer that never finishes", func(t *testing.T) {
		// A roomy timeout: on a busy machine opening the tab alone can take seconds, and
		// the navigation must still get its document.
		const timeout = 15 * time.Second
		rep, took, err := visit(t, shared, timeout, &Visit{URL: s.URL + "/partial", NavigationTimeout: 3 * time.Second})
		checkEnded(t, took, timeout)
		if err != nil {
			t.Fatalf("the document answered: that is measurable, not an error: %v", err)
		}
		if rep.Loaded || len(rep.Pending) == 0 || !strings.Contains(strings.Join(rep.Pending, " "), "/hang-script.js") {
			t.Errorf("loaded %t, pending %v", rep.Loaded, rep.Pending)
		}
	})
	// A journey's second page whose own image never answers lists that image as still
	// loading, not the first page's too (a request the navigation left behind).
	t.Run("the next page's pending requests are its own", func(t *testing.T) {
		s.html("/first", `<!doctype html><title>first</title><img src=/hang-first.png>`)
		s.html("/second", `<!doctype html><title>second</title><img src=/hang-second.png>`)
		s.mux.HandleFunc("/hang-first.png", hang(nil))
		s.mux.HandleFunc("/hang-second.png", hang(nil))
		const timeout = 20 * time.Second
		rep, took, err := visit(t, shared, timeout, &Visit{URL: s.URL + "/first", NavigationTimeout: 2 * time.Second,
			Steps: []Step{{Kind: StepNavigate, URL: s.URL + "/second"}}})
		checkEnded(t, took, timeout)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(rep.Pending, " "); !strings.Contains(got, "/hang-second.png") || strings.Contains(got, "/hang-first.png") {
			t.Errorf("pending %v; want the second page's image alone", rep.Pending)
		}
	})
	// The navigation has the whole timeout (the default): it uses the page's time up, and
	// wait_for still finds the element shown all along (it was reported never visible).
	t.Run("shown while a subresource never answers", func(t *testing.T) {
		s.html("/shown", `<!doctype html><title>shown</title><div id=app>ok</div><img src=/hang>`)
		const timeout = 8 * time.Second
		rep, took, err := visit(t, shared, timeout, &Visit{URL: s.URL + "/shown", WaitFor: "#app"})
		checkEnded(t, took, timeout)
		if err != nil || rep.Loaded || !rep.WaitForFound {
			t.Errorf("err %v, loaded %t, wait_for_found %t; want the element found though the load never finished", err, rep.Loaded, rep.WaitForFound)
		}
	})
}

// A script stuck in a loop blocks the renderer: waits, evaluation and the screenshot never
// get an answer. The visit still ends at its deadline.
func TestInfiniteLoopEndsAtTimeout(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/", `<!doctype html><title>loop</title><div id=app></div><script>setTimeout(function(){ for(;;){} }, 10);</script>`)
	const timeout = 4 * time.Second
	rep, took, err := visit(t, shared, timeout, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, timeout)
	t.Logf("err: %v; wait_for found %t", err, rep.WaitForFound)
	if rep.WaitForFound {
		t.Error("wait_for found on a page that never rendered")
	}
	// And the shared browser still serves the next visit.
	s.html("/ok", `<!doctype html><title>ok</title><div id=app data-ready=1>ok</div>`)
	rep, _, err = visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/ok", WaitFor: "#app[data-ready]"})
	if err != nil || !rep.WaitForFound {
		t.Fatalf("next visit after a looping page: err %v, found %t", err, rep.WaitForFound)
	}
}

func TestRendererCrashIsErrorAndNextVisitPasses(t *testing.T) {
	needBrowser(t)
	p := NewPool(Options{Concurrency: 1})
	t.Cleanup(func() { p.Close() })
	s := newSite(t)
	s.html("/", `<!doctype html><title>ok</title><div id=app data-ready=1>ok</div>`)
	if _, _, err := visit(t, p, 20*time.Second, &Visit{URL: s.URL + "/"}); err != nil {
		t.Fatal(err)
	}
	pid := p.BrowserPID()

	// The page loads, then waits for an element that never comes; meanwhile its renderer
	// process is killed, as the kernel's OOM killer or a renderer bug would.
	killed := make(chan []int, 1)
	go func() {
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if s.hitCount("/") >= 2 {
				time.Sleep(300 * time.Millisecond) // let the wait start
				var pids []int
				for _, r := range descendants(pid, "--type=renderer") {
					if syscall.Kill(r, syscall.SIGKILL) == nil {
						pids = append(pids, r)
					}
				}
				killed <- pids
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		killed <- nil
	}()
	const timeout = 20 * time.Second
	_, took, err := visit(t, p, timeout, &Visit{URL: s.URL + "/", WaitFor: "#never"})
	checkEnded(t, took, timeout)
	if pids := <-killed; len(pids) == 0 {
		t.Fatal("found no renderer process to kill")
	}
	if !errors.Is(err, ErrRendererCrashed) {
		t.Fatalf("want ErrRendererCrashed, got %v", err)
	}
	if took > timeout/2 {
		t.Errorf("a crash should end the visit at once, not at its deadline (took %s)", took)
	}
	rep, _, err := visit(t, p, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	if err != nil || !rep.WaitForFound || len(rep.Problems()) > 0 {
		t.Fatalf("next visit after a crash: err %v, problems:\n%s", err, problems(rep))
	}
	if p.BrowserPID() != pid {
		t.Errorf("a renderer crash should not cost the browser (pid %d, now %d)", pid, p.BrowserPID())
	}
}

// descendants lists the live processes under pid whose command line contains arg.
func descendants(pid int, arg string) []int {
	parent := map[int]int{}
	for _, p := range procs() {
		if p.state != 'Z' {
			parent[p.pid] = p.ppid
		}
	}
	var out []int
	for n := range parent {
		for a := parent[n]; a > 1; a = parent[a] {
			if a == pid {
				cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n))
				if strings.Contains(string(cmd), arg) {
					out = append(out, n)
				}
				break
			}
		}
	}
	return out
}

func TestKilledBrowserIsErrorAndNextVisitPasses(t *testing.T) {
	needBrowser(t)
	p := NewPool(Options{Concurrency: 1})
	t.Cleanup(func() { p.Close() })
	s := newSite(t)
	started := make(chan struct{}, 1)
	s.mux.HandleFunc("/hang", hang(started))
	s.html("/", `<!doctype html><title>ok</title><div id=app data-ready=1>ok</div>`)

	// Warm up, so the browser's pid is known.
	if _, _, err := visit(t, p, 20*time.Second, &Visit{URL: s.URL + "/"}); err != nil {
		t.Fatal(err)
	}
	pid := p.BrowserPID()
	if pid == 0 {
		t.Fatal("no browser pid")
	}
	go func() {
		select {
		case <-started:
			syscall.Kill(pid, syscall.SIGKILL)
		case <-time.After(20 * time.Second):
		}
	}()
	const timeout = 20 * time.Second
	_, took, err := visit(t, p, timeout, &Visit{URL: s.URL + "/hang"})
	checkEnded(t, took, timeout)
	if !errors.Is(err, ErrBrowserExited) {
		t.Fatalf("want ErrBrowserExited, got %v", err)
	}
	if took > timeout/2 {
		t.Errorf("a dead browser should end the visit at once, not at its deadline (took %s)", took)
	}
	rep, _, err := visit(t, p, 30*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	if err != nil || !rep.WaitForFound {
		t.Fatalf("next visit after the browser was killed: err %v", err)
	}
	if np := p.BrowserPID(); np == pid || np == 0 {
		t.Errorf("browser pid %d after restart (was %d)", np, pid)
	}
}

func TestMissingChromiumGivesInstallHint(t *testing.T) {
	env := func(vals map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := vals[k]; return v, ok }
	}
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"config path", Options{Path: "/nonexistent/chromium", LookupEnv: env(nil)}, `browser.path is "/nonexistent/chromium"`},
		{"environment", Options{LookupEnv: env(map[string]string{EnvPath: "/nonexistent/chrome"})}, EnvPath + ` is "/nonexistent/chrome"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPool(tc.opts)
			t.Cleanup(func() { p.Close() })
			if err := p.Check(context.Background()); !errors.Is(err, ErrNotFound) {
				t.Errorf("Check: %v", err)
			}
			_, _, err := visit(t, p, 5*time.Second, &Visit{URL: "http://127.0.0.1:1/"})
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("want ErrNotFound, got %v", err)
			}
			for _, w := range []string{tc.want, "sudo apt-get install -y chromium"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestMinifiedBundleThatBreaksAtStartup(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	for _, name := range []string{"app.js", "app.min.js"} {
		b, err := os.ReadFile(filepath.Join("testdata", "minified", name))
		if err != nil {
			t.Fatal(err)
		}
		s.js("/"+name, string(b))
		s.html("/"+strings.TrimSuffix(name, ".js")+".html", `<!doctype html><title>Distributor</title>
<div id=app data-component=BookingWidget></div><script src=/`+name+`></script>`)
	}
	t.Run("bundled", func(t *testing.T) {
		rep, _, err := visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/app.html", WaitFor: "#app[data-ready]"})
		if err != nil || !rep.WaitForFound || len(rep.Problems()) > 0 {
			t.Fatalf("the unminified bundle works: err %v, found %t, problems:\n%s", err, rep.WaitForFound, problems(rep))
		}
	})
	t.Run("minified", func(t *testing.T) {
		rep, _, err := visit(t, shared, 10*time.Second, &Visit{URL: s.URL + "/app.min.html", WaitFor: "#app[data-ready]"})
		if err != nil {
			t.Fatal(err)
		}
		src, _ := os.ReadFile(filepath.Join("testdata", "minified", "app.min.js"))
		call := strings.Index(string(src), "return e(t)")
		if call < 0 {
			t.Fatal("app.min.js changed: rebuild it with build.sh and update this test")
		}
		if len(rep.Exceptions) != 1 {
			t.Fatalf("want one exception, got:\n%s", problems(rep))
		}
		e := rep.Exceptions[0]
		want := Exception{Kind: KindException, Message: "TypeError: e is not a function", URL: s.URL + "/app.min.js", Line: 1, Column: call + len("return ") + 1}
		if e.Kind != want.Kind || e.Message != want.Message || e.Location() != want.Location() {
			t.Errorf("got  %s\nwant %s", e, want)
		}
		if rep.WaitForFound {
			t.Error("the broken app rendered?")
		}
	})
}

func isPNG(b []byte) bool { return len(b) > 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n" }

// Extra headers and cookies go to the checked site only: an Authorization header must not
// leak to a CDN, and a header on a cross-origin request would make it a CORS preflight.
func TestHeadersAndCookiesFirstPartyOnly(t *testing.T) {
	needBrowser(t)
	cdn := newSite(t)
	cdn.mux.HandleFunc("/lib.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/javascript")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		fmt.Fprint(w, "window.libLoaded = true;")
	})
	// Cookies are scoped by host, not port: the third party is another host name for
	// the same loopback address.
	cdnURL := strings.Replace(cdn.URL, "127.0.0.1", "localhost", 1)
	s := newSite(t)
	s.html("/", `<!doctype html><title>t</title><div id=app></div>
<script src=`+cdnURL+`/lib.js></script><script src=/app.js></script>`)
	s.js("/app.js", `fetch('/api').then(function () { document.getElementById('app').dataset.ready = window.libLoaded ? '1' : ''; });`)
	s.mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "{}") })

	rep, _, err := visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready='1']",
		Headers: map[string]string{"X-Synthetic": "vigil"}, Cookies: []Cookie{{Name: "consent", Value: "yes"}}})
	if err != nil || !rep.WaitForFound || len(rep.Problems()) > 0 {
		t.Fatalf("err %v, found %t, problems:\n%s", err, rep.WaitForFound, problems(rep))
	}
	for _, path := range []string{"/", "/app.js", "/api"} {
		reqs := s.requestsTo(path)
		if len(reqs) == 0 {
			t.Errorf("%s: never requested", path)
			continue
		}
		if got := reqs[0].Header.Get("X-Synthetic"); got != "vigil" {
			t.Errorf("%s: X-Synthetic = %q", path, got)
		}
		if c, err := reqs[0].Cookie("consent"); err != nil || c.Value != "yes" {
			t.Errorf("%s: cookie consent: %v", path, err)
		}
	}
	if len(cdn.requestsTo("/lib.js")) == 0 {
		t.Error("the third-party script was never requested")
	}
	for _, r := range cdn.requestsTo("/lib.js") {
		if r.Header.Get("X-Synthetic") != "" || r.Header.Get("Cookie") != "" {
			t.Errorf("the third party got the check's header or cookie: %v", r.Header)
		}
	}
	if err := shared.Check(context.Background()); err != nil {
		t.Errorf("readiness of a running browser: %v", err)
	}
}

// agent.browser_concurrency: visits beyond the limit wait for a slot.
func TestConcurrencyLimit(t *testing.T) {
	needBrowser(t)
	p := NewPool(Options{Concurrency: 1})
	t.Cleanup(func() { p.Close() })
	s := newSite(t)
	s.mux.HandleFunc("/slow-doc", func(w http.ResponseWriter, r *http.Request) {
		n := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		for {
			m := s.maxInFlight.Load()
			if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(300 * time.Millisecond)
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>slow</title>`)
	})
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, _, err := visit(t, p, 60*time.Second, &Visit{URL: s.URL + "/slow-doc"})
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := s.maxInFlight.Load(); got != 1 {
		t.Errorf("%d page loads at once with Concurrency 1", got)
	}
}

// A killed Chromium leaves its helpers to the nearest subreaper; with Reap the pool is one
// and waits for them, so restarts do not pile up zombies (vigil as PID 1 in a container).
func TestReapsHelpersOfAKilledBrowser(t *testing.T) {
	needBrowser(t)
	p := NewPool(Options{Concurrency: 1, Reap: true})
	t.Cleanup(func() { p.Close() })
	s := newSite(t)
	s.html("/", `<!doctype html><title>ok</title>`)
	for round := range 2 {
		if _, _, err := visit(t, p, 30*time.Second, &Visit{URL: s.URL + "/"}); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		syscall.Kill(p.BrowserPID(), syscall.SIGKILL)
	}
	if _, _, err := visit(t, p, 30*time.Second, &Visit{URL: s.URL + "/"}); err != nil {
		t.Fatal(err)
	}
	// The reaper looks when a browser stops and every few seconds.
	deadline := time.Now().Add(3 * reapInterval)
	for {
		z := chromiumZombies()
		if len(z) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Chromium helpers left as zombies of the test process: %v", z)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// chromiumZombies lists exited Chromium processes whose parent is this process.
func chromiumZombies() []int {
	var out []int
	for _, p := range procs() {
		if p.state == 'Z' && p.ppid == os.Getpid() && chromiumComm[p.comm] {
			out = append(out, p.pid)
		}
	}
	return out
}

// Close ends visits in flight, even on a renderer stuck in a loop, and stops Chromium.
func TestCloseDuringAStuckVisit(t *testing.T) {
	needBrowser(t)
	p := NewPool(Options{Concurrency: 1})
	t.Cleanup(func() { p.Close() })
	s := newSite(t)
	s.html("/", `<!doctype html><title>loop</title><script>setTimeout(function(){ for(;;){} }, 50);</script>`)
	done := make(chan error, 1)
	go func() {
		_, _, err := visit(t, p, time.Minute, &Visit{URL: s.URL + "/", WaitFor: "#never"})
		done <- err
	}()
	for s.hitCount("/") == 0 {
		time.Sleep(50 * time.Millisecond)
	}
	pid := p.BrowserPID()
	time.Sleep(300 * time.Millisecond) // the loop has started
	begin := time.Now()
	p.Close()
	took := time.Since(begin)
	t.Logf("Close took %s", took)
	if took > 15*time.Second {
		t.Errorf("Close took %s", took)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("a visit cut short by Close reported no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the visit did not end after Close")
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("Chromium (pid %d) still runs after Close", pid)
	}
	if _, _, err := visit(t, p, 5*time.Second, &Visit{URL: s.URL + "/"}); !errors.Is(err, ErrClosed) {
		t.Errorf("visit after Close: %v", err)
	}
}

func TestParseFlag(t *testing.T) {
	for in, want := range map[string][2]any{
		"--lang=de":             {"lang", "de"},
		"--disable-quic=false":  {"disable-quic", false},
		"--headless":            {"headless", true},
		"proxy-server=http://x": {"proxy-server", "http://x"},
		" --a=true ":            {"a", true},
	} {
		if n, v := parseFlag(in); n != want[0] || v != want[1] {
			t.Errorf("parseFlag(%q) = %q, %v; want %v", in, n, v, want)
		}
	}
}

func TestStartAndCheck(t *testing.T) {
	needBrowser(t)
	p := NewPool(Options{})
	t.Cleanup(func() { p.Close() })
	if p.BrowserPID() != 0 {
		t.Fatal("a new pool started a browser before it was asked to")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Check(ctx); err != nil {
		t.Errorf("readiness before the browser starts: %v", err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pid := p.BrowserPID()
	if pid == 0 {
		t.Fatal("no browser after Start")
	}
	if err := p.Check(ctx); err != nil {
		t.Errorf("readiness of a started browser: %v", err)
	}
	if err := p.Start(ctx); err != nil || p.BrowserPID() != pid {
		t.Errorf("a second Start should keep the running browser: %v, pid %d -> %d", err, pid, p.BrowserPID())
	}
}

func TestViewport(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/", `<!doctype html><title>t</title><div id=app></div>
<script>document.getElementById('app').dataset.size = innerWidth + 'x' + innerHeight;</script>`)
	rep, _, err := visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-size='390x844']",
		Viewport: Viewport{Width: 390, Height: 844}, NavigationTimeout: 5 * time.Second})
	if err != nil || !rep.WaitForFound {
		t.Errorf("the page did not see a 390x844 viewport: err %v, found %t", err, rep.WaitForFound)
	}
}

// Visit.Stop ends the visit at the first problem it judges fatal: the rest of the load,
// wait_for and the remaining steps are skipped, the evidence is still taken, and the
// report says why it stopped. A problem Stop does not judge fatal changes nothing.
func TestStopAtTheFirstFatalProblem(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/", `<!doctype html><title>Shop</title><div id=app></div><script src=/bundle.js></script>`)
	s.js("/bundle.js", "console.error('not fatal');\nwindow.app.start();\n")
	var asked atomic.Int64
	stop := func(r *Report) string {
		asked.Add(1)
		if len(r.Exceptions) > 0 {
			return "an exception: " + r.Exceptions[0].Message
		}
		return ""
	}
	rep, took, err := visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]", Stop: stop,
		Steps: []Step{{Kind: StepClick, Selector: "#never"}, {Kind: StepSleep, Sleep: 10 * time.Second}}})
	checkEnded(t, took, 20*time.Second)
	if err != nil {
		t.Fatalf("visit: %v", err)
	}
	if !strings.HasPrefix(rep.StoppedEarly, "an exception: TypeError") {
		t.Fatalf("StoppedEarly = %q; want the exception", rep.StoppedEarly)
	}
	if asked.Load() < 2 {
		t.Errorf("Stop was asked %d times; want once for the console error and once for the exception", asked.Load())
	}
	if rep.Steps != 0 || rep.FailedStep != "" {
		t.Errorf("steps %d of %d, failed step %q: the steps after the fatal error should not run nor fail", rep.Steps, rep.StepsTotal, rep.FailedStep)
	}
	if !isPNG(rep.Screenshot) {
		t.Errorf("no screenshot of the failed page")
	}
	// Without Stop, the same page waits for wait_for (the page might still render).
	rep, _, err = visit(t, shared, 6*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	if err != nil || rep.StoppedEarly != "" || rep.WaitForFound {
		t.Errorf("without Stop: err %v, stopped %q, found %v", err, rep.StoppedEarly, rep.WaitForFound)
	}
}

// A page that throws and then keeps its renderer busy (a framework hydrating for seconds
// after the error, or any page on a loaded machine: a CI runner, a busy node) answers a
// screenshot late. The visit stopped at the error has most of its time left, and the
// screenshot may use it: the evidence is what people read first. (With a fixed second,
// the broken page of scripts/imagetest lost its screenshot on a loaded CI machine.)
func TestScreenshotWaitsForABusyRenderer(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/", `<!doctype html><title>Shop</title><div id=app>Shop</div><script src=/bundle.js></script>
<script>setTimeout(() => { const t = Date.now(); while (Date.now() - t < 2500) {} }, 0)</script>`)
	s.js("/bundle.js", "window.app.start();\n")
	stop := func(r *Report) string {
		if len(r.Exceptions) > 0 {
			return "an exception: " + r.Exceptions[0].Message
		}
		return ""
	}
	var lines []string
	rep, took, err := visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]", Stop: stop,
		Logf: func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) }})
	checkEnded(t, took, 20*time.Second)
	if err != nil || !strings.HasPrefix(rep.StoppedEarly, "an exception: TypeError") {
		t.Fatalf("visit: %v, stopped %q; want it stopped at the exception", err, rep.StoppedEarly)
	}
	if !isPNG(rep.Screenshot) {
		t.Errorf("no screenshot of the page whose renderer was busy 2.5 s; transcript:\n%s", strings.Join(lines, "\n"))
	}
}

// A browser that is alive and answers nothing (here stopped with SIGSTOP; in the field,
// wedged by a page's storm of events) is replaced after three visits in a row could not
// open a tab, and the next visit passes in a new browser. (A tab's open was given the
// visit's whole deadline, and an open that used it was never counted: every browser check
// failed until the agent restarted.)
func TestHungBrowserIsReplaced(t *testing.T) {
	needBrowser(t)
	p := NewPool(Options{Concurrency: 8, NoSpareTab: true})
	t.Cleanup(func() { p.Close() })
	s := newSite(t)
	s.html("/", `<!doctype html><title>ok</title><div id=app data-ready=1>ok</div>`)
	if _, _, err := visit(t, p, 20*time.Second, &Visit{URL: s.URL + "/"}); err != nil {
		t.Fatal(err)
	}
	pid := p.BrowserPID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT); _ = syscall.Kill(pid, syscall.SIGKILL) })
	for i := range 3 {
		if _, _, err := visit(t, p, 2*time.Second, &Visit{URL: s.URL + "/"}); err == nil || !strings.Contains(err.Error(), "opening a browser tab") {
			t.Fatalf("visit %d with the browser stopped: %v", i+1, err)
		}
	}
	rep, _, err := visit(t, p, 30*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	if err != nil || !rep.WaitForFound {
		t.Fatalf("the visit after three that could not open a tab: %v", err)
	}
	if np := p.BrowserPID(); np == pid || np == 0 {
		t.Errorf("browser pid %d after the hung one (%d) should have been replaced", np, pid)
	}
}

// A navigation that vigil's own waiting (here, for the one browser slot another visit
// holds) left with too little of the visit's time is not the service's silence: a deploy's
// verification fails on that, and the service had no fair chance to answer.
func TestOwnWaitingIsNotTheServicesSilence(t *testing.T) {
	needBrowser(t)
	p := NewPool(Options{Concurrency: 1, NoSpareTab: true})
	t.Cleanup(func() { p.Close() })
	s := newSite(t)
	s.mux.HandleFunc("/hang", hang(nil))
	s.mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Second)
		fmt.Fprint(w, `<!doctype html><title>slow</title>`)
	})
	if _, _, err := visit(t, p, 20*time.Second, &Visit{URL: s.URL + "/hang", NavigationTimeout: time.Millisecond}); err == nil {
		t.Log("warm-up visit passed") // the browser is started either way
	}
	busy := make(chan struct{})
	go func() {
		defer close(busy)
		_, _, _ = visit(t, p, 5*time.Second, &Visit{URL: s.URL + "/hang"}) // holds the slot ~5 s
	}()
	time.Sleep(500 * time.Millisecond)
	_, _, err := visit(t, p, 6500*time.Millisecond, &Visit{URL: s.URL + "/slow"})
	<-busy
	if err == nil || errors.Is(err, ErrNoResponse) || !strings.Contains(err.Error(), "vigil's own waiting") {
		t.Errorf("a navigation left ~1 s of 6.5 s by the wait for a slot: %v; want vigil's own waiting, not the service's silence", err)
	}
}
