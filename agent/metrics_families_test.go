package agent

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vigil-monitor/vigil/checks"
)

// registrySeries is the per-check series as a registry would gather them: const metrics
// from the same records. The test holds families() to it byte for byte, and
// BenchmarkScrape10000 compares the two.
type registrySeries struct{ s *checkSeries }

var refDescs = struct{ success, duration, lastRun, histogram, runs, skipped *prometheus.Desc }{
	prometheus.NewDesc("probe_success", helpSuccess, []string{"check", "kind", "location"}, nil),
	prometheus.NewDesc("probe_duration_seconds", helpDuration, []string{"check", "kind", "location"}, nil),
	prometheus.NewDesc("vigil_check_last_run_timestamp_seconds", helpLastRun, []string{"check", "kind", "location"}, nil),
	prometheus.NewDesc("vigil_check_duration_seconds", helpHistogram, []string{"check", "kind"}, nil),
	prometheus.NewDesc("vigil_check_runs_total", helpRuns, []string{"check", "kind", "result"}, nil),
	prometheus.NewDesc("vigil_scheduler_skipped_runs_total", helpSkipped, []string{"check"}, nil),
}

func (r registrySeries) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{refDescs.success, refDescs.duration, refDescs.lastRun, refDescs.histogram, refDescs.runs, refDescs.skipped} {
		ch <- d
	}
}

func (r registrySeries) Collect(ch chan<- prometheus.Metric) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	for name, c := range r.s.checks {
		if c.skippedSeen {
			ch <- prometheus.MustNewConstMetric(refDescs.skipped, prometheus.CounterValue, float64(c.skipped), name)
		}
		if !c.observed {
			continue
		}
		ch <- prometheus.MustNewConstMetric(refDescs.success, prometheus.GaugeValue, c.success, name, c.kind, c.location)
		ch <- prometheus.MustNewConstMetric(refDescs.duration, prometheus.GaugeValue, c.duration, name, c.kind, c.location)
		ch <- prometheus.MustNewConstMetric(refDescs.lastRun, prometheus.GaugeValue, c.lastRun, name, c.kind, c.location)
		for i, o := range outcomes {
			if c.runs[i] > 0 {
				ch <- prometheus.MustNewConstMetric(refDescs.runs, prometheus.CounterValue, float64(c.runs[i]), name, c.kind, string(o))
			}
		}
		cumulative := map[float64]uint64{}
		var n uint64
		for i, bound := range durationBuckets {
			n += c.buckets[i]
			cumulative[bound] = n
		}
		h := prometheus.MustNewConstHistogram(refDescs.histogram, c.count, c.sum, cumulative, name, c.kind)
		if c.exemplars != nil {
			var ex []prometheus.Exemplar
			for _, e := range c.exemplars {
				if e.traceID != "" {
					ex = append(ex, prometheus.Exemplar{Value: e.value, Labels: prometheus.Labels{"trace_id": e.traceID}, Timestamp: e.at})
				}
			}
			h = prometheus.MustNewMetricWithExemplars(h, ex...)
		}
		ch <- h
	}
}

// seriesFixture is n checks with every shape of record: runs of each outcome, exemplars
// in a bucket and in +Inf, skipped runs with and without runs, awkward names.
func seriesFixture(n int) *checkSeries {
	s := newCheckSeries()
	t0 := time.Unix(1_800_000_000, 0)
	for i := range n {
		name := fmt.Sprint("check-", i)
		switch i % 7 {
		case 1:
			name = fmt.Sprintf("quote\"and\\back-%d", i)
		case 2:
			name = fmt.Sprintf("ünïcode %d", i)
		}
		if i%11 == 10 {
			s.skip(name) // skipped only: no runs yet
			continue
		}
		for j, o := range outcomes {
			if (i+j)%3 == 0 || j == 0 {
				res := &checks.Result{Check: name, Kind: []string{"http", "browser"}[i%2], Location: []string{"", "eu-west"}[i%2],
					Outcome: o, Started: t0.Add(time.Duration(i) * time.Second), Duration: time.Duration(1+i*j*37%90000) * time.Millisecond}
				if (i+j)%4 == 0 {
					res.TraceID = fmt.Sprintf("%032x", i*10+j+1)
				}
				s.observe(res)
			}
		}
		if i%5 == 0 {
			s.skip(name)
		}
	}
	return s
}

// The per-check families make the same exposition as the registry made of the same
// series, in every format Prometheus asks for, merged among the registry's own families.
func TestSeriesFamiliesAsRegistry(t *testing.T) {
	s := seriesFixture(300)
	others := func(reg *prometheus.Registry) {
		for _, name := range []string{"aaa_first", "vigil_build_info", "zzz_last"} {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "A family of the registry's."})
			g.Set(1)
			reg.MustRegister(g)
		}
	}
	ref := prometheus.NewPedanticRegistry()
	others(ref)
	ref.MustRegister(registrySeries{s})
	reg := prometheus.NewPedanticRegistry()
	others(reg)
	want := promhttp.HandlerFor(ref, promhttp.HandlerOpts{EnableOpenMetrics: true})
	got := promhttp.HandlerForTransactional(seriesGatherer{reg, s}, promhttp.HandlerOpts{EnableOpenMetrics: true})
	for _, accept := range []string{
		"",
		"text/plain;version=0.0.4",
		"application/openmetrics-text;version=1.0.0",
		"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
	} {
		scrape := func(h interface {
			ServeHTTP(w http.ResponseWriter, r *http.Request)
		}) ([]byte, string) {
			req := httptest.NewRequest("GET", "/metrics", nil)
			if accept != "" {
				req.Header.Set("Accept", accept)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 {
				t.Fatalf("%q: %d %s", accept, w.Code, w.Body)
			}
			return w.Body.Bytes(), w.Header().Get("Content-Type")
		}
		wb, wt := scrape(want)
		gb, gt := scrape(got)
		if wt != gt {
			t.Errorf("%q: content type %q, want %q", accept, gt, wt)
		}
		if !bytes.Equal(wb, gb) {
			t.Errorf("%q: %d bytes differ from the registry's %d; first difference at %d:\n%q\nwant:\n%q",
				accept, len(gb), len(wb), firstDiff(gb, wb), around(gb, firstDiff(gb, wb)), around(wb, firstDiff(gb, wb)))
		}
		if len(wb) < 300*100 {
			t.Errorf("%q: only %d bytes", accept, len(wb))
		}
	}

	// A family both registered and per-check is an error, not two families of one name.
	dup := prometheus.NewPedanticRegistry()
	dup.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "probe_success", Help: "Again."}))
	if _, _, err := (seriesGatherer{dup, s}).Gather(); err == nil {
		t.Error("a duplicate family gathered without an error")
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func around(b []byte, i int) string { return string(b[max(0, i-200):min(len(b), i+200)]) }
