package checks

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// cacheableReplica is a feed replica whose list a shared cache may keep for max-age.
func cacheableReplica(f *feed, maxAge int) http.HandlerFunc {
	inner := f.replica(0)
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", maxAge))
		inner(w, r)
	}
}

// TestPropagationReaderBehindACache: reader b is a cache (a CDN, Varnish, nginx's
// proxy_cache) in front of a replica that has every item at once; the cache has kept the
// list for a minute, stored before the write. The reads asked no revalidation, so every
// answer was the cache's copy from before the write and the run failed "1 of 2 readers
// never showed the marker": the cache's max-age measured as the service's propagation.
// Now every read asks caches to revalidate (Cache-Control: no-cache, Pragma: no-cache): a
// cache that honours it answers from the origin, and b shows the marker at once. A cache
// that ignores it and answers with a copy stored before the write (its Age says so, or a
// hit with no Age that cannot be dated) is no read of the service: those answers are left
// out, and a reader answered by nothing else until the timeout is inconclusive, not stale.
// A copy with the marker was stored after the write and shows it.
func TestPropagationReaderBehindACache(t *testing.T) {
	for _, tc := range []struct {
		name             string
		honour, sendAge  bool
		maxAge           int
		want             Outcome
		reason, trans    string
		checkSetsHeaders bool
	}{
		{name: "revalidates", honour: true, sendAge: true, maxAge: 300, want: Pass},
		{name: "ignores no-cache", sendAge: true, maxAge: 300, want: Inconclusive,
			reason: "1 of 2 readers were answered only from a cache's copy stored before the write"},
		{name: "hit with no Age", maxAge: 300, want: Inconclusive, reason: "X-Cache: HIT"},
		{name: "a copy that expires", sendAge: true, maxAge: 1, want: Pass, trans: "from a cache's copy stored before the write left out"},
		// A check that sets Cache-Control itself measures what the cache's visitors see.
		{name: "the check's own Cache-Control", honour: true, sendAge: true, maxAge: 300, want: Fail, checkSetsHeaders: true,
			reason: "1 of 2 readers never showed the marker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeed()
			w := serve(t, f.writer(http.StatusCreated))
			replica := serve(t, cacheableReplica(f, tc.maxAge))
			cache, cacheURL := newCachingProxy(t, replica.URL, tc.honour, tc.sendAge)
			resp, err := http.Get(cacheURL + "/api/items") // the copy the cache keeps
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if tc.maxAge > 1 {
				cache.backdate(time.Minute)
			}
			headers := ""
			if tc.checkSetsHeaders {
				headers = ", headers: {Cache-Control: max-age=600}"
			}
			c := buildOne(t, fmt.Sprintf(`
checks:
  - name: feed-propagation
    kind: propagation
    timeout: 3s
    poll: 50ms
    write: {url: "%s/api/items", body: '{"marker":"{{ .Nonce }}"}', headers: {Content-Type: application/json}}
    read:
      - {name: a, request: {url: "%s/api/items"}}
      - {name: b, request: {url: "%s/api/items"%s}}
`, w.URL, replica.URL, cacheURL, headers))
			res := run(t, c, Input{})
			wantOutcome(t, res, tc.want, tc.reason)
			if all := strings.Join(res.Transcript, "\n"); tc.trans != "" && !strings.Contains(all, tc.trans) {
				t.Fatalf("transcript lacks %q:\n%s", tc.trans, all)
			}
			asked := cache.lastAsked()
			if !tc.checkSetsHeaders && (asked.Get("Cache-Control") != "no-cache" || asked.Get("Pragma") != "no-cache") {
				t.Fatalf("the reads asked no revalidation: %v", asked)
			}
			if tc.want == Pass {
				t.Logf("b measured %.0fms", res.Vars["readers"].(map[string]float64)["b"])
			}
		})
	}
}
