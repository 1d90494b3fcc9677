package checks

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestSLAThroughACache: a cache in front of the service keeps v1's good answers for their
// max-age after a broken v2 is deployed. A verification's burst judged the cache's copies
// and passed v2. Now its requests ask for a revalidation, which a cache set up to honour it
// forwards to the origin, so v2's 500s fail the burst; a cache that ignores it answers with
// copies older than the deploy (or hits with no Age), which are counted in
// cached_before_deploy and left out of every figure: a burst of nothing else is
// inconclusive.
func TestSLAThroughACache(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		honourNoCache, sendAge bool
		want                   Outcome
		reason                 []string
		cached, before         int
	}{
		{"a cache that revalidates on no-cache", true, true, Fail, []string{"error_rate = 1 (20 of 20 failed: 500×20)"}, 0, 0},
		{"a CDN that ignores no-cache", false, true, Inconclusive, []string{
			"all 20 answers came from a cache (such as X-Cache: HIT, Age 12", " s): copies stored before the deploy was registered (",
			"so the old version's answers, not the new one's"}, 20, 20},
		{"nginx: no Age, ignoring no-cache", false, false, Inconclusive, []string{
			"all 20 answers came from a cache (such as X-Cache: HIT): copies stored before the deploy was registered (",
			"20 of them hits with no Age to date them"}, 20, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy, front := newCachingProxy(t, cacheableV1(t), tc.honourNoCache, tc.sendAge)
			c := buildOne(t, slaYAML(front, 20, 4, `    assert: ["error_rate == 0"]`))
			res := run(t, c, Input{}) // visitors fill the cache with v1's answer
			wantOutcome(t, res, Pass)
			proxy.backdate(2 * time.Minute)
			proxy.deploy(brokenV2(t))
			res = run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v2", StartedAt: time.Now()}})
			wantOutcome(t, res, tc.want, tc.reason...)
			if tc.want == Inconclusive {
				wantNotServed(t, res, false) // nothing of v2 seen, not "v2 is not up"
			}
			if res.Vars["cached"] != tc.cached || res.Vars["cached_before_deploy"] != tc.before {
				t.Errorf("cached %v, cached_before_deploy %v; want %d, %d", res.Vars["cached"], res.Vars["cached_before_deploy"], tc.cached, tc.before)
			}
			if h := proxy.lastAsked(); h.Get("Cache-Control") != "no-cache" || h.Get("Pragma") != "no-cache" {
				t.Errorf("the burst's request asked the cache Cache-Control %q, Pragma %q; want no-cache", h.Get("Cache-Control"), h.Get("Pragma"))
			}
		})
	}
}

// TestSLACacheHitsDoNotTimeTheNewVersion: a slow v2 behind a CDN that ignores no-cache.
// The burst's first request reaches v2 (500 ms) and the cache keeps its answer; the other
// 19 are the cache's, in a millisecond or so, and passed p95_ms < 250 on a version that
// answers no request in under 500 ms. In a verification the cache's answers are left out
// of the figures (cached says how many), so the burst is judged on v2's own latency.
func TestSLACacheHitsDoNotTimeTheNewVersion(t *testing.T) {
	slow := serve(t, versioned("v2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(500 * time.Millisecond)
		w.Header().Set("Cache-Control", "public, max-age=300")
		fmt.Fprint(w, `{"items": [1, 2, 3]}`)
	}))).URL
	_, front := newCachingProxy(t, slow, false, true)
	c := buildOne(t, slaYAML(front, 20, 1, `    assert: ["p95_ms < 250"]`))
	res := run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v2", StartedAt: time.Now().Add(-time.Minute)}})
	wantOutcome(t, res, Fail, "p95_ms < 250 is false", "1 requests, concurrency 1; 19 answers from a cache (such as X-Cache: HIT, Age 0 s) left out, 0 of them stored before the deploy")
	if res.Vars["cached"] != 19 || res.Vars["cached_before_deploy"] != 0 || res.Vars["requests"] != 1 {
		t.Errorf("cached %v, cached_before_deploy %v, requests %v; want 19, 0, 1", res.Vars["cached"], res.Vars["cached_before_deploy"], res.Vars["requests"])
	}
	// The next round: the cache answers every request from the copy it took from v2.
	res = run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v2", StartedAt: time.Now().Add(-time.Minute)}})
	wantOutcome(t, res, Inconclusive, "all 20 answers came from a cache (such as X-Cache: HIT, Age ",
		"the burst did not reach the service, so the new version's latency and errors under load were not measured")
}

// TestSLAScheduledBurstTakesTheCachesAnswers: outside a verification the cache's answers
// are what visitors get: no revalidation is asked, they are counted in every figure, and
// cached says how many came from the cache.
func TestSLAScheduledBurstTakesTheCachesAnswers(t *testing.T) {
	proxy, front := newCachingProxy(t, cacheableV1(t), true, true)
	c := buildOne(t, slaYAML(front, 10, 1, `    assert: ["error_rate == 0", "cached == 9", "cached_before_deploy == 0"]`))
	res := run(t, c, Input{})
	wantOutcome(t, res, Pass)
	if res.Vars["requests"] != 10 {
		t.Errorf("requests %v; want the 10 answers, the cache's among them", res.Vars["requests"])
	}
	if h := proxy.lastAsked(); h.Get("Cache-Control") != "" || h.Get("Pragma") != "" {
		t.Errorf("a scheduled burst asked Cache-Control %q, Pragma %q; want neither", h.Get("Cache-Control"), h.Get("Pragma"))
	}
}
