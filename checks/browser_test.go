package checks_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/browser"
	"github.com/vigil-monitor/vigil/checks"
)

// browserPool is BrowserPool (browserpool_test.go), for the external tests.
func browserPool(t *testing.T) *browser.Pool { return checks.BrowserPool(t) }

// pages serves the test pages; onBundle, when set, is called when /bundle.js is fetched.
func pages(t *testing.T, onBundle func()) *httptest.Server {
	t.Helper()
	page := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, body)
		}
	}
	script := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/javascript")
			fmt.Fprint(w, body)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/good", page(`<!doctype html><title>Home</title><div id=app></div>
<script>document.getElementById('app').dataset.ready = '1'</script>`))
	mux.Handle("/broken", page(`<!doctype html><title>Home</title><div id=app></div><script src=/bundle.js></script>`))
	mux.HandleFunc("/bundle.js", func(w http.ResponseWriter, r *http.Request) {
		if onBundle != nil {
			onBundle()
		}
		script("var app = {};\napp.start();\n")(w, r)
	})
	// /waits loads a script that runs fine and never renders: a page still busy, not broken.
	mux.Handle("/waits", page(`<!doctype html><title>Home</title><div id=app></div><script src=/quiet-bundle.js></script>`))
	mux.HandleFunc("/quiet-bundle.js", func(w http.ResponseWriter, r *http.Request) {
		if onBundle != nil {
			onBundle()
		}
		script("var app = {started: true};\n")(w, r)
	})
	mux.Handle("/noisy", page(`<!doctype html><title>Home</title><div id=app data-ready=1></div>
<script>setTimeout(function () { throw new Error('ads.example: quota exceeded'); }, 0);</script>`))
	mux.Handle("/login", page(`<!doctype html><title>Login</title>
<form id=f><input id=user><button id=go type=button>Sign in</button></form><p id=msg></p>
<script>document.getElementById('go').onclick = function () {
  document.getElementById('msg').textContent = 'Welcome, ' + document.getElementById('user').value;
};</script>`))
	// /confirm asks before it renders, as a release with a leftover debugging prompt would.
	mux.Handle("/confirm", page(`<!doctype html><title>Home</title><div id=app></div>
<script>if (confirm('Reset your session?')) document.getElementById('app').dataset.ready = '1'</script>`))
	// /versioned names the version that served it as the query says (?v=v1)
	mux.HandleFunc("/versioned", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App-Version", r.URL.Query().Get("v"))
		page(`<!doctype html><title>Home</title><div id=app data-ready=1></div>`)(w, r)
	})
	// /cached is a CDN's copy of a page: no version header, the build it came from in a
	// meta tag and, rendered by its script, in the footer (?v=v1)
	mux.HandleFunc("/cached", func(w http.ResponseWriter, r *http.Request) {
		v := html.EscapeString(r.URL.Query().Get("v"))
		page(`<!doctype html><title>Home</title><meta name="app-version" content="`+v+`"><div id=app data-ready=1></div>
<footer id=build></footer><script>document.getElementById('build').textContent = ' `+v+` '</script>`)(w, r)
	})
	// /huge-version renders megabytes where its version goes, as a hostile page would
	mux.Handle("/huge-version", page(`<!doctype html><title>Home</title><meta name="app-version" content="v1">
