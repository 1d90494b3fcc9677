package agent

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/internal/promtest"
)

// registrySeries is the per-check series as a registry would gather them: const metrics
// from the same records. The test holds the handler to it byte for byte, and
// BenchmarkScrape compares the two.
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

// httpFixture observes n http checks' answers in kinds: every gauge of the http kind's
// table, answers without a certificate, checks that got no answer, awkward names.
func httpFixture(kinds checks.KindMetrics, n int) {
	for i := range n {
		name := fmt.Sprint("web-", i)
		if i%7 == 1 {
			name = fmt.Sprintf("quote\"and\\back-%d", i)
		}
		vars := map[string]any{"status": 200 + i%3, "dns_ms": float64(i % 5), "connect_ms": 1.25, "tls_ms": 2.5, "ttfb_ms": 9.0 + float64(i),
			"duration_ms": 12.0 + float64(i), "content_length": i, "body_bytes": i, "redirects": i % 2, "proto": "HTTP/1.1"}
		if i%3 == 0 {
			vars["cert_expiry_timestamp"] = 1.9e9 + float64(i)
		}
		if i%10 == 9 {
			vars = map[string]any{} // no answer: the status code alone
		}
		kinds.Observe(&checks.Result{Check: name, Kind: "http", Location: []string{"", "eu-west"}[i%2], Vars: vars})
	}
}

// wholeFamilies gathers sources' families whole, each made at once: the way a registry
// gathers (and the reference for the handler's parts).
func wholeFamilies(sources ...checks.Families) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, _, err := seriesGatherer{prometheus.NewRegistry(), newOwnFamilies(sources...)}.Gather()
		return mfs, err
	})
}

// The families kept beside the registry make the same exposition as the registry made of
// the same series, in every format Prometheus asks for, merged among the registry's own
// families: the per-check series against const metrics of the same records, the http
// kind's gauges against the same families gathered whole (checks' TestGaugeTableFamilies
// holds those to a registry's), with the gauges they share with other kinds in the
// registry.
func TestSeriesFamiliesAsRegistry(t *testing.T) {
	s := seriesFixture(300)
	reg := prometheus.NewPedanticRegistry()
	for _, name := range []string{"aaa_first", "vigil_build_info", "zzz_last"} {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "A family of the registry's."})
		g.Set(1)
		reg.MustRegister(g)
	}
	kinds := checks.NewKindMetrics(reg)
	httpFixture(kinds, 300)
	ref := prometheus.NewPedanticRegistry()
	ref.MustRegister(registrySeries{s})
	want := promhttp.HandlerFor(prometheus.Gatherers{ref, reg, wholeFamilies(kinds.Families()...)}, promhttp.HandlerOpts{EnableOpenMetrics: true}) // reg has the errors counter metricsHandler registers
	got := metricsHandler(reg, newOwnFamilies(append([]checks.Families{s}, kinds.Families()...)...))
	for _, accept := range []string{
		"",
		"text/plain;version=0.0.4",
		"application/openmetrics-text;version=1.0.0",
		"application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
		"application/openmetrics-text;version=1.0.0;escaping=allow-utf-8",
		"text/plain;version=1.0.0;escaping=allow-utf-8",
		// a header as Prometheus 3 makes one: each scrape protocol it takes, weighted in order
		"application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
		"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
	} {
		for _, encoding := range []string{"", "gzip", "gzip, deflate, br", "identity", "gzip;q=0", "*;q=0.5, identity;q=1", "deflate, gzip;q=1.0, *;q=0.5", "GZIP"} {
			for _, query := range []string{"", "?name[]=probe_success&name[]=zzz_last"} {
				what := fmt.Sprintf("Accept %q, Accept-Encoding %q, %q", accept, encoding, query)
				wh, wb := scrapeWith(t, want, accept, encoding, query)
				gh, gb := scrapeWith(t, got, accept, encoding, query)
				for _, h := range []string{"Content-Type", "Content-Encoding", "Vary"} {
					if fmt.Sprint(gh.Values(h)) != fmt.Sprint(wh.Values(h)) {
						t.Errorf("%s: %s %q, want %q", what, h, gh.Values(h), wh.Values(h))
					}
				}
				if !bytes.Equal(wb, gb) {
					i := firstDiff(gb, wb)
					t.Errorf("%s: %d bytes differ from the registry's %d; first difference at %d:\n%q\nwant:\n%q",
						what, len(gb), len(wb), i, around(gb, i), around(wb, i))
				}
				if query == "" && (len(wb) < 300*100 || !bytes.Contains(wb, []byte(`probe_http_duration_seconds{check="web-93",location="eu-west",phase="connect"} 0.00125`)) ||
					!bytes.Contains(wb, []byte(`probe_ssl_earliest_cert_expiry{check="web-93",location="eu-west"} 1.900000093e+09`))) {
					t.Errorf("%s: %d bytes, without every kind of series", what, len(wb))
				}
			}
		}
	}

	// A family both registered and per-check is an error, not two families of one name.
	dup := prometheus.NewPedanticRegistry()
	dup.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "probe_success", Help: "Again."}))
	if _, _, err := (seriesGatherer{dup, newOwnFamilies(s)}).Gather(); err == nil {
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

// scrapeWith scrapes h and returns the headers and the body, decompressed.
func scrapeWith(t *testing.T, h http.Handler, accept, encoding, query string) (http.Header, []byte) {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics"+query, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 {
		t.Fatalf("%q %q: %d %s", accept, encoding, w.Code, w.Body)
	}
	body := w.Body.Bytes()
	if w.Header().Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	if expfmt.ResponseFormat(w.Header()).FormatType() == expfmt.TypeProtoDelim {
		// The protobuf format carries each counter's creation time, which differs between
		// two registries: compare what it says without it, as text.
		dec := expfmt.NewDecoder(bytes.NewReader(body), expfmt.ResponseFormat(w.Header()))
		var text bytes.Buffer
		for {
			var mf dto.MetricFamily
			if err := dec.Decode(&mf); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			for _, m := range mf.GetMetric() {
				if m.Counter != nil {
					m.Counter.CreatedTimestamp = nil
				}
			}
			if _, err := expfmt.MetricFamilyToText(&text, &mf); err != nil {
				t.Fatal(err)
			}
		}
		body = text.Bytes()
	}
	return w.Header(), body
}

