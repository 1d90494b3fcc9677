package checks

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// cachingProxy is a loopback shared cache in front of the service, as a CDN, Varnish or
// nginx's proxy_cache is: it keeps a GET's 200 answer for its s-maxage (else max-age), answers
// from it with Age and X-Cache: HIT, and fetches from the origin (X-Cache: MISS) when it has
// none fresh. Set up as Varnish, nginx and CDNs are when told to, it forwards a request
// with Cache-Control: no-cache or Pragma: no-cache to the origin (a revalidation) and keeps
// the new answer; a CDN's default setup ignores them. nginx sends no Age.
type cachingProxy struct {
	t             *testing.T
	honourNoCache bool
	sendAge       bool

	mu      sync.Mutex
	origin  string
	entries map[string]*cacheEntry
	asked   []http.Header // the requests' headers, as they reached the cache
}

type cacheEntry struct {
	status int
	header http.Header
	body   []byte
	stored time.Time
	ttl    time.Duration
}

func newCachingProxy(t *testing.T, origin string, honourNoCache, sendAge bool) (*cachingProxy, string) {
	p := &cachingProxy{t: t, honourNoCache: honourNoCache, sendAge: sendAge, origin: origin, entries: map[string]*cacheEntry{}}
	return p, serve(t, p).URL
}

// deploy points the cache at the new version's origin; what it stored stays.
func (p *cachingProxy) deploy(origin string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.origin = origin
}

// backdate makes every stored answer d older: the cache has kept it that long.
func (p *cachingProxy) backdate(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.entries {
		e.stored = e.stored.Add(-d)
	}
}

// lastAsked is the last request's headers as the cache got them.
func (p *cachingProxy) lastAsked() http.Header {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.asked[len(p.asked)-1]
}

func (p *cachingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.asked = append(p.asked, r.Header.Clone())
	key := r.Method + " " + r.URL.RequestURI()
	e := p.entries[key]
	origin := p.origin
	p.mu.Unlock()
	revalidate := p.honourNoCache && (strings.Contains(r.Header.Get("Cache-Control"), "no-cache") || r.Header.Get("Pragma") == "no-cache")
	if e != nil && time.Since(e.stored) < e.ttl && !revalidate {
		p.answer(w, e, "HIT")
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, origin+r.URL.RequestURI(), nil)
	if err != nil {
		p.t.Error(err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, "origin unreachable", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	e = &cacheEntry{status: resp.StatusCode, header: resp.Header.Clone(), body: body, stored: time.Now(), ttl: freshFor(resp.Header)}
	if r.Method == http.MethodGet && resp.StatusCode == http.StatusOK && e.ttl > 0 {
		p.mu.Lock()
		p.entries[key] = e
		p.mu.Unlock()
	}
	p.answer(w, e, "MISS")
}

func (p *cachingProxy) answer(w http.ResponseWriter, e *cacheEntry, status string) {
	for k, vs := range e.header {
		w.Header()[k] = vs
	}
	w.Header().Del("Content-Length")
	if p.sendAge {
		w.Header().Set("Age", strconv.Itoa(int(time.Since(e.stored).Seconds())))
	}
	w.Header().Set("X-Cache", status)
	w.WriteHeader(e.status)
	w.Write(e.body)
}

// freshFor is how long a shared cache keeps an answer: s-maxage, else max-age; none when
// it is no-store or private.
func freshFor(h http.Header) time.Duration {
	var maxAge, sMaxAge = -1, -1
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(strings.ToLower(d)), "=")
		n, _ := strconv.Atoi(val)
		switch name {
		case "no-store", "private":
			return 0
		case "max-age":
			maxAge = n
		case "s-maxage":
			sMaxAge = n
		}
	}
	if sMaxAge >= 0 {
		return time.Duration(sMaxAge) * time.Second
	}
	return time.Duration(max(maxAge, 0)) * time.Second
}

// versions of the service: v1 good and cacheable for 5 minutes, v2 broken.
func cacheableV1(t *testing.T) string {
	return serve(t, versioned("v1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		fmt.Fprint(w, `{"items": [1, 2, 3]}`)
	}))).URL
}

