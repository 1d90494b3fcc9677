package agent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vigil-monitor/vigil/checks"
)

// BenchmarkScrape10000 is one /metrics scrape of 10,000 checks that have run: their
// per-check series (a histogram, gauges and counters: about 21 series each) and the http
// kind's gauges (10 each), as Prometheus asks for them (OpenMetrics, gzip). "agent" is how
// the agent serves them (metricsHandler); "registry" gathers every family whole before
// writing, as a registry does: the per-check series as const metrics, the http gauges'
// families made at once. B/op is what a scrape allocates: it sets the agent's peak memory.
func BenchmarkScrape10000(b *testing.B) {
	s := seriesFixture(10_000)
	reg := prometheus.NewRegistry()
	kinds := checks.NewKindMetrics(reg)
	httpFixture(kinds, 10_000)
	ref := prometheus.NewRegistry()
	ref.MustRegister(registrySeries{s})
	for _, h := range []struct {
		name string
		h    http.Handler
	}{
		{"agent", metricsHandler(reg, newOwnFamilies(append([]checks.Families{s}, kinds.Families()...)...))},
		{"registry", promhttp.HandlerFor(prometheus.Gatherers{ref, reg, wholeFamilies(kinds.Families()...)}, promhttp.HandlerOpts{EnableOpenMetrics: true})},
	} {
		b.Run(h.name, func(b *testing.B) {
			var size int
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("GET", "/metrics", nil)
				req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
				req.Header.Set("Accept-Encoding", "gzip")
				w := httptest.NewRecorder()
				h.h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
				size = w.Body.Len()
				_, _ = io.Copy(io.Discard, w.Body)
			}
			b.ReportMetric(float64(size)/1024, "gzip-KiB")
		})
	}
}
