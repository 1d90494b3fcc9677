package agent

import (
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/checks"
)

// checkSeries are the series every check has (probe_success, probe_duration_seconds,
// vigil_check_last_run_timestamp_seconds, vigil_check_duration_seconds,
// vigil_check_runs_total, vigil_scheduler_skipped_runs_total), kept as one small record
// per check and made into metrics only when /metrics is scraped. Metric vectors keep a
// labelled object per series, several kilobytes per check, and hash the label values on
// every update; a record is a few hundred bytes and an update is a map lookup.
type checkSeries struct {
	success, duration, lastRun, histogram, runs, skipped *prometheus.Desc

	mu     sync.Mutex
	checks map[string]*checkRecord
}

// durationBuckets are vigil_check_duration_seconds' upper bounds.
var durationBuckets = [...]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// outcomes orders the result label of vigil_check_runs_total.
var outcomes = [...]checks.Outcome{checks.Pass, checks.Fail, checks.Error, checks.Inconclusive}

type checkRecord struct {
	kind, location string
	// observed: a run was recorded (a check whose runs were all skipped has only its
	// skipped counter).
	observed                   bool
	success, duration, lastRun float64
	buckets                    [len(durationBuckets) + 1]uint64 // per bucket, not cumulative; the last is +Inf
	count                      uint64
	sum                        float64
	runs                       [len(outcomes)]uint64
	skipped                    uint64
	skippedSeen                bool
	// exemplars are each bucket's newest run with a trace, once there was one.
	exemplars *[len(durationBuckets) + 1]exemplar
}

type exemplar struct {
	traceID string
	value   float64
	at      time.Time
}

func newCheckSeries() *checkSeries {
	l3 := []string{"check", "kind", "location"}
	return &checkSeries{
		success: prometheus.NewDesc("probe_success",
			"Whether the check's last run passed (1) or not (0), as blackbox_exporter reports it.", l3, nil),
		duration: prometheus.NewDesc("probe_duration_seconds", "How long the check's last run took.", l3, nil),
		lastRun: prometheus.NewDesc("vigil_check_last_run_timestamp_seconds",
			"When the check's last run ended, in Unix seconds: alert when it stops moving.", l3, nil),
		histogram: prometheus.NewDesc("vigil_check_duration_seconds", "Duration of check runs.", []string{"check", "kind"}, nil),
		runs: prometheus.NewDesc("vigil_check_runs_total",
			"Check runs by result (pass, fail, error, inconclusive).", []string{"check", "kind", "result"}, nil),
		skipped: prometheus.NewDesc("vigil_scheduler_skipped_runs_total",
			"Scheduled runs skipped: the check's previous run was still going, or the time of the run had passed while the agent was starved of CPU.", []string{"check"}, nil),
		checks: map[string]*checkRecord{},
	}
}

func (s *checkSeries) record(name string) *checkRecord {
	r := s.checks[name]
	if r == nil {
		r = &checkRecord{}
		s.checks[name] = r
	}
	return r
}

// observe records one run.
func (s *checkSeries) observe(res *checks.Result) {
	secs := res.Duration.Seconds()
	success := 0.0
	if res.Outcome == checks.Pass {
		success = 1
	}
	b := sort.SearchFloat64s(durationBuckets[:], secs) // the first bound >= secs; len for +Inf
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.record(res.Check)
	r.kind, r.location, r.observed = res.Kind, res.Location, true
	r.success, r.duration = success, secs
	r.lastRun = float64(res.Started.Add(res.Duration).UnixMilli()) / 1000
	r.buckets[b]++
	r.count++
	r.sum += secs
	for i, o := range outcomes {
		if res.Outcome == o {
			r.runs[i]++
		}
	}
	if res.TraceID != "" {
		if r.exemplars == nil {
			r.exemplars = new([len(durationBuckets) + 1]exemplar)
		}
		r.exemplars[b] = exemplar{traceID: res.TraceID, value: secs, at: res.Started.Add(res.Duration)}
	}
}

// skip counts a skipped scheduled run.
func (s *checkSeries) skip(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.record(name)
	r.skipped++
	r.skippedSeen = true
}

// forget drops a check's series.
func (s *checkSeries) forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.checks, name)
}

// Describe implements prometheus.Collector.
func (s *checkSeries) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{s.success, s.duration, s.lastRun, s.histogram, s.runs, s.skipped} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. It copies the records under the lock and makes
// the metrics after it, so that runs ending during a scrape are not held up, and it sends
// them in the order the registry sorts them into (by label values), which the registry's
// sort then passes through in linear time: at 10,000 checks, sorting the series of a
// random order was a third of a scrape.
func (s *checkSeries) Collect(ch chan<- prometheus.Metric) {
	type named struct {
		name string
		checkRecord
	}
	s.mu.Lock()
	all := make([]named, 0, len(s.checks))
	for name, r := range s.checks {
		all = append(all, named{name: name, checkRecord: *r})
		if r.exemplars != nil {
			ex := *r.exemplars
			all[len(all)-1].exemplars = &ex
		}
	}
	s.mu.Unlock()
	slices.SortFunc(all, func(a, b named) int { return strings.Compare(a.name, b.name) })
	for i := range all {
		name, r := all[i].name, &all[i].checkRecord
		if r.skippedSeen {
			ch <- prometheus.MustNewConstMetric(s.skipped, prometheus.CounterValue, float64(r.skipped), name)
		}
		if !r.observed {
			continue
		}
		ch <- prometheus.MustNewConstMetric(s.success, prometheus.GaugeValue, r.success, name, r.kind, r.location)
		ch <- prometheus.MustNewConstMetric(s.duration, prometheus.GaugeValue, r.duration, name, r.kind, r.location)
		ch <- prometheus.MustNewConstMetric(s.lastRun, prometheus.GaugeValue, r.lastRun, name, r.kind, r.location)
		for _, i := range outcomesSorted {
			if r.runs[i] > 0 {
				ch <- prometheus.MustNewConstMetric(s.runs, prometheus.CounterValue, float64(r.runs[i]), name, r.kind, string(outcomes[i]))
			}
		}
		cumulative := make(map[float64]uint64, len(durationBuckets))
		var n uint64
		for i, bound := range durationBuckets {
			n += r.buckets[i]
			cumulative[bound] = n
		}
		h := prometheus.MustNewConstHistogram(s.histogram, r.count, r.sum, cumulative, name, r.kind)
		if r.exemplars != nil {
			var ex []prometheus.Exemplar
			for _, e := range r.exemplars {
				if e.traceID != "" {
					ex = append(ex, prometheus.Exemplar{Value: e.value, Labels: prometheus.Labels{"trace_id": e.traceID}, Timestamp: e.at})
				}
			}
			h = prometheus.MustNewMetricWithExemplars(h, ex...)
		}
		ch <- h
	}
}

// outcomesSorted are the indexes of outcomes in the order of their names, the order the
// registry sorts vigil_check_runs_total's series of one check into.
var outcomesSorted = func() []int {
	idx := []int{0, 1, 2, 3}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(string(outcomes[a]), string(outcomes[b])) })
	return idx
}()