<script>document.querySelector('meta').setAttribute('content', 'v1' + 'x'.repeat(5e6))</script>`))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

const browserConfig = `
checks:
  - {name: good, kind: browser, url: "${T}/good", wait_for: "#app[data-ready]", timeout: 20s}
  - {name: broken, kind: browser, url: "${T}/broken", wait_for: "#app[data-ready]", timeout: 10s}
  - {name: waits, kind: browser, url: "${T}/waits", wait_for: "#app[data-ready]", timeout: 10s}
  - {name: noisy, kind: browser, url: "${T}/noisy", wait_for: "#app[data-ready]", timeout: 20s}
  - name: noisy-listed
    kind: browser
    url: "${T}/noisy"
    timeout: 20s
    assert: ['len(errors) == 1', 'errors[0] contains "ads.example: quota exceeded (" + url', "js_errors == 1", 'title == "Home"']
  - name: noisy-ignored
    kind: browser
    url: "${T}/noisy"
    wait_for: "#app[data-ready]"
    ignore_errors: ["^Error: ads\\.example: "]
    timeout: 20s
  - name: noisy-ignored-by-address
    kind: browser
    url: "${T}/noisy"
    wait_for: "#app[data-ready]"
    ignore_errors: ['\(http://127\.0\.0\.1:[0-9]+/noisy:[0-9]+:[0-9]+\)$']
    timeout: 20s
  - name: login
    kind: browser
    url: "${T}/login"
    timeout: 20s
    steps:
      - type: {selector: "#user", text: synthetic}
      - click: "#go"
      - assert_text: {selector: "#msg", contains: "Welcome, synthetic"}
      - navigate: "${T}/good"
      - wait_for: "#app[data-ready]"
      - sleep: 100ms
    assert: ["steps == steps_total", "js_errors == 0", 'title == "Home"']
  - {name: confirm, kind: browser, url: "${T}/confirm", wait_for: "#app[data-ready]", timeout: 20s}
  - {name: confirm-accepted, kind: browser, url: "${T}/confirm", wait_for: "#app[data-ready]", timeout: 20s, dialogs: accept}
  - {name: confirm-dismissed, kind: browser, url: "${T}/confirm", wait_for: "#app[data-ready]", timeout: 3s, dialogs: dismiss}
  - name: confirm-counted
    kind: browser
    url: "${T}/confirm"
    timeout: 20s
    dialogs: accept
    assert: ["dialogs == 1", "wait_for_found"]
  - {name: old-pod, kind: browser, url: "${T}/versioned?v=v1", wait_for: "#app[data-ready]", timeout: 20s, served_version: {header: X-App-Version}}
  - {name: new-pod, kind: browser, url: "${T}/versioned?v=v2", wait_for: "#app[data-ready]", timeout: 20s, served_version: {header: x-app-version}}
  - {name: cached-meta, kind: browser, url: "${T}/cached?v=v1", timeout: 20s, served_version: {selector: 'meta[name="app-version"]', attribute: content}}
  - {name: cached-text, kind: browser, url: "${T}/cached?v=v2", timeout: 20s, served_version: {selector: "#build"}}
  - {name: cached-none, kind: browser, url: "${T}/cached?v=v1", timeout: 20s, served_version: {selector: "#no-such-element"}}
  - {name: cached-bad, kind: browser, url: "${T}/cached?v=v1", timeout: 20s, served_version: {selector: "#("}}
  - {name: huge-version, kind: browser, url: "${T}/huge-version", timeout: 20s, served_version: {selector: meta, attribute: content}}
  - name: login-wrong
    kind: browser
    url: "${T}/login"
    timeout: 20s
    steps:
      - click: "#go"
      - assert_text: {selector: "#msg", contains: "Welcome, somebody"}
