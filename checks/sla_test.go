package checks

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func slaYAML(url string, requests, concurrency int, extra string) string {
	return fmt.Sprintf(`
checks:
  - name: api-sla
    kind: sla
    timeout: 20s
    request: {url: "%s/api/feed"}
    requests: %d
    concurrency: %d
%s`, url, requests, concurrency, extra)
}

// TestSLASeed001: a pool of 10 connections held through a 200ms blocking call. One client
// sees 200ms and passes; fifty clients queue for the pool and p95 blows up. The good
// release, which calls out after giving the connection back, passes at fifty.
func TestSLASeed001(t *testing.T) {
	_, bad := newPoolApp(t, "", true)
	_, good := newPoolApp(t, "", false)
	// The SLA sits halfway between what the call costs (200ms) and what queueing for the
	// pool costs (1s): a busy machine adds noise, not a factor of three.
	assert := `    assert: ["p95_ms < 600", "error_rate < 0.01"]`

	one := run(t, buildOne(t, slaYAML(bad.URL, 10, 1, assert)), Input{})
	wantOutcome(t, one, Pass)

	fifty := run(t, buildOne(t, slaYAML(bad.URL, 200, 50, assert)), Input{})
	wantOutcome(t, fifty, Fail, "p95_ms < 600 is false: p95_ms = ", "200 requests, concurrency 50")

	fixed := run(t, buildOne(t, slaYAML(good.URL, 200, 50, assert)), Input{})
	wantOutcome(t, fixed, Pass)

	p95 := func(r *Result) float64 { return r.Vars["p95_ms"].(float64) }
	t.Logf("p95: bad release at 1 client %.0fms, at 50 clients %.0fms; good release at 50 clients %.0fms; rps %.0f vs %.0f",
		p95(one), p95(fifty), p95(fixed), fifty.Vars["rps"], fixed.Vars["rps"])
	// Structure, not speed: 50 clients on 10 connections held 200ms each wait for about
	// four others' turns; no machine makes that faster, a slow one only makes it worse.
	if p95(fifty) < 800 {
		t.Fatalf("p95 at 50 clients is %.0fms; the pool of 10 cannot serve it under 800ms", p95(fifty))
	}
	if got := fifty.Vars["requests"]; got != 200 {
		t.Fatalf("requests = %v, want 200", got)
	}
	if st := fifty.Vars["statuses"].(map[string]int); st["200"] != 200 {
		t.Fatalf("statuses = %v, want 200×200", st)
	}
}

// stallServer answers at once, except that the first request starts a stall during which
// every request waits: a GC pause, a lock, a full pool.
type stallServer struct {
	stall time.Duration
	once  sync.Once
	until atomic.Int64
}

func (s *stallServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.once.Do(func() { s.until.Store(time.Now().Add(s.stall).UnixNano()) })
	if d := time.Until(time.Unix(0, s.until.Load())); d > 0 {
		time.Sleep(d)
	}
	fmt.Fprintln(w, "ok")
}

// TestSLARateSeesTheQueue: the same 600ms stall, measured two ways. Back to back (no rate)
// only the requests caught in the stall are slow: p90 looks fine. At a fixed rate, the
// requests due during the stall count from when they were due, so the queue shows.
func TestSLARateSeesTheQueue(t *testing.T) {
	const stall = 600 * time.Millisecond
	closed := run(t, buildOne(t, slaYAML(serve(t, &stallServer{stall: stall}).URL, 50, 2, "")), Input{})
	wantOutcome(t, closed, Pass)
	open := run(t, buildOne(t, slaYAML(serve(t, &stallServer{stall: stall}).URL, 50, 2, "    rate: 50")), Input{})
	wantOutcome(t, open, Pass)
	p90c, p90o := closed.Vars["p90_ms"].(float64), open.Vars["p90_ms"].(float64)
	t.Logf("p90 without rate %.1fms, at 50/s %.1fms; max %.0fms / %.0fms", p90c, p90o, closed.Vars["max_ms"], open.Vars["max_ms"])
	// At 50/s, requests 0..29 are due during the stall and wait until it ends: latencies
	// 600, 580, ... 20ms. The 45th of 50 is among them, at 500ms or more.
	if p90o < 400 {
		t.Fatalf("at a fixed rate p90 is %.0fms; the stall queues requests for up to 600ms", p90o)
	}
	// Back to back, only the two requests caught in the stall are slow.
	if m := closed.Vars["max_ms"].(float64); m < 500 {
		t.Fatalf("max without rate is %.0fms; the first requests sat through a 600ms stall", m)
	}
	if p90c >= p90o/2 {
		t.Fatalf("without a rate p90 is %.0fms, with it %.0fms: the closed loop should hide most of the stall", p90c, p90o)
	}
}

