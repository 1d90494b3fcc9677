package browser

import (
	"strings"
	"testing"
	"time"
)

// swPage registers script as the page's service worker. Without then it marks #app ready
// once the worker settled (activated, or redundant: the page swallows a failure, as apps
// that treat the worker as optional do); with then it runs then (JavaScript, which calls
// ready) once the worker controls the page.
func swPage(script, then string) string {
	wait := "true"
	if then != "" {
		wait = "false"
	}
	return `<!doctype html><title>Shop</title><div id=app></div><script>
const ready = () => { document.getElementById('app').dataset.ready = '1'; };
navigator.serviceWorker.addEventListener('controllerchange', () => { ` + then + ` });
navigator.serviceWorker.register('` + script + `').then((reg) => {
  const w = reg.installing || reg.waiting || reg.active;
  const settled = () => { if (` + wait + ` && (w.state === 'activated' || w.state === 'redundant')) ready(); };
  w.addEventListener('statechange', settled);
  settled();
}, ready);
</script>`
}

// swExceptions returns the report's exceptions that name the service worker at url.
func swExceptions(rep *Report, url string) []Exception {
	var out []Exception
	for _, e := range rep.Exceptions {
		if e.Source == "service worker "+url {
			out = append(out, e)
		}
	}
	return out
}

// A deploy's sw.js whose install handler throws: the page loads and looks fine, and the
// exception is only in the worker. It is the run's problem, once, named as the worker's.
func TestServiceWorkerThatThrowsAtInstall(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/", swPage("/sw.js", ""))
	s.js("/sw.js", "self.addEventListener('install', (e) => {\n  const manifest = null; manifest.files;\n});\n")
	rep, took, err := visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 20*time.Second)
	if err != nil {
		t.Fatalf("visit: %v", err)
	}
	if !rep.WaitForFound {
		t.Fatalf("the page never settled its worker; got:\n%s", problems(rep))
	}
	sw := swExceptions(rep, s.URL+"/sw.js")
	if len(sw) != 1 || len(rep.Exceptions) != 1 || !strings.Contains(sw[0].Message, "files") || sw[0].URL != s.URL+"/sw.js" || sw[0].Line != 2 {
		t.Fatalf("want the worker's TypeError at sw.js:2, once; got:\n%s", problems(rep))
	}
	if want := "service worker " + s.URL + "/sw.js: TypeError: "; !strings.HasPrefix(sw[0].String(), want) {
		t.Errorf("%q does not start with %q", sw[0].String(), want)
	}
}

// A sw.js that does not even parse: the page swallows the failed registration, and the
// worker's SyntaxError and its failed registration are the run's problems.
func TestServiceWorkerThatDoesNotParse(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/", swPage("/sw.js", ""))
	s.js("/sw.js", "self.addEventListener('fetch', (e) => {\n")
	rep, took, err := visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 20*time.Second)
	if err != nil {
		t.Fatalf("visit: %v", err)
	}
	if !rep.WaitForFound {
		t.Fatalf("the page never settled its worker; got:\n%s", problems(rep))
	}
	var syntax, register bool
	for _, e := range swExceptions(rep, s.URL+"/sw.js") {
		syntax = syntax || strings.HasPrefix(e.Message, "SyntaxError") && e.URL == s.URL+"/sw.js"
		register = register || strings.HasPrefix(e.Message, "Failed to register a ServiceWorker")
	}
	if !syntax || !register {
		t.Fatalf("want the worker's SyntaxError and its failed registration; got:\n%s", problems(rep))
	}
}

// A worker whose install waits on a promise that rejects (a cache that fails to fill) is
// never installed: the rejection and the failed installation are the run's problems.
func TestServiceWorkerThatFailsToInstall(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/", swPage("/sw.js", ""))
	s.js("/sw.js", "self.addEventListener('install', (e) => {\n  e.waitUntil(Promise.reject(new Error('precache failed')));\n});\n")
	rep, took, err := visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 20*time.Second)
	if err != nil {
		t.Fatalf("visit: %v", err)
	}
	if !rep.WaitForFound {
		t.Fatalf("the page never settled its worker; got:\n%s", problems(rep))
	}
	var rejected, install bool
	for _, e := range swExceptions(rep, s.URL+"/sw.js") {
		rejected = rejected || e.Kind == KindRejection && e.Message == "Error: precache failed"
		install = install || strings.Contains(e.Message, "failed to install")
	}
	if !rejected || !install {
		t.Fatalf("want the worker's rejection and its failed installation; got:\n%s", problems(rep))
	}
}