`

func TestBrowserCheck(t *testing.T) {
	pool := browserPool(t)
	srv := pages(t, nil)
	cs := buildDeps(t, checks.Deps{Browser: pool}, srv.URL, browserConfig)
	run := func(t *testing.T, name string) *checks.Result {
		t.Helper()
		r := cs[name].Run(context.Background(), checks.Input{})
		t.Logf("%s: %s %v\n%s", name, r.Outcome, r.Reasons, strings.Join(r.Transcript, "\n"))
		return r
	}
	t.Run("good page passes the default assertions", func(t *testing.T) {
		r := run(t, "good")
		if r.Outcome != checks.Pass {
			t.Fatalf("outcome %s: %v", r.Outcome, r.Reasons)
		}
		if r.Vars["title"] != "Home" || r.Vars["status"] != 200 || r.Vars["js_errors"] != 0 {
			t.Errorf("vars: %v", r.Vars)
		}
		if tm := r.Vars["timings"].(map[string]any); tm["load_ms"].(float64) <= 0 {
			t.Errorf("timings: %v", tm)
		}
		if len(r.Artifacts) != 0 {
			t.Errorf("a passing run kept evidence: %v", r.Artifacts)
		}
	})
	t.Run("startup exception fails with message and line", func(t *testing.T) {
		r := run(t, "broken")
		if r.Outcome != checks.Fail {
			t.Fatalf("outcome %s: %v", r.Outcome, r.Reasons)
		}
		want := "js_errors == 0 is false: js_errors = 1 (TypeError: app.start is not a function at " + srv.URL + "/bundle.js:2:5)"
		if !strings.HasPrefix(r.Reasons[0], want) {
			t.Errorf("reason %q\nwant prefix %q", r.Reasons[0], want)
		}
		names := map[string][]byte{}
		for _, a := range r.Artifacts {
			names[a.Name] = a.Data
		}
		if png := names["screenshot.png"]; len(png) < 8 || string(png[1:4]) != "PNG" {
			t.Errorf("no PNG screenshot among the artifacts: %v", r.Artifacts)
		}
		if !strings.Contains(string(names["errors.txt"]), "app.start is not a function") {
			t.Errorf("errors.txt: %q", names["errors.txt"])
		}
		// The exception made js_errors == 0 false for good: the run stopped there instead of
		// waiting out wait_for, and judged only what it measured.
		transcript := strings.Join(r.Transcript, "\n")
		if !strings.Contains(transcript, "stopped at the first fatal error") || !strings.Contains(transcript, "not judged: wait_for_found") {
			t.Errorf("the run did not stop at the exception:\n%s", transcript)
		}
		if len(r.Reasons) != 1 {
			t.Errorf("reasons %q; want only the exception (wait_for_found was not measured)", r.Reasons)
		}
		t.Logf("broken page judged in %s (timeout 10s)", r.Duration)
	})
	t.Run("a page that is busy but not broken waits for wait_for", func(t *testing.T) {
		r := run(t, "waits")
		if r.Outcome != checks.Fail || !strings.HasPrefix(r.Reasons[0], "wait_for_found is false") {
			t.Fatalf("outcome %s: %v", r.Outcome, r.Reasons)
		}
		if strings.Contains(strings.Join(r.Transcript, "\n"), "stopped at the first fatal error") {
			t.Errorf("a page with no error stopped early")
		}
	})
	t.Run("ignore_errors", func(t *testing.T) {
		if r := run(t, "noisy"); r.Outcome != checks.Fail {
			t.Errorf("without ignore_errors the third-party error fails the check: %s %v", r.Outcome, r.Reasons)
		}
		if r := run(t, "noisy-listed"); r.Outcome != checks.Pass {
			t.Errorf("assertions over the errors list: %s %v", r.Outcome, r.Reasons)
		}
		r := run(t, "noisy-ignored")
		if r.Outcome != checks.Pass || r.Vars["js_errors"] != 0 {
			t.Errorf("ignored error still counted: %s %v %v", r.Outcome, r.Reasons, r.Vars["js_errors"])
		}
		if !strings.Contains(strings.Join(r.Transcript, "\n"), "1 problems matched ignore_errors") {
			t.Error("the transcript should say what was ignored")
		}
		// the README: ignore_errors matches the problem's address too (a third-party frame's)
		if r := run(t, "noisy-ignored-by-address"); r.Outcome != checks.Pass || r.Vars["js_errors"] != 0 {
			t.Errorf("an error ignored by its address still counted: %s %v %v", r.Outcome, r.Reasons, r.Vars["js_errors"])
		}
	})
	t.Run("journey", func(t *testing.T) {
		if r := run(t, "login"); r.Outcome != checks.Pass || r.Vars["steps"] != 7 {
			t.Errorf("login journey: %s %v steps=%v", r.Outcome, r.Reasons, r.Vars["steps"])
		}
		r := run(t, "login-wrong")
		if r.Outcome != checks.Fail || !strings.Contains(r.Reasons[0], `step 3 (assert_text #msg contains "Welcome, somebody")`) {
			t.Errorf("wrong text: %s %v", r.Outcome, r.Reasons)
		}
	})
	t.Run("served version", func(t *testing.T) {
		deploy := checks.Input{Deploy: &checks.Deploy{ID: "d1", Service: "web", Version: "v2"}}
		r := cs["old-pod"].Run(context.Background(), deploy)
		if r.Outcome != checks.Inconclusive || r.Reasons[0] != "answered by version v1, not v2 (the deploy's): the new version does not serve this yet" {
			t.Errorf("a page of the old version in v2's verification: %s %q", r.Outcome, r.Reasons)
		}
		if r := cs["new-pod"].Run(context.Background(), deploy); r.Outcome != checks.Pass ||
			!strings.Contains(strings.Join(r.Transcript, "\n"), "served version: v2 (the page's header x-app-version)") {
			t.Errorf("a page of the deploy's version: %s %q\n%s", r.Outcome, r.Reasons, strings.Join(r.Transcript, "\n"))
		}
		if r := run(t, "old-pod"); r.Outcome != checks.Pass {
			t.Errorf("outside a deploy the page is judged: %s %q", r.Outcome, r.Reasons)
		}
		// A CDN still serving the old build's page names no version in a header: the
		// page's own meta tag, or the text its script renders, does.
		r = cs["cached-meta"].Run(context.Background(), deploy)
		if r.Outcome != checks.Inconclusive || r.Reasons[0] != "answered by version v1, not v2 (the deploy's): the new version does not serve this yet" {
			t.Errorf("the old build's page, by its meta tag: %s %q", r.Outcome, r.Reasons)
		}
		if r := cs["cached-text"].Run(context.Background(), deploy); r.Outcome != checks.Pass ||
			!strings.Contains(strings.Join(r.Transcript, "\n"), "served version: v2 (the page's #build)") {
			t.Errorf("the new build's page, by the text its script rendered: %s %q\n%s", r.Outcome, r.Reasons, strings.Join(r.Transcript, "\n"))
		}
		r = cs["huge-version"].Run(context.Background(), deploy)
		if r.Outcome != checks.Inconclusive || len(r.Reasons) != 1 || len(r.Reasons[0]) > 400 || !strings.Contains(r.Reasons[0], "answered by version v1xxx") {
			t.Errorf("a page naming megabytes as its version: %s, reasons %.300q\n%s", r.Outcome, r.Reasons, checks.Trim(strings.Join(r.Transcript, "\n"), 3000))
		}
		for _, name := range []string{"cached-none", "cached-bad"} {
			r := cs[name].Run(context.Background(), deploy)
			if tr := strings.Join(r.Transcript, "\n"); r.Outcome != checks.Pass || !strings.Contains(tr, "served version: the answer names none") {
				t.Errorf("%s: a page that names no version is judged: %s %q\n%s", name, r.Outcome, r.Reasons, tr)
			}
			if tr := strings.Join(r.Transcript, "\n"); name == "cached-bad" && !strings.Contains(tr, "served version: #( could not be read") {
				t.Errorf("a selector the page cannot parse is not in the transcript:\n%s", tr)
			}
		}
	})
	t.Run("dialogs", func(t *testing.T) {
		// Unasked, a dialog fails the defaults at once and the page is not left stalled.
		r := run(t, "confirm")
		want := `dialogs == 0 is false: dialogs = 1 (confirm "Reset your session?" (` + srv.URL + `/confirm): dismissed)`
		if r.Outcome != checks.Fail || len(r.Reasons) != 1 || r.Reasons[0] != want {
			t.Fatalf("%s %q\nwant the one reason %q", r.Outcome, r.Reasons, want)
		}
		names := map[string]string{}
		for _, a := range r.Artifacts {
			names[a.Name] = string(a.Data)
		}
		if _, ok := names["screenshot.png"]; !ok || !strings.Contains(names["errors.txt"], `dialog: confirm "Reset your session?"`) {
			t.Errorf("evidence: %v", r.Artifacts)
		}
		if r := run(t, "confirm-accepted"); r.Outcome != checks.Pass || r.Vars["dialogs"] != 1 {
			t.Errorf("dialogs: accept answers OK and the page renders: %s %v dialogs=%v", r.Outcome, r.Reasons, r.Vars["dialogs"])
		}
		r = run(t, "confirm-dismissed")
		if r.Outcome != checks.Fail || len(r.Reasons) != 1 || !strings.HasPrefix(r.Reasons[0], "wait_for_found is false") {
			t.Errorf("dialogs: dismiss answers Cancel, the page does not render, and only that fails: %s %q", r.Outcome, r.Reasons)
		}
		if !strings.Contains(strings.Join(r.Transcript, "\n"), `! dialog: confirm "Reset your session?"`) {
			t.Errorf("the transcript should show the dialog:\n%s", strings.Join(r.Transcript, "\n"))
		}
		if r := run(t, "confirm-counted"); r.Outcome != checks.Pass {
			t.Errorf("assert over dialogs: %s %v", r.Outcome, r.Reasons)
		}
	})
}

