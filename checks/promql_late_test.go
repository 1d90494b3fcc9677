package checks

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/internal/promtest"
)

// TestPromQLFallbackBeforeTheMetricsArrive: right after a deploy the new version's
// requests are not in Prometheus yet (a scrape every 5 s here; 30 s, or a remote write that
// batches, in production), and a rate over the window since the deploy has no series. An
// error ratio over a labelled counter has none either for a healthy version that has
// served no error, and vigil's reason for it said "where none means zero, add `or
// vector(0)`": appended to the query, that passed a version answering nothing but 500s
// for as long as its metrics had not arrived, which can be a whole verification. The
// reason now gives the fallback to the error counter alone, with a series that says the
// requests came, and says what a bare one does. Those forms are no data yet until the
// metrics arrive, then fail the broken version and pass the healthy one.
func TestPromQLFallbackBeforeTheMetricsArrive(t *testing.T) {
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "Requests by version and code."},
		[]string{"version", "code"})
	reg.MustRegister(requests)
	requests.WithLabelValues("v1", "200").Add(100)
	prom := promtest.Start(t, promtest.Options{Targets: []string{promtest.Exporter(t, reg)}, ScrapeInterval: 5 * time.Second})
	prom.WaitForScrape(t, 60*time.Second)

	// The deploy: v2 answers every request with a 500, v3 (deployed beside it, another
	// service's canary) every one with a 200. Their counters count from here.
	since := time.Now()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				requests.WithLabelValues("v2", "500").Inc()
				requests.WithLabelValues("v3", "200").Inc()
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	broken := Input{Since: since, Deploy: &Deploy{ID: "d-2", Service: "web", Version: "v2"}}
	healthy := Input{Since: since, Deploy: &Deploy{ID: "d-3", Service: "api", Version: "v3"}}

	const (
		errs = `sum(rate(http_requests_total{code=~"5..",version="{{ .Deploy.Version }}"}[{{ .Window }}]))`
		all  = `sum(rate(http_requests_total{version="{{ .Deploy.Version }}"}[{{ .Window }}]))`
	)
	bare := buildOne(t, promqlYAML(prom.URL, errs+" / "+all, "value < 0.01"))
	ratio := buildOne(t, promqlYAML(prom.URL, "("+errs+" or vector(0)) / "+all, "value < 0.01"))
	count := buildOne(t, promqlYAML(prom.URL, errs+" or vector(0) and on() "+all+" > 0", "value < 0.1"))

	// Nothing of v2's or v3's is in Prometheus yet: the window since the deploy holds no
	// two scrapes of theirs.
	res := run(t, bare, healthy)
	wantOutcome(t, res, Inconclusive, "returned no series: no data to judge",
		"or vector(0)) / sum(rate(requests[w]))", "a bare `or vector(0)` at the end passes on metrics that have not arrived yet")
	if strings.Contains(strings.Join(res.Reasons, "\n"), "add `or vector(0)`") {
		t.Fatalf("the reason still says to add a bare `or vector(0)`: %q", res.Reasons)
	}
	// The bare fallback the old reason asked for: the broken version passes on no data.
	trap := buildOne(t, promqlYAML(prom.URL, errs+" / "+all+" or vector(0)", "value < 0.01"))
	if res := run(t, trap, broken); res.Outcome != Pass && time.Since(since) < 5*time.Second {
		t.Fatalf("a bare `or vector(0)` before the metrics came: %s %q (the trap this test is about has gone?)", res.Outcome, res.Reasons)
	}
	for _, c := range []*Check{ratio, count} {
		wantOutcome(t, run(t, c, broken), Inconclusive, "no data to judge")
		wantOutcome(t, run(t, c, healthy), Inconclusive, "no data to judge")
	}

	// Once two scrapes of them are in the window, the forms the reason gives judge them.
	waitJudged := func(c *Check, in Input) *Result {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(250 * time.Millisecond) {
			res := run(t, c, in)
			if res.Outcome != Inconclusive {
				return res
			}
			if time.Now().After(deadline) {
				t.Fatalf("still no data a minute after the deploy: %q", res.Reasons)
			}
		}
	}
	wantOutcome(t, waitJudged(ratio, broken), Fail, "value < 0.01 is false: value = 1")
	wantOutcome(t, waitJudged(ratio, healthy), Pass)
	wantOutcome(t, waitJudged(count, broken), Fail, "value < 0.1 is false: value = ")
	res = waitJudged(count, healthy)
	wantOutcome(t, res, Pass)
	if res.Vars["value"] != 0.0 {
		t.Fatalf("v3's error rate %v; want the fallback's 0, its requests there", res.Vars["value"])
	}
	// and the bare query stays no data for the healthy version, which has no error series
	wantOutcome(t, run(t, bare, healthy), Inconclusive, "returned no series")
}
