package agent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// BenchmarkScrape10000 is one /metrics scrape of the per-check series of 10,000 checks
// that have run (a histogram, gauges and counters: about 21 series each), as Prometheus
// asks for it (OpenMetrics, gzip): "agent" is how the agent serves them (metricsHandler),
// "registry" the same series gathered by a registry as const metrics. B/op is what a scrape
// allocates: it sets the agent's peak memory.
func BenchmarkScrape10000(b *testing.B) {
	s := seriesFixture(10_000)
	ref := prometheus.NewRegistry()
	ref.MustRegister(registrySeries{s})
	for _, h := range []struct {
		name string
		h    http.Handler
	}{
		{"agent", metricsHandler(prometheus.NewRegistry(), s)},
		{"registry", promhttp.HandlerFor(ref, promhttp.HandlerOpts{EnableOpenMetrics: true})},
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
