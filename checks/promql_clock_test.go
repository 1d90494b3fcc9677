package checks

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/internal/promtest"
)

// TestPromQLClockSkew: vigil's clock and Prometheus's disagree (a host whose NTP broke).
// vigil asks for the query at its own time: behind Prometheus's clock, that is Prometheus's
// past, and a pool that leaked after the deploy read as it was before it (a pass); ahead,
// Prometheus's future, where no sample is within the lookback (no data, every run). The
// answer's Date header says how far apart the clocks are; the query is asked again at
// Prometheus's time, and the next run asks there at once.
func TestPromQLClockSkew(t *testing.T) {
	reg := prometheus.NewRegistry()
	active := prometheus.NewGauge(prometheus.GaugeOpts{Name: "pool_active_connections", Help: "Connections in use."})
	reg.MustRegister(active)
	active.Set(3)
	prom := promtest.Start(t, promtest.Options{Targets: []string{promtest.Exporter(t, reg)}, ScrapeInterval: time.Second})
	prom.WaitForScrape(t, 60*time.Second)
	waitFor := func(query, want string, ok func(string) bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			v, err := prom.Query(context.Background(), query)
			if err == nil && ok(v) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Prometheus never answered %s to %s: %q %v", want, query, v, err)
			}
		}
	}
	// Eight scrapes of the pool before the leak: the past vigil's slow clock reads.
	waitFor("count_over_time(pool_active_connections[1m])", "8 or more", func(v string) bool { n, err := strconv.Atoi(v); return err == nil && n >= 8 })
	active.Set(80)
	leaked := time.Now()
	waitFor("max(pool_active_connections)", "80", func(v string) bool { return v == "80" })
	// The skew is measured from the Date header's whole seconds, so a query asked again at
	// Prometheus's time may land up to a second in its past: let every sample of the last
	// 3s be the leak's before asking (on a loaded machine the first 80 was scraped just
	// before, and a query a second early read 3).
	waitFor("min_over_time(pool_active_connections[3s])", "80", func(v string) bool { return v == "80" })

	for _, tc := range []struct {
		name  string
		skew  func() time.Duration // vigil's clock minus Prometheus's
		clock string
	}{
		{"vigil behind", func() time.Duration { return -(time.Since(leaked) + 5*time.Second) }, "ahead of vigil's"},
		{"vigil ahead", func() time.Duration { return 10 * time.Minute }, "behind vigil's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := buildOne(t, promqlYAML(prom.URL, "max(pool_active_connections)", "value < 50"))
			skew := tc.skew()
			c.prober.(*PromQL).now = func() time.Time { return time.Now().Add(skew) }
			res := run(t, c, Input{})
			wantOutcome(t, res, Fail, "value < 50 is false: value = 80")
			if tr := strings.Join(res.Transcript, "\n"); !strings.Contains(tr, "Prometheus's clock is") || !strings.Contains(tr, tc.clock) {
				t.Fatalf("the transcript does not say the clocks disagree: %s", tr)
			}
			res = run(t, c, Input{})
			wantOutcome(t, res, Fail, "value < 50 is false: value = 80")
			if n := strings.Count(strings.Join(res.Transcript, "\n"), "query: "); n != 1 {
				t.Fatalf("the next run asked %d times; the skew measured before should have been used", n)
			}
		})
	}
	// Clocks that agree: asked once.
	res := run(t, buildOne(t, promqlYAML(prom.URL, "max(pool_active_connections)", "value < 50")), Input{})
	if n := strings.Count(strings.Join(res.Transcript, "\n"), "query: "); n != 1 || strings.Contains(strings.Join(res.Transcript, "\n"), "clock") {
		t.Fatalf("clocks that agree: asked %d times; transcript %q", n, res.Transcript)
	}
}

// The Date header is written when the answer starts: a large answer that takes seconds to
// arrive is not a Prometheus clock seconds behind vigil's.
func TestPromQLSlowAnswerIsNotSkew(t *testing.T) {
	var asked atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"3"]}]}`)
		w.(http.Flusher).Flush()
		time.Sleep(3500 * time.Millisecond) // the rest of a large answer, slowly
		fmt.Fprint(w, `}`)
	}))
	res := run(t, buildOne(t, promqlYAML(srv.URL, "max(up)", "value < 50")), Input{})
	wantOutcome(t, res, Pass)
	if n := asked.Load(); n != 1 || strings.Contains(strings.Join(res.Transcript, "\n"), "clock") {
		t.Fatalf("asked %d times; transcript %q", n, res.Transcript)
	}
}
