package checks

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/configs"
)

// askedLog records the requests a server got, by method and path.
type askedLog struct {
	mu  sync.Mutex
	got []askedRequest
}

type askedRequest struct {
	method, path string
	header       http.Header
}

func (l *askedLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.got = append(l.got, askedRequest{r.Method, r.URL.Path, r.Header.Clone()})
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// last is the last request for path, and whether there was one.
func (l *askedLog) last(path string) (askedRequest, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.got) - 1; i >= 0; i-- {
		if l.got[i].path == path {
			return l.got[i], true
		}
	}
	return askedRequest{}, false
}

func (l *askedLog) methods() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.got {
		out = append(out, r.method+" "+r.path)
	}
	return out
}

// sitePage serves a version of a site: its page (cacheable for 5 minutes, as a CDN is
// told to keep HTML), a same-origin script and, when api is set, a cross-origin fetch
// to it before the page says it is ready. broken pages throw at startup.
func sitePage(t *testing.T, version, api string, broken bool) string {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("Content-Type", "text/html")
		ready := `document.getElementById('app').dataset.ready = '1'`
		if api != "" {
			ready = fmt.Sprintf(`fetch(%q).then(function (r) { return r.text() }).then(function () { %s })`, api+"/api/feed", ready)
		}
		start := ""
		if broken {
			start = "app.start();"
		}
		fmt.Fprintf(w, `<!doctype html><title>%s</title><div id=app></div><script src="/app.js"></script><script>%s %s</script>`, version, start, ready)
	})
	mux.HandleFunc("/app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/javascript")
		fmt.Fprint(w, "var build = 1;\n")
	})
	return serve(t, versioned(version, mux)).URL
}