func TestBrowserCheckErrors(t *testing.T) {
	bundle := make(chan struct{}, 1)
	srv := pages(t, func() {
		select {
		case bundle <- struct{}{}:
		default:
		}
	})
	t.Run("missing Chromium is an error with the install hint", func(t *testing.T) {
		pool := browser.NewPool(browser.Options{Path: "/nonexistent/chromium"})
		t.Cleanup(func() { pool.Close() })
		cs := buildDeps(t, checks.Deps{Browser: pool}, srv.URL, browserConfig)
		r := cs["good"].Run(context.Background(), checks.Input{})
		if r.Outcome != checks.Error || !strings.Contains(r.Reasons[0], "sudo apt-get install -y chromium") {
			t.Errorf("%s %v", r.Outcome, r.Reasons)
		}
	})
	t.Run("browser killed mid-run is an error, and the next run passes", func(t *testing.T) {
		pool := browserPool(t)
		cs := buildDeps(t, checks.Deps{Browser: pool}, srv.URL, browserConfig)
		if r := cs["good"].Run(context.Background(), checks.Input{}); r.Outcome != checks.Pass {
			t.Fatalf("warm-up: %s %v", r.Outcome, r.Reasons)
		}
		pid := pool.BrowserPID()
		done := make(chan *checks.Result, 1)
		go func() { done <- cs["waits"].Run(context.Background(), checks.Input{}) }()
		select { // the page is loaded and waits for a selector that never comes
		case <-bundle:
		case <-time.After(10 * time.Second):
			t.Fatal("the page never asked for its bundle")
		}
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
		r := <-done
		if r.Outcome != checks.Error || !strings.Contains(r.Reasons[0], "the browser exited") {
			t.Errorf("%s %v", r.Outcome, r.Reasons)
		}
		if r := cs["good"].Run(context.Background(), checks.Input{}); r.Outcome != checks.Pass {
			t.Errorf("next run: %s %v", r.Outcome, r.Reasons)
		}
	})
}