func brokenV2(t *testing.T) string {
	return serve(t, versioned("v2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	}))).URL
}

// TestVerificationThroughACache: a cache in front of the service keeps v1's good answers
// for their max-age after a broken v2 is deployed. A verification judged the cache's
// copies and passed the broken v2, whatever the cache. Now its requests ask for a
// revalidation (Cache-Control: no-cache), which a cache set up to honour it forwards to the
// origin, so v2's 500 fails the deploy; a cache that ignores it and answers with a copy
// older than the deploy (its Age says so), or a hit with no Age, is inconclusive: nothing of
// v2 was seen.
func TestVerificationThroughACache(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		honourNoCache, sendAge bool
		want                   Outcome
		reason                 []string
	}{
		{"a cache that revalidates on no-cache (Varnish, nginx set up for it)", true, true, Fail, []string{"status = 500"}},
		{"a CDN that ignores no-cache", false, true, Inconclusive, []string{
			"answered from a cache (X-Cache: HIT, Age 12", " s): a copy stored before the deploy was registered (", "so the old version's answer, not the new one's"}},
		{"nginx: no Age, ignoring no-cache", false, false, Inconclusive, []string{
			"answered from a cache (X-Cache: HIT) that gives no Age: whether it was stored before the deploy cannot be told"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy, front := newCachingProxy(t, cacheableV1(t), tc.honourNoCache, tc.sendAge)
			c := buildOne(t, fmt.Sprintf(`
checks:
  - name: feed
    kind: http
    timeout: 5s
    request: {url: %q}
    assert: ["status == 200", "len(json.items) == 3"]
`, front+"/api/feed"))
			wantOutcome(t, run(t, c, Input{}), Pass) // visitors fill the cache with v1's answer
			proxy.backdate(2 * time.Minute)
			proxy.deploy(brokenV2(t))
			in := Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v2", StartedAt: time.Now()}}
			res := run(t, c, in)
			wantOutcome(t, res, tc.want, tc.reason...)
			if tc.want == Inconclusive {
				wantNotServed(t, res, false) // nothing of v2 seen, not "v2 is not up": ready_within does not count it
			}
			if h := proxy.lastAsked(); h.Get("Cache-Control") != "no-cache" || h.Get("Pragma") != "no-cache" {
				t.Errorf("the verification's request asked the cache Cache-Control %q, Pragma %q; want no-cache", h.Get("Cache-Control"), h.Get("Pragma"))
			}
		})
	}
}

// TestScheduledRunsTakeTheCachesAnswer: outside a verification what the cache answers is
// what visitors get, and a check may assert on the cache itself: no revalidation is asked,
// the cached answer is judged, and cached and age_s say what the cache said. A check that
// sets its own Cache-Control keeps it in a verification too.
func TestScheduledRunsTakeTheCachesAnswer(t *testing.T) {
	proxy, front := newCachingProxy(t, cacheableV1(t), true, true)
	c := buildOne(t, fmt.Sprintf(`
checks:
  - name: cdn
    kind: http
    request: {url: %q}
    assert: ["status == 200", "cached", "age_s >= 120", "headers['X-Cache'] == 'HIT'"]
`, front+"/"))
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "cached is false", "age_s = 0")
	proxy.backdate(2 * time.Minute)
	wantOutcome(t, run(t, c, Input{}), Pass)
	if h := proxy.lastAsked(); h.Get("Cache-Control") != "" || h.Get("Pragma") != "" {
		t.Errorf("a scheduled run asked Cache-Control %q, Pragma %q; want neither", h.Get("Cache-Control"), h.Get("Pragma"))
	}

	own := buildOne(t, fmt.Sprintf(`
checks:
  - name: cdn
    kind: http
    request: {url: %q, headers: {Cache-Control: max-stale}}
    assert: ["cached"]
`, front+"/"))
	res = run(t, own, Input{Deploy: &Deploy{ID: "d1", Version: "v1", StartedAt: time.Now().Add(-time.Hour)}})
	wantOutcome(t, res, Pass)
	if h := proxy.lastAsked(); h.Get("Cache-Control") != "max-stale" || h.Get("Pragma") != "" {
		t.Errorf("the check's own header: asked Cache-Control %q, Pragma %q; want max-stale alone", h.Get("Cache-Control"), h.Get("Pragma"))
	}
	if !strings.Contains(strings.Join(res.Transcript, "\n"), "stored after the deploy was registered (1h0m") {
		t.Errorf("transcript:\n%s", strings.Join(res.Transcript, "\n"))
	}
	pragma := buildOne(t, fmt.Sprintf(`
checks:
  - name: cdn
    kind: http
    request: {url: %q, headers: {Pragma: x-cache-debug}}
`, front+"/"))
	wantOutcome(t, run(t, pragma, Input{Deploy: &Deploy{ID: "d1", Version: "v1", StartedAt: time.Now().Add(-time.Hour)}}), Pass)
	if h := proxy.lastAsked(); h.Get("Cache-Control") != "" || h.Get("Pragma") != "x-cache-debug" {
		t.Errorf("the check's own Pragma: asked Cache-Control %q, Pragma %q; want its Pragma alone", h.Get("Cache-Control"), h.Get("Pragma"))
	}
}

