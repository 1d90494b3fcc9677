package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vigil-monitor/vigil/checks"
)

// BenchmarkScrape is one /metrics scrape of 1,000 and of 10,000 checks that have run:
// their per-check series (a histogram, gauges and counters: about 21 series each) and the
// http kind's gauges (10 each), as Prometheus asks for them (OpenMetrics, gzip). "agent"
// is how the agent serves them (metricsHandler); "registry" gathers every family whole
// before writing, as a registry does: the per-check series as const metrics, the http
// gauges' families made at once. The body is counted and dropped, as a connection takes
// it, so B/op is what the handler allocates per scrape: it sets the agent's peak memory.
func BenchmarkScrape(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		s := seriesFixture(n)
		reg := prometheus.NewRegistry()
		kinds := checks.NewKindMetrics(reg)
		httpFixture(kinds, n)
		ref := prometheus.NewRegistry()
		ref.MustRegister(registrySeries{s})
		for _, h := range []struct {
			name string
			h    http.Handler
		}{
			{"agent", metricsHandler(reg, newOwnFamilies(append([]checks.Families{s}, kinds.Families()...)...))},
			{"registry", promhttp.HandlerFor(prometheus.Gatherers{ref, reg, wholeFamilies(kinds.Families()...)}, promhttp.HandlerOpts{EnableOpenMetrics: true})},
		} {
			b.Run(fmt.Sprintf("%d/%s", n, h.name), func(b *testing.B) {
				req := httptest.NewRequest("GET", "/metrics", nil)
				req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
				req.Header.Set("Accept-Encoding", "gzip")
				w := &countingWriter{header: http.Header{}}
				b.ReportAllocs()
				for b.Loop() {
					clear(w.header)
					w.code, w.n = 0, 0
					h.h.ServeHTTP(w, req)
					if w.code != 0 && w.code != 200 || w.n == 0 {
						b.Fatal(w.code, w.n)
					}
				}
				b.ReportMetric(float64(w.n)/1024, "gzip-KiB")
			})
		}
	}
}

// countingWriter is a ResponseWriter that counts the body and drops it.
type countingWriter struct {
	header http.Header
	code   int
	n      int
}

func (w *countingWriter) Header() http.Header         { return w.header }
func (w *countingWriter) WriteHeader(code int)        { w.code = code }
func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