// baseline.timings.* is the median of the passing runs before the deploy, so
// "timings.load_ms < baseline.timings.load_ms * 1.5" works.
func TestBrowserBaseline(t *testing.T) {
	cs := buildDeps(t, checks.Deps{}, "http://127.0.0.1:1", `
checks:
  - name: home
    kind: browser
    url: "${T}/"
    assert: ["timings.load_ms < baseline.timings.load_ms * 1.5", "js_errors <= baseline.js_errors"]
`)
	c := cs["home"]
	res := func(o checks.Outcome, load float64, js int) *checks.Result {
		return &checks.Result{Outcome: o, Vars: map[string]any{"js_errors": js, "timings": map[string]any{
			"ttfb_ms": 1.0, "dom_content_loaded_ms": 2.0, "load_ms": load, "lcp_ms": 3.0}}}
	}
	b := c.Baseline([]*checks.Result{res(checks.Pass, 100, 0), res(checks.Fail, 9000, 5), res(checks.Pass, 300, 0), res(checks.Pass, 200, 1)}, 3)
	tm, _ := b["timings"].(map[string]any)
	if tm["load_ms"] != 200.0 || b["js_errors"] != 0.0 {
		t.Errorf("baseline: %v", b)
	}
	if b := c.Baseline([]*checks.Result{res(checks.Fail, 1, 1)}, 3); b != nil {
		t.Errorf("no passing run, yet a baseline: %v", b)
	}
	r := c.Run(context.Background(), checks.Input{})
	if r.Outcome != checks.Error || !strings.Contains(r.Reasons[0], "no browser") {
		t.Errorf("built without a browser: %s %v", r.Outcome, r.Reasons)
	}
}

