package checks

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/internal/promtest"
)

// TestPromQLHistogramQuantileFewObservations, against a real Prometheus: a latency
// quantile over the window since a deploy holds a handful of requests at first, and a
// new pod's first request (a cold cache, a pool still connecting) is its slowest. With no
// request at all the quantile is NaN: no data, inconclusive. With one slow request it is
// that request: the p99 of one fails the deploy, and an observation beyond the top bucket
// reads as the highest finite bound (1), not +Inf. A guard on the count leaves no series
// until enough requests came, so the run is inconclusive (no data yet, which never ends a
// window), and judged once they have; the reason for it says not to add `or vector(0)`,
// which would make it a pass on 0.
func TestPromQLHistogramQuantileFewObservations(t *testing.T) {
	reg := prometheus.NewRegistry()
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "req_seconds", Help: "Request latency.", Buckets: []float64{0.05, 0.1, 0.5, 1}})
	reg.MustRegister(latency)
	prom := promtest.Start(t, promtest.Options{Targets: []string{promtest.Exporter(t, reg)}, ScrapeInterval: time.Second})
	prom.WaitForScrape(t, 60*time.Second)
	waitCount := func(query string, least float64) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			v, err := prom.Query(context.Background(), query)
			if n, perr := strconv.ParseFloat(v, 64); err == nil && perr == nil && n >= least {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Prometheus never answered %s >= %v: %q %v", query, least, v, err)
			}
		}
	}
	const p99 = `histogram_quantile(0.99, sum by (le) (rate(req_seconds_bucket[{{ .Window }}])))`
	const guarded = p99 + ` and sum(increase(req_seconds_count[{{ .Window }}])) >= 20`
	check := func(query string) *Check {
		return buildOne(t, promqlYAML(prom.URL, query, "value < 0.5")+"    window: 20s\n")
	}
	waitCount(`count_over_time(req_seconds_count[20s])`, 3) // rate() has samples to compare
	wantOutcome(t, run(t, check(p99), Input{}), Inconclusive, "returned NaN for every series (1): no data to judge")

	latency.Observe(5) // the first request, beyond the top bucket
	waitCount(`sum(increase(req_seconds_count[20s]))`, 0.5)
	wantOutcome(t, run(t, check(p99), Input{}), Fail, "value < 0.5 is false: value = 1")
	res := run(t, check(guarded), Input{})
	// The reason must not say to add `or vector(0)`: on the guard, that passes on 0.
	wantOutcome(t, res, Inconclusive, "returned no series: no data to judge (its `and`/`unless` leaves none until its condition holds",
		"not zero, so do not add `or vector(0)`")
	// "and" in a label's value is not a guard: the usual hint
	res = run(t, buildOne(t, promqlYAML(prom.URL, `max(req_seconds_count{path="/a and b"})`, "value < 1")), Input{})
	wantOutcome(t, res, Inconclusive, "where none means zero, give the fallback to that counter")

	for range 300 {
		latency.Observe(0.01)
	}
	waitCount(`sum(increase(req_seconds_count[20s]))`, 20)
	res = run(t, check(guarded), Input{})
	wantOutcome(t, res, Pass)
	if v := res.Vars["value"].(float64); v >= 0.05 {
		t.Fatalf("p99 %v over 300 fast requests and a slow one; want it in the first bucket", v)
	}
}