// A real Prometheus scrapes the agent's /metrics as it scrapes by default (OpenMetrics,
// gzip) and ingests every per-check series, across the parts they are written in (600
// checks, in parts of scrapePart). Prometheus's parser would also take a part's repeated HELP and
// TYPE lines; TestSeriesFamiliesAsRegistry is what holds the format to the letter.
func TestSeriesFamiliesScrapedByPrometheus(t *testing.T) {
	s := seriesFixture(600)
	var observed, runs, skipped int
	var runTotal uint64
	for _, r := range s.snapshot() {
		if r.observed {
			observed++
			for _, n := range r.runs {
				if n > 0 {
					runs++
					runTotal += n
				}
			}
		}
		if r.skippedSeen {
			skipped++
		}
	}
	reg := prometheus.NewRegistry()
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "aaa_registry_family", Help: "One of the registry's."})
	up.Set(1)
	reg.MustRegister(up)
	kinds := checks.NewKindMetrics(reg)
	httpFixture(kinds, 600)
	srv := httptest.NewServer(metricsHandler(reg, newOwnFamilies(append([]checks.Families{s}, kinds.Families()...)...)))
	defer srv.Close()
	prom := promtest.Start(t, promtest.Options{Targets: []string{strings.TrimPrefix(srv.URL, "http://")}, ScrapeInterval: 2 * time.Second}) // a scrape of 600 checks takes more than 300 ms under -race
	prom.WaitForScrape(t, 30*time.Second)
	for q, want := range map[string]int{
		`count(probe_success)`:                          observed,
		`count(probe_duration_seconds)`:                 observed,
		`count(vigil_check_last_run_timestamp_seconds)`: observed,
		`count(vigil_check_duration_seconds_bucket)`:    observed * (len(durationBuckets) + 1),
		`count(vigil_check_duration_seconds_count)`:     observed,
		`count(vigil_check_runs_total)`:                 runs,
		`sum(vigil_check_runs_total)`:                   int(runTotal),
		`count(vigil_scheduler_skipped_runs_total)`:     skipped,
		`sum(aaa_registry_family)`:                      1,
		`count(probe_http_status_code)`:                 600,
		`count(probe_http_duration_seconds)`:            540 * 5, // not the ones without an answer
		`count(probe_ssl_earliest_cert_expiry)`:         180,     // i%3 == 0 and an answer
		`count(probe_dns_lookup_time_seconds)`:          540,
	} {
		got, err := prom.Query(t.Context(), q)
		if err != nil || got != fmt.Sprint(want) {
			t.Errorf("%s = %q (%v), want %d; prometheus logs: %s", q, got, err, want, prom.Logs())
		}
	}
}

// acceptsGzip chooses what promhttp chooses for any Accept-Encoding, one header line or
// two.
func FuzzAcceptsGzip(f *testing.F) {
	for _, seed := range []string{"", "gzip", "GZIP", "gzip, deflate, br", "identity", "gzip;q=0", "*;q=0.5, identity;q=1",
		"deflate, gzip;q=1.0, *;q=0.5", "gzip;q=0.5\nidentity;q=0.4", "gzip;level=1", "gzip;q=abc, identity", "x/y, gzip ;q=0.9",
		"gzip;q=1.0001", "gzip;q=0.", "*", "*;q=0", "gzip\t,\tidentity;q=0"} {
		f.Add(seed)
	}
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "A gauge."})
	reg.MustRegister(g)
	ref := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	f.Fuzz(func(t *testing.T, header string) {
		req := httptest.NewRequest("GET", "/metrics", nil)
		for _, line := range strings.Split(header, "\n") {
			req.Header.Add("Accept-Encoding", line)
		}
		w := httptest.NewRecorder()
		ref.ServeHTTP(w, req)
		if want := w.Header().Get("Content-Encoding") == "gzip"; acceptsGzip(req) != want {
			t.Errorf("Accept-Encoding %q: gzip %v, promhttp %v", req.Header.Values("Accept-Encoding"), !want, want)
		}
	})
}

// snapshot copies every record, sorted by check name, as one part.
func (s *checkSeries) snapshot() []namedRecord {
	names := s.names()
	return s.copyRecords(names, nil, make([]exemplars, len(names)))
}