// TestACachedAnswerAfterTheDeployIsJudged: a copy the cache stored after the registration
// is the new version's (its Age is shorter than the time since), and a copy that names the
// deploy's version (served_version) is the new version's whenever it was stored.
func TestACachedAnswerAfterTheDeployIsJudged(t *testing.T) {
	v2 := serve(t, versioned("v2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "s-maxage=300, max-age=0")
		fmt.Fprint(w, `{"items": []}`) // the new version lost the items
	}))).URL
	proxy, front := newCachingProxy(t, v2, false, true)
	check := func(served string) *Check {
		return buildOne(t, fmt.Sprintf(`
checks:
  - name: feed
    kind: http
    request: {url: %q}%s
    assert: ["len(json.items) == 3"]
`, front+"/", served))
	}
	plain := check("")
	wantOutcome(t, run(t, plain, Input{}), Fail) // the cache now holds v2's answer
	registered := Input{Deploy: &Deploy{ID: "d1", Version: "v2", StartedAt: time.Now().Add(-time.Minute)}}
	res := run(t, plain, registered)
	wantOutcome(t, res, Fail, "len(json.items) == 3 is false")
	if res.Vars["cached"] != true || res.Vars["age_s"] != 0 { // a hit in the same second
		t.Errorf("cached %v, age_s %v", res.Vars["cached"], res.Vars["age_s"])
	}

	proxy.backdate(2 * time.Minute) // stored before the registration: v2's answer all the same
	wantOutcome(t, run(t, plain, registered), Inconclusive, "a copy stored before the deploy was registered")
	wantOutcome(t, run(t, check("\n    served_version: {header: X-App-Version}"), registered), Fail, "len(json.items) == 3 is false")
}

// TestScriptThroughACache: a journey's steps ask for revalidation in a verification, and a
// step answered from a copy older than the deploy makes the run inconclusive.
func TestScriptThroughACache(t *testing.T) {
	for _, tc := range []struct {
		name          string
		honourNoCache bool
		want          Outcome
		reason        string
	}{
		{"revalidating cache", true, Fail, "step 1 (feed): status == 200 is false: status = 500"},
		{"CDN ignoring no-cache", false, Inconclusive, "step 1 (feed): answered from a cache (X-Cache: HIT, Age 12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy, front := newCachingProxy(t, cacheableV1(t), tc.honourNoCache, true)
			c := buildOne(t, fmt.Sprintf(`
checks:
  - name: journey
    kind: script
    steps:
      - {name: feed, request: {url: %q}, assert: ["status == 200"]}
`, front+"/api/feed"))
			wantOutcome(t, run(t, c, Input{}), Pass)
			proxy.backdate(2 * time.Minute)
			proxy.deploy(brokenV2(t))
			wantOutcome(t, run(t, c, Input{}), Pass) // a scheduled run: the cache's answer, what visitors get
			res := run(t, c, Input{Deploy: &Deploy{ID: "d1", Version: "v2", StartedAt: time.Now()}})
			wantOutcome(t, res, tc.want, tc.reason)
			if tc.want == Inconclusive {
				wantNotServed(t, res, false) // nothing of v2 seen, not "v2 is not up", as for http
			}
		})
	}
}

func TestCacheOf(t *testing.T) {
	for _, tc := range []struct {
		header map[string]string
		age    int
		hit    string
	}{
		{map[string]string{}, -1, ""},
		{map[string]string{"Age": "0", "X-Cache": "MISS"}, 0, ""},
		{map[string]string{"Age": "35", "X-Cache": "Hit from cloudfront"}, 35, "X-Cache: Hit from cloudfront"},
		{map[string]string{"X-Cache": "MISS, HIT"}, -1, "X-Cache: MISS, HIT"},
		{map[string]string{"X-Cache": "TCP_MEM_HIT"}, -1, "X-Cache: TCP_MEM_HIT"},
		{map[string]string{"X-Cache": "RefreshHit from cloudfront"}, -1, ""},
		{map[string]string{"X-Cache-Status": "STALE"}, -1, "X-Cache-Status: STALE"},
		{map[string]string{"X-Cache-Status": "REVALIDATED"}, -1, ""},
		{map[string]string{"Cf-Cache-Status": "DYNAMIC"}, -1, ""},
		{map[string]string{"Cache-Status": "ExampleCache; hit; ttl=30"}, -1, "Cache-Status: ExampleCache; hit; ttl=30"},
		{map[string]string{"Cache-Status": "ExampleCache; fwd=uri-miss"}, -1, ""},
		{map[string]string{"Age": "-3"}, -1, ""},
		{map[string]string{"Age": "abc"}, -1, ""},
		{map[string]string{"Age": "12, 7"}, 12, ""},
	} {
		got := cacheOf(flatGetter(tc.header))
		if got.age != tc.age || got.hit != tc.hit {
			t.Errorf("%v: age %d, hit %q; want %d, %q", tc.header, got.age, got.hit, tc.age, tc.hit)
		}
	}
}
