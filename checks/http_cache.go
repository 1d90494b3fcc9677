package checks

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// A cache in front of the service (a CDN, Varnish, nginx's proxy_cache) keeps the old
// version's answers for their max-age after a deploy: a verification that judged them would
// pass a broken new version on the old one's answers. So a verification's requests ask
// every cache on the way to revalidate with the origin (Cache-Control: no-cache, and
// Pragma for the HTTP/1.0 ones and the nginx setups that read it), and an answer that still
// comes from a cache and was stored before the deploy was registered is not the new
// version's: inconclusive, with nothing of the new version to judge. It is not news that the
// new version is not up (NotServedf): the cache's max-age is not the service's startup, and
// verify.ready_within counting it would fail a good deploy behind a CDN that keeps copies
// longer than the limit. Scheduled runs
// are left as they are: what the cache answers there is what visitors get.

type revalidateKey struct{}

// revalidating marks the requests made under ctx as a verification's: Do asks caches to
// revalidate them with the origin.
func revalidating(ctx context.Context) context.Context {
	return context.WithValue(ctx, revalidateKey{}, true)
}

// askRevalidation adds Cache-Control: no-cache and Pragma: no-cache to a verification's
// request, unless the check sets either itself (a check that asserts on the cache's own
// behaviour says what it asks of it).
func askRevalidation(ctx context.Context, h http.Header) {
	if ctx.Value(revalidateKey{}) == nil {
		return
	}
	if _, ok := h["Cache-Control"]; ok {
		return
	}
	if _, ok := h["Pragma"]; ok {
		return
	}
	h["Cache-Control"] = []string{"no-cache"}
	h["Pragma"] = []string{"no-cache"}
}

// cacheInfo is what an answer says of the cache that gave it.
type cacheInfo struct {
	// age is the Age header in seconds, -1 without one.
	age int
	// hit is the cache status header that names a hit ("X-Cache: HIT"), "" when none does.
	hit string
}

// cached: the answer came out of a cache, not from the origin just now.
func (c cacheInfo) cached() bool { return c.age > 0 || c.hit != "" }

// cacheStatusHeaders are where caches say whether they answered: Varnish, Fastly, Squid and
// CloudFront (X-Cache), nginx as usually set up (X-Cache-Status, X-Proxy-Cache), Cloudflare,
// and the standard Cache-Status (RFC 9211).
var cacheStatusHeaders = []string{"X-Cache", "X-Cache-Status", "X-Proxy-Cache", "Cf-Cache-Status", "Cache-Status"}

// cacheOf reads an answer's Age and cache status headers; get is the header lookup by
// canonical name.
func cacheOf(get func(string) string) cacheInfo {
	c := cacheInfo{age: -1}
	if v := strings.TrimSpace(get("Age")); v != "" {
		if first, _, _ := strings.Cut(v, ","); first != "" {
			if n, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && n >= 0 {
				c.age = n
			}
		}
	}
	for _, name := range cacheStatusHeaders {
		if v := get(name); v != "" && namesHit(v) {
			c.hit = name + ": " + Trim(v, 100)
			break
		}
	}
	return c
}

// namesHit: a cache status value says the answer was a stored one: HIT, "Hit from
// cloudfront", TCP_MEM_HIT, "HIT, MISS" (one of several layers), STALE and UPDATING
// (nginx and Cloudflare serving a stored answer while they fetch a new one), Cache-Status'
// "hit" parameter. MISS, EXPIRED, REVALIDATED, BYPASS and RefreshHit (the origin was asked)
// do not.
func namesHit(v string) bool {
	for _, tok := range strings.FieldsFunc(strings.ToLower(v), func(r rune) bool { return r < 'a' || r > 'z' }) {
		if tok == "hit" || tok == "stale" || tok == "updating" {
			return true
		}
	}
	return false
}

// flatGetter looks a header up in SetHTTPVars' flattened map.
func flatGetter(h map[string]string) func(string) string {
	return func(name string) string { return h[name] }
}

// setCacheVars records what the answer says of a cache: cached and age_s.
func setCacheVars(run *Run, prefix string, c cacheInfo) {
	run.Vars["cached"] = c.cached()
	run.Vars["age_s"] = c.age
	if c.age < 0 {
		run.Explain(prefix+"age_s", "no Age header: no cache said how long it kept the answer")
	}
}

// judgeCached is the rule for an answer in a deploy's verification: one a cache stored
// before the deploy was registered (its Age is longer than the time since) is the old
// version's, and a cache hit that gives no Age may be; either is inconclusive, not judged.
// Outside a verification, or from the origin, it says nothing.
func judgeCached(run *Run, c cacheInfo, now time.Time) error {
	d := run.Deploy
	if !c.cached() {
		return nil
	}
	from := c.from()
	run.Transcript.Printf("from a cache: %s", from)
	if d == nil || d.StartedAt.IsZero() {
		return nil
	}
	since := now.Sub(d.StartedAt)
	if c.age < 0 {
		return Inconclusivef("answered from a cache (%s) that gives no Age: whether it was stored before the deploy cannot be told, so it is not taken "+
			"for the new version's (make the cache revalidate on Cache-Control: no-cache, have it send Age, or check the origin)", from)
	}
	if c.storedBefore(d, now) {
		return Inconclusivef("answered from a cache (%s): a copy stored before the deploy was registered (%s ago), so the old version's answer, "+
			"not the new one's (the cache did not revalidate on Cache-Control: no-cache: make it, or check the origin)", from, roundSince(since))
	}
	run.Transcript.Printf("stored after the deploy was registered (%s ago): judged", roundSince(since))
	return nil
}

// from says what the answer said of its cache: "X-Cache: HIT, Age 120 s".
func (c cacheInfo) from() string {
	from := "Age " + strconv.Itoa(c.age) + " s"
	switch {
	case c.hit != "" && c.age >= 0:
		from = c.hit + ", " + from
	case c.hit != "":
		from = c.hit
	}
	return from
}

// storedBefore: in the verification of d, an answer (received at now) that a cache may
// have stored before the deploy was registered: its Age is longer than the time since, or
// it is a hit that gives no Age and cannot be dated. Outside a verification, or from the
// origin, false.
func (c cacheInfo) storedBefore(d *Deploy, now time.Time) bool {
	if !c.cached() || d == nil || d.StartedAt.IsZero() {
		return false
	}
	return c.age < 0 || time.Duration(c.age)*time.Second > now.Sub(d.StartedAt)
}

// roundSince shows a time since the deploy to the tenth of a second.
func roundSince(d time.Duration) string {
	return fmt.Sprint(d.Round(100 * time.Millisecond))
}