func buildBrowserCheck(t *testing.T, url, extra string) *Check {
	t.Helper()
	cfg, err := configs.Parse(t.TempDir()+"/vigil.yaml", []byte(fmt.Sprintf(`
checks:
  - name: home
    kind: browser
    timeout: 20s
    url: %q
    wait_for: "#app[data-ready]"
%s`, url, extra)), configs.Options{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	client := NewHTTPClient("vigil-test")
	t.Cleanup(client.CloseIdle)
	list, err := Build(cfg, Deps{HTTP: client, Browser: BrowserPool(t)})
	if err != nil {
		t.Fatal(err)
	}
	return list[0]
}

// TestBrowserThroughACache: a CDN in front of the site keeps v1's page for its max-age
// after a broken v2 (its page throws at startup) is deployed. A verification loaded the
// cache's copy of v1's page and passed v2. Now the page's document request asks for a
// revalidation, which a cache set up to honour it forwards to the origin, so v2's page is
// loaded and fails; a cache that ignores it answers with a copy older than the deploy
// (its Age says so), or a hit with no Age: inconclusive, nothing of v2's page seen.
func TestBrowserThroughACache(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		honourNoCache, sendAge bool
		want                   Outcome
		reason                 []string
	}{
		{"a cache that revalidates on no-cache", true, true, Fail, []string{"js_errors == 0 is false", "app.start is not a function"}},
		{"a CDN that ignores no-cache", false, true, Inconclusive, []string{
			"the page's document http://127.0.0.1:", "was answered from a cache (X-Cache: HIT, Age 12", // 120 s, or 121 on a slow first visit
			"s): a copy stored before the deploy was registered ("}},
		{"nginx: no Age, ignoring no-cache", false, false, Inconclusive, []string{
			"was answered from a cache (X-Cache: HIT) that gives no Age"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy, _ := newCachingProxy(t, sitePage(t, "v1", "", false), tc.honourNoCache, tc.sendAge)
			var asked askedLog
			front := serve(t, asked.wrap(proxy)).URL
			c := buildBrowserCheck(t, front+"/", "")
			wantOutcome(t, run(t, c, Input{}), Pass) // visitors fill the cache with v1's page
			if d, _ := asked.last("/"); d.header.Get("Cache-Control") != "" || d.header.Get("Pragma") != "" {
				t.Errorf("a scheduled run asked Cache-Control %q, Pragma %q for the page; want neither", d.header.Get("Cache-Control"), d.header.Get("Pragma"))
			}
			proxy.backdate(2 * time.Minute)
			proxy.deploy(sitePage(t, "v2", "", true))
			res := run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v2", StartedAt: time.Now()}})
			wantOutcome(t, res, tc.want, tc.reason...)
			if tc.want == Inconclusive {
				wantNotServed(t, res, false)
			}
			d, ok := asked.last("/")
			if !ok || d.header.Get("Cache-Control") != "no-cache" || d.header.Get("Pragma") != "no-cache" {
				t.Errorf("the verification's page request asked the cache Cache-Control %q, Pragma %q; want no-cache", d.header.Get("Cache-Control"), d.header.Get("Pragma"))
			}
		})
	}
}

// TestBrowserRevalidatesTheDocumentOnly: in a verification only the page's own document
// asks the caches to revalidate. Its scripts are not asked (a CDN keeps hashed assets for
// good), and its cross-origin fetches must not be: Cache-Control is not a CORS-safelisted
// request header, so the browser would send a preflight the API never expected, and a
// page whose API answers no OPTIONS would break under the check. A page the cache stored
// after the registration is judged, and a scheduled run's cached and age_s say what the
// cache said of it.
func TestBrowserRevalidatesTheDocumentOnly(t *testing.T) {
	var api askedLog
	apiURL := serve(t, api.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			http.Error(w, "no preflight expected", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", "*")
		fmt.Fprint(w, `{"items": []}`)
	}))).URL
	proxy, _ := newCachingProxy(t, sitePage(t, "v2", apiURL, false), true, true)
	var asked askedLog
	front := serve(t, asked.wrap(proxy)).URL
	c := buildBrowserCheck(t, front+"/", `    assert: ["js_errors == 0", "failed_requests == 0", "wait_for_found", "cached", "age_s >= 0"]`)

	res := run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v2", StartedAt: time.Now().Add(-time.Minute)}})
	// The verification revalidated: the page came from the origin, not the cache.
	wantOutcome(t, res, Fail, "cached is false")
	doc, _ := asked.last("/")
	if doc.header.Get("Cache-Control") != "no-cache" || doc.header.Get("Pragma") != "no-cache" {
		t.Errorf("the page's request asked Cache-Control %q, Pragma %q; want no-cache", doc.header.Get("Cache-Control"), doc.header.Get("Pragma"))
	}
	script, ok := asked.last("/app.js")
	if !ok || script.header.Get("Cache-Control") != "" || script.header.Get("Pragma") != "" {
		t.Errorf("the page's script (requested %v) asked Cache-Control %q, Pragma %q; want neither", ok, script.header.Get("Cache-Control"), script.header.Get("Pragma"))
	}
	fetched, ok := api.last("/api/feed")
	if !ok || fetched.method != http.MethodGet || fetched.header.Get("Cache-Control") != "" || fetched.header.Get("Pragma") != "" {
		t.Errorf("the cross-origin fetch (made %v) asked Cache-Control %q, Pragma %q; want neither", ok, fetched.header.Get("Cache-Control"), fetched.header.Get("Pragma"))
	}
	for _, m := range api.methods() {
		if strings.HasPrefix(m, http.MethodOptions) {
			t.Errorf("the API got a CORS preflight: %v", api.methods())
		}
	}

	// A scheduled run takes the cache's copy; so does a verification registered before
	// the cache stored it (Age 0, a minute after the registration): both judged.
	wantOutcome(t, run(t, c, Input{}), Pass)
	if d, _ := asked.last("/"); d.header.Get("Cache-Control") != "" {
		t.Errorf("a scheduled run asked Cache-Control %q for the page; want none", d.header.Get("Cache-Control"))
	}
	v2 := sitePage(t, "v2", "", false)
	proxyNoRevalidate, _ := newCachingProxy(t, v2, false, true)
	front2 := serve(t, proxyNoRevalidate).URL
	c2 := buildBrowserCheck(t, front2+"/", `    assert: ["js_errors == 0", "cached"]`)
	wantOutcome(t, run(t, c2, Input{}), Fail, "cached is false") // the cache's first answer is a MISS
	res = run(t, c2, Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v2", StartedAt: time.Now().Add(-time.Minute)}})
	wantOutcome(t, res, Pass)
	if !strings.Contains(strings.Join(res.Transcript, "\n"), "stored after the deploy was registered (1m") {
		t.Errorf("transcript:\n%s", strings.Join(res.Transcript, "\n"))
	}

	// Kept from before the registration: the old version's page, unless it names the
	// deploy's version (served_version), which alone says whose it is. In a journey, any
	// main-frame document counts, not only the last.
	proxyNoRevalidate.backdate(2 * time.Minute)
	later := Input{Deploy: &Deploy{ID: "d2", Service: "web", Version: "v2", StartedAt: time.Now()}}
	wantOutcome(t, run(t, c2, later), Inconclusive, "a copy stored before the deploy was registered")
	named := buildBrowserCheck(t, front2+"/", "    served_version: {header: X-App-Version}")
	wantOutcome(t, run(t, named, later), Pass)
	journey := buildBrowserCheck(t, front2+"/", fmt.Sprintf("    steps: [{navigate: %q}]", v2+"/"))
	res = run(t, journey, later)
	wantOutcome(t, res, Inconclusive, "the page's document "+front2+"/ was answered from a cache")
	if res.Vars["cached"] != false {
		t.Errorf("cached %v; want false: the last document came from the origin", res.Vars["cached"])
	}
}