// A page that throws and fails past the 200 problems a run keeps of each kind is counted
// whole: js_errors < 1000 judges the page, not the cap (it passed a page with 5,000 errors,
// js_errors stuck at 200).
func TestBrowserCountsPastTheCap(t *testing.T) {
	pool := browserPool(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/storm", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>storm</title><div id=app></div><script>
for (let i = 0; i < 500; i++) setTimeout(() => { throw new Error('e' + i) }, 0);
const f = [];
for (let i = 0; i < 300; i++) f.push(fetch('/missing/' + i).catch(() => {}));
Promise.allSettled(f).then(() => setTimeout(() => { document.getElementById('app').dataset.ready = '1' }, 300));
</script>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cs := buildDeps(t, checks.Deps{Browser: pool}, srv.URL, `
checks:
  - name: storm
    kind: browser
    url: "${T}/storm"
    wait_for: "#app[data-ready]"
    timeout: 30s
    assert: ["js_errors < 1000", "failed_requests < 1000"]
`)
	r := cs["storm"].Run(context.Background(), checks.Input{})
	js, failed := r.Vars["js_errors"].(int), r.Vars["failed_requests"].(int)
	t.Logf("a page throwing 500 errors and failing 300 requests: js_errors %d, failed_requests %d: %s %v", js, failed, r.Outcome, r.Reasons)
	if js < 450 || js > 500 || failed < 290 || failed > 300 {
		t.Errorf("outcome %s, js_errors %d (want about 500), failed_requests %d (want about 300)", r.Outcome, js, failed)
	}
}

// navigation_timeout bounds each navigation's wait for the load event, not the run: two
// pages whose image never answers each give up loading after it, and the journey goes on
// to its last step. Ignored, the first navigation waits the check's whole timeout and the
// steps never run.
func TestBrowserNavigationTimeout(t *testing.T) {
	pool := browserPool(t)
	quit := make(chan struct{})
	var mu sync.Mutex
	seen := map[string]int{}
	mux := http.NewServeMux()
	for _, p := range []string{"/stuck-a", "/stuck-b"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[r.URL.Path]++
			mu.Unlock()
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!doctype html><title>%[1]s</title><p id=msg></p><button id=go type=button>go</button>
<img src=/never.png><script>document.getElementById('go').onclick = function () {
  document.getElementById('msg').textContent = 'clicked %[1]s';
};</script>`, r.URL.Path[1:])
		})
	}
	mux.HandleFunc("/never.png", func(w http.ResponseWriter, r *http.Request) {
		select { // the load event never comes while this is open
		case <-r.Context().Done():
		case <-quit:
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(quit) }) // runs first: the hanging handlers return, then Close
	cs := buildDeps(t, checks.Deps{Browser: pool}, srv.URL, `
checks:
  - name: journey
    kind: browser
    url: "${T}/stuck-a"
    timeout: 40s
    navigation_timeout: 3s
    steps:
      - click: "#go"
      - assert_text: {selector: "#msg", contains: "clicked stuck-a"}
      - navigate: "${T}/stuck-b"
      - click: "#go"
      - assert_text: {selector: "#msg", contains: "clicked stuck-b"}
    assert: ["steps == steps_total", "!loaded", 'title == "stuck-b"']
`)
	r := cs["journey"].Run(context.Background(), checks.Input{})
	transcript := strings.Join(r.Transcript, "\n")
	t.Logf("%s %v\n%s", r.Outcome, r.Reasons, transcript)
	if r.Outcome != checks.Pass {
		t.Fatalf("outcome %s: %v; want each navigation to stop waiting for the load after navigation_timeout (3s) and the journey to finish within the 40s timeout", r.Outcome, r.Reasons)
	}
	if n := strings.Count(transcript, "did not finish loading within"); n != 2 {
		t.Errorf("the transcript says %d navigations gave up waiting for the load event; want 2 (both pages)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["/stuck-a"] != 1 || seen["/stuck-b"] != 1 {
		t.Errorf("pages asked for: %v; want each once", seen)
	}
}