// TestSLAErrorsAndStatuses: statuses are counted, failures make error_rate, and a failed
// assertion says what was seen.
func TestSLAErrorsAndStatuses(t *testing.T) {
	var n atomic.Int64
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%4 == 0 {
			http.Error(w, "pool exhausted", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	res := run(t, buildOne(t, slaYAML(srv.URL, 40, 4, `    assert: ["error_rate < 0.01", "statuses['503'] == 0"]`)), Input{})
	wantOutcome(t, res, Fail, "error_rate < 0.01 is false: error_rate = 0.25 (10 of 40 failed: 200×30, 503×10)",
		"statuses['503'] == 0 is false")
	if res.Vars["errors"] != 10 {
		t.Fatalf("errors = %v", res.Vars["errors"])
	}
	ok := run(t, buildOne(t, slaYAML(srv.URL, 8, 2, "    ok_status: [200, 503]")), Input{})
	if ok.Vars["errors"] != 0 {
		t.Fatalf("with ok_status [200, 503] errors = %v", ok.Vars["errors"])
	}
}

// TestSLARateLimited: a burst against a rate limiter that answers 429 fails on its
// error rate, and the reason says that a limiter, not the service, refused those requests.
func TestSLARateLimited(t *testing.T) {
	var n atomic.Int64
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 10 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "rate limit exceeded", http.StatusTooManyRequests)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	res := run(t, buildOne(t, slaYAML(srv.URL, 40, 4, `    assert: ["error_rate < 0.01"]`)), Input{})
	wantOutcome(t, res, Fail, "error_rate = 0.75 (30 of 40 failed: 200×10, 429×30; 429 is a rate limiter refusing part of the burst")
	// Counted as the service's answer when ok_status says so.
	ok := run(t, buildOne(t, slaYAML(srv.URL, 8, 2, "    ok_status: [200, 429]\n    assert: [\"error_rate == 0\"]\n")), Input{})
	wantOutcome(t, ok, Pass)
}

// TestSLARetriedRequests: a server that closes the connection on every other request
// without answering is masked by Go's client, which sends such a request again on a new
// connection; retried counts them, so an assertion can fail on it (error_rate stays 0:
// every request got an answer in the end).
func TestSLARetriedRequests(t *testing.T) {
	var n atomic.Int64
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close() // dropped: no answer, the connection closed
			}
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	res := run(t, buildOne(t, slaYAML(srv.URL, 20, 1, `    assert: ["error_rate == 0", "retried == 0"]`)), Input{})
	wantOutcome(t, res, Fail, "retried == 0 is false", "sent again on a new connection")
	if r := res.Vars["retried"].(int); r < 5 || res.Vars["errors"] != 0 {
		t.Errorf("retried %d errors %v: want about 10 retried and no error", r, res.Vars["errors"])
	}
	n.Store(0) // the one request answered: none retried
	ok := run(t, buildOne(t, slaYAML(srv.URL, 1, 1, `    assert: ["retried == 0"]`)), Input{})
	wantOutcome(t, ok, Pass)
}

