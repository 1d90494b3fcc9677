// Package backoff is vigil's one retry schedule: exponential from a first wait, capped,
// with jitter in the upper half of each wait so that many retries started together spread
// out. The outbox, verdict recording and check retries use it; the wait itself is the
// caller's, on its injected clock.
package backoff

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Policy is a retry schedule.
type Policy struct {
	First time.Duration // the first wait (attempt 1)
	Max   time.Duration // no wait is longer
	// Jitter draws each wait from its upper half [d/2, d], so retries started together
	// spread out; without it the waits are exact (First, 2 First, 4 First, ...).
	Jitter bool
}

// Delay is the wait before retry number attempt (1 is the first retry).
func (p Policy) Delay(attempt int) time.Duration {
	d := p.Max
	if attempt < 1 {
		attempt = 1
	}
	if shift := attempt - 1; shift < 62 && p.First<<shift > 0 && p.First<<shift < p.Max {
		d = p.First << shift
	}
	if p.Jitter && d > 1 {
		return d/2 + rand.N(d/2+1)
	}
	return d
}

// RetryAfter reads a Retry-After value, as a server that refused for now (429, 503) asks
// to be waited for: delay seconds or an HTTP-date, at most a day; ok is false when it says
// nothing usable (absent, negative, not a number or a date). A date already past is 0.
// Each caller caps it further by what it can wait.
func RetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, 86400)) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return min(max(at.Sub(now), 0), 24*time.Hour), true
	}
	return 0, false
}
