package checks

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/internal/promtest"
)

// TestPromQLWindowTooShortForARate: right after a deploy, {{ .Window }} is the few hundred
// milliseconds since it, shorter than two scrapes, and rate() over it has no series: no
// data yet, inconclusive, never a pass or a fail. The reason said only "is the metric
// scraped? check the labels", which sent the on-call after a query that was right. It now
// says first how long the range is and that a rate needs two scrapes in it; once it holds
// them, the same query is judged.
func TestPromQLWindowTooShortForARate(t *testing.T) {
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounter(prometheus.CounterOpts{Name: "checkout_requests_total", Help: "Requests."})
	reg.MustRegister(requests)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				requests.Inc()
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	prom := promtest.Start(t, promtest.Options{Targets: []string{promtest.Exporter(t, reg)}, ScrapeInterval: 2 * time.Second})
	prom.WaitForScrape(t, 60*time.Second)

	c := buildOne(t, promqlYAML(prom.URL, `sum(rate(checkout_requests_total[{{ .Window }}]))`, "value > 0"))
	deploy := &Deploy{ID: "d1", Service: "checkout", Version: "v2"}
	res := run(t, c, Input{Deploy: deploy, Since: time.Now().Add(-300 * time.Millisecond)})
	wantOutcome(t, res, Inconclusive, "returned no series: no data to judge ({{ .Window }} is ",
		"ms, the time since the deploy, and rate() and increase() give no series until it holds two samples of one, two scrapes: no data yet")
	if why := res.Reasons[0]; strings.Index(why, "since the deploy") > strings.Index(why, "is the metric scraped?") {
		t.Fatalf("the reason puts the labels before the window: %q", why)
	}
	// a range that holds two scrapes is judged
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		if v, err := prom.Query(context.Background(), `count_over_time(checkout_requests_total[30s])`); err == nil && v != "" && v != "1" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("Prometheus never scraped twice: %q %v", v, err)
		}
	}
	wantOutcome(t, run(t, c, Input{Deploy: deploy, Since: time.Now().Add(-30 * time.Second)}), Pass)
	// outside a deploy the window is whole, and nothing is said of it
	wrong := buildOne(t, promqlYAML(prom.URL, `sum(rate(checkout_requests_total{code="500"}[{{ .Window }}]))`, "value < 1"))
	res = run(t, wrong, Input{})
	wantOutcome(t, res, Inconclusive, "no data to judge (is the metric scraped? check the labels;")
}
