package agent

import (
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigil-monitor/vigil/checks"
)

// checkSeries are the series every check has (probe_success, probe_duration_seconds,
// vigil_check_last_run_timestamp_seconds, vigil_check_duration_seconds,
// vigil_check_runs_total, vigil_scheduler_skipped_runs_total), kept as one small record
// per check and made into metric families only when /metrics is scraped (see families).
// Metric vectors keep a labelled object per series, several kilobytes per check, and hash
// the label values on every update; a record is a few hundred bytes and an update is a
// map lookup.
type checkSeries struct {
	mu     sync.Mutex
	checks map[string]*checkRecord
}

// The per-check families' help.
const (
	helpSuccess   = "Whether the check's last run passed (1) or not (0), as blackbox_exporter reports it."
	helpDuration  = "How long the check's last run took."
	helpLastRun   = "When the check's last run ended, in Unix seconds: alert when it stops moving."
	helpHistogram = "Duration of check runs."
	helpRuns      = "Check runs by result (pass, fail, error, inconclusive)."
	helpSkipped   = "Scheduled runs skipped: the check's previous run was still going, or the time of the run had passed while the agent was starved of CPU."
)

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
	exemplars *exemplars
}

// exemplars are a check's exemplar per bucket, +Inf's last.
type exemplars [len(durationBuckets) + 1]exemplar

type exemplar struct {
	traceID string
	value   float64
	at      time.Time
}

func newCheckSeries() *checkSeries { return &checkSeries{checks: map[string]*checkRecord{}} }

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
			r.exemplars = new(exemplars)
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

// outcomesSorted are the indexes of outcomes in the order of their names, the order the
// registry sorts vigil_check_runs_total's series of one check into.
var outcomesSorted = func() []int {
	idx := []int{0, 1, 2, 3}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(string(outcomes[a]), string(outcomes[b])) })
	return idx
}()
