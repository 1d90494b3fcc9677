package checks

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/internal/promtest"
)

// TestPromQLSeveralSeriesInARollout: a service with one replica, and a check of its one
// series, `pool_active_connections{app="payments"}` with "value < 50", which passes
// before the deploy. The rollout starts the new pod beside the old one (a surge), and for
// a while Prometheus scrapes both: two series, so there is no single value. Before, value
// was NaN, "value < 50" was false, and a healthy release (3 and 4 connections) failed at
// its first round and was rolled back on the shape of the query. An assertion that reads
// value is now not judged when there are several: the run is inconclusive, and says to
// aggregate; assertions over values and series are still judged. scalar() of the two is
// NaN, and its reason said only "a ratio of rates over a window with no requests is 0/0".
func TestPromQLSeveralSeriesInARollout(t *testing.T) {
	pod := func(version string) (*prometheus.Registry, prometheus.Gauge) {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "pool_active_connections", Help: "Connections in use.",
			ConstLabels: prometheus.Labels{"app": "payments", "version": version}})
		return prometheus.NewRegistry(), g
	}
	oldReg, oldPool := pod("v1")
	oldReg.MustRegister(oldPool)
	oldPool.Set(3)
	newReg, newPool := pod("v2") // the surge pod: scraped, with no series until it starts
	newPool.Set(4)
	prom := promtest.Start(t, promtest.Options{Targets: []string{promtest.Exporter(t, oldReg), promtest.Exporter(t, newReg)}, ScrapeInterval: time.Second})
	prom.WaitForScrape(t, 60*time.Second)
	count := func(want string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			v, err := prom.Query(context.Background(), `count(pool_active_connections{app="payments"})`)
			if err == nil && v == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Prometheus has %q series of the pool (%v), want %s", v, err, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	count("1")
	c := buildOne(t, promqlYAML(prom.URL, `pool_active_connections{app="payments"}`, "value < 50"))
	wantOutcome(t, run(t, c, Input{}), Pass)

	newReg.MustRegister(newPool)
	count("2")
	res := run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "payments", Version: "v2"}, Since: time.Now().Add(-10 * time.Second)})
	wantOutcome(t, res, Inconclusive, "not measured: value < 50: the query returned 2 series", "aggregate")
	if res.Vars["series"] != 2 {
		t.Fatalf("series = %v, want 2", res.Vars["series"])
	}
	// scalar() of two series is NaN: no data, and the reason says why
	c = buildOne(t, promqlYAML(prom.URL, `scalar(pool_active_connections{app="payments"})`, "value < 50"))
	wantOutcome(t, run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "payments", Version: "v2"}}), Inconclusive,
		"returned NaN: no data to judge", "scalar() of anything but one series is NaN")
	// values and series are measured, and judged
	c = buildOne(t, promqlYAML(prom.URL, `pool_active_connections{app="payments"}`, "value < 50", "series == 1"))
	wantOutcome(t, run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "payments", Version: "v2"}}), Fail, "series == 1 is false: series = 2")
	// aggregated, the rollout is judged on one number
	c = buildOne(t, promqlYAML(prom.URL, `max(pool_active_connections{app="payments"})`, "value < 50"))
	res = run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "payments", Version: "v2"}})
	wantOutcome(t, res, Pass)
	if res.Vars["value"] != 4.0 {
		t.Fatalf("value = %v, want the new pod's 4", res.Vars["value"])
	}
	if strings.Contains(strings.Join(res.Transcript, "\n"), "not judged") {
		t.Fatalf("an aggregate left an assertion unjudged:\n%s", strings.Join(res.Transcript, "\n"))
	}
}
