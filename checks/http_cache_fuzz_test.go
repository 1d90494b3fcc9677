package checks

import (
	"net/http"
	"testing"
)

// FuzzCacheOf: what a cache says of an answer (Age, X-Cache and the other status headers)
// comes from the service or anything in front of it, so any bytes: reading them never
// panics, an Age is a whole number of seconds or -1, and "cached" says exactly that a
// positive Age or a hit was read.
func FuzzCacheOf(f *testing.F) {
	for _, seed := range [][2]string{{"120", "HIT"}, {"", "Hit from cloudfront"}, {"0", "MISS"}, {"-5", "TCP_MEM_HIT"},
		{"99999999999999999999", "hit, miss"}, {"12, 13", `"cdn"; hit; ttl=30`}, {" 7 ", "STALE"}, {"x", ""}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, age, status string) {
		h := http.Header{}
		h.Set("Age", age)
		h.Set("X-Cache", status)
		h.Set("Cache-Status", status)
		c := cacheOf(h.Get)
		if c.age < -1 {
			t.Fatalf("Age %q read as %d", age, c.age)
		}
		if c.cached() != (c.age > 0 || c.hit != "") {
			t.Fatalf("cached() %v for age %d, hit %q", c.cached(), c.age, c.hit)
		}
		if c.hit != "" && !namesHit(status) {
			t.Fatalf("hit %q read from %q, which names no hit", c.hit, status)
		}
	})
}