// TestSLABounded: a server that never answers half the time cannot hold the burst past
// max_duration; a server that is down is an error (nothing measured), not a failure.
func TestSLABounded(t *testing.T) {
	done := testDone(t)
	var n atomic.Int64
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			hang(done)(w, r)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	res := run(t, buildOne(t, slaYAML(srv.URL, 100, 4, "    max_duration: 500ms\n    assert: [\"error_rate == 0\"]")), Input{})
	wantOutcome(t, res, Fail, "error_rate == 0 is false", "timeout×")
	if res.Duration > 3*time.Second {
		t.Fatalf("the burst took %s; max_duration is 500ms", res.Duration)
	}
	st := res.Vars["statuses"].(map[string]int)
	if st["timeout"] == 0 || st["200"] == 0 {
		t.Fatalf("statuses %v: want answers and timeouts", st)
	}

	down := run(t, buildOne(t, slaYAML(closedURL(t), 20, 4, "")), Input{})
	wantOutcome(t, down, Error, "none of 20 requests got an answer", "connection refused")
}

func TestSLAConfig(t *testing.T) {
	wantBuildError(t, slaYAML("http://127.0.0.1:1", 5000, 10, ""), "checks[0].requests", "above the safety cap", "allow_load: true")
	if _, err := buildYAML(t, slaYAML("http://127.0.0.1:1", 5000, 10, "    allow_load: true")); err != nil {
		t.Fatalf("allow_load should lift the cap: %v", err)
	}
	wantBuildError(t, slaYAML("http://127.0.0.1:1", 300, 10, "    rate: 10\n    max_duration: 10s"),
		"checks[0].max_duration", "300 requests at 10/s take 29.9s")
	wantBuildError(t, slaYAML("http://127.0.0.1:1", 30, 10, "    max_duration: 1m"), "checks[0].max_duration", "longer than the check's timeout")
	wantBuildError(t, slaYAML("http://127.0.0.1:1", 30, 10, `    assert: ["p95 < 300"]`), `unknown variable "p95"`, `did you mean "p95_ms"?`)
}

// TestPercentile pins the nearest-rank definition.
func TestPercentile(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(i + 1)
	}
	for p, want := range map[float64]float64{50: 50, 90: 90, 95: 95, 99: 99, 100: 100, 0: 1} {
		if got := Percentile(xs, p); got != want {
			t.Errorf("p%g = %g, want %g", p, got, want)
		}
	}
	if got := Percentile([]float64{7}, 99); got != 7 {
		t.Errorf("p99 of one = %g", got)
	}
	if !strings.Contains(fmt.Sprint(Percentile(nil, 50)), "NaN") {
		t.Error("p50 of none should be NaN")
	}
}

// TestSLADefaults holds the README's defaults: 100 requests, concurrency 10, max_duration
// the timeout, any 2xx or 3xx ok.
func TestSLADefaults(t *testing.T) {
	c := buildOne(t, "\nchecks:\n  - name: s\n    kind: sla\n    timeout: 7s\n    request: {url: \"http://127.0.0.1:1/\"}\n")
	s := c.prober.(*SLA)
	if s.requests != 100 || s.concurrency != 10 || s.maxDuration != 7*time.Second || s.rate != 0 {
		t.Fatalf("requests %d, concurrency %d, max_duration %s, rate %g", s.requests, s.concurrency, s.maxDuration, s.rate)
	}
	for status, want := range map[int]bool{200: true, 204: true, 304: true, 399: true, 199: false, 404: false, 429: false, 500: false} {
		if s.isOK(status) != want {
			t.Errorf("status %d ok = %t by default", status, !want)
		}
	}
	wantBuildError(t, "\nchecks:\n  - name: s\n    kind: sla\n    request: {url: \"http://127.0.0.1:1/\"}\n    requests: 2001\n", "checks[0].requests")
	buildOne(t, "\nchecks:\n  - name: s\n    kind: sla\n    request: {url: \"http://127.0.0.1:1/\"}\n    requests: 2001\n    allow_load: true\n")
}