// A fetch handler that throws on the page's API call: the worker controls the page (it
// claims it at once) and the exception, thrown as the page fetches, is the run's problem,
// as is the handler's console.error.
func TestServiceWorkerWhoseFetchHandlerThrows(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/", swPage("/sw.js", "fetch('/api/cart').then(ready, ready);"))
	s.html("/api/cart", "{}")
	s.js("/sw.js", `self.addEventListener('activate', (e) => e.waitUntil(clients.claim()));
self.addEventListener('fetch', (e) => {
  if (new URL(e.request.url).pathname === '/api/cart') { console.error('no route for', e.request.url); const route = undefined; route.handler(e); }
});
`)
	rep, took, err := visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 20*time.Second)
	if err != nil {
		t.Fatalf("visit: %v", err)
	}
	if !rep.WaitForFound {
		t.Fatalf("the page never settled its worker; got:\n%s", problems(rep))
	}
	sw := swExceptions(rep, s.URL+"/sw.js")
	if len(sw) != 1 || !strings.Contains(sw[0].Message, "handler") || sw[0].Line != 3 {
		t.Fatalf("want the fetch handler's TypeError at sw.js:3, once; got:\n%s", problems(rep))
	}
	if c := rep.ConsoleErrors; len(c) != 1 || c[0].Source != "service worker "+s.URL+"/sw.js" || c[0].Text != "no route for "+s.URL+"/api/cart" {
		t.Errorf("want the worker's console.error; got %+v", c)
	}
}

// The passing counterpart: a worker that installs, claims the page and answers its fetches
// is no problem; and the next run, in a fresh browser context, has no worker at all (one
// run's worker neither controls nor reports into the next).
func TestHealthyServiceWorkerAndTheNextRun(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/", swPage("/sw.js", "fetch('/api/cart').then(ready, ready);"))
	s.html("/api/cart", "{}")
	s.html("/next", `<!doctype html><title>Next</title><div id=app></div><script>
navigator.serviceWorker.getRegistrations().then((rs) => {
  const app = document.getElementById('app');
  app.dataset.workers = String(rs.length + (navigator.serviceWorker.controller ? 1 : 0));
  fetch('/api/cart').then(() => { app.dataset.ready = '1'; });
});
</script>`)
	s.js("/sw.js", `self.addEventListener('install', (e) => e.waitUntil(self.skipWaiting()));
self.addEventListener('activate', (e) => e.waitUntil(clients.claim()));
self.addEventListener('fetch', (e) => {
  if (new URL(e.request.url).pathname === '/api/cart') e.respondWith(fetch(e.request));
});
`)
	rep, took, err := visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 20*time.Second)
	if err != nil {
		t.Fatalf("visit: %v", err)
	}
	if !rep.WaitForFound {
		t.Fatalf("the page never settled its worker; got:\n%s", problems(rep))
	}
	if p := rep.Problems(); len(p) != 0 || !rep.WaitForFound {
		t.Fatalf("a healthy worker: want no problems; got (ready %v):\n%s", rep.WaitForFound, problems(rep))
	}
	if s.hitCount("/api/cart") != 1 {
		t.Fatalf("/api/cart fetched %d times through the worker, want once", s.hitCount("/api/cart"))
	}
	rep, took, err = visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/next", WaitFor: "#app[data-workers='0'][data-ready]"})
	checkEnded(t, took, 20*time.Second)
	if err != nil || !rep.WaitForFound {
		t.Fatalf("the next run saw the first run's worker (err %v, found %v)", err, rep.WaitForFound)
	}
	if p := rep.Problems(); len(p) != 0 {
		t.Errorf("the next run: want no problems; got:\n%s", problems(rep))
	}
}
