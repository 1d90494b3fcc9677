package agent

// The per-check series go to /metrics as metric families made here, beside the registry's
// rather than through it. A registry gathers a metric at a time: it asks each for its
// protobuf, checks it against its description, hashes its labels to find duplicates and
// sorts each family. At 10,000 checks that is 210,000 metrics and the objects of each, most
// of a scrape's CPU and a peak of some 70 MB. Here a check's series of one scrape are one
// allocation, made in the order the registry would sort them into; the exposition itself
// (text, OpenMetrics, protobuf, compression) is still promhttp's and expfmt's. A test holds
// the output byte for byte to what the registry made of the same series.

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// seriesGatherer is the registry's families and the per-check ones, merged by name.
type seriesGatherer struct {
	reg    prometheus.Gatherer
	series *checkSeries
}

// gatherer is what /metrics serves: the registry's families and the per-check ones.
func (a *Agent) gatherer() seriesGatherer { return seriesGatherer{a.opts.Registry, a.metrics.checks} }

// Gather implements prometheus.TransactionalGatherer.
func (g seriesGatherer) Gather() ([]*dto.MetricFamily, func(), error) {
	mfs, err := g.reg.Gather()
	own := g.series.families()
	merged := make([]*dto.MetricFamily, 0, len(mfs)+len(own))
	i, j := 0, 0
	for i < len(mfs) || j < len(own) {
		switch {
		case j == len(own) || i < len(mfs) && mfs[i].GetName() < own[j].GetName():
			merged = append(merged, mfs[i])
			i++
		case i == len(mfs) || own[j].GetName() < mfs[i].GetName():
			merged = append(merged, own[j])
			j++
		default:
			err = fmt.Errorf("metric family %s is both registered and a per-check family", own[j].GetName())
			merged = append(merged, mfs[i])
			i++
			j++
		}
	}
	return merged, func() {}, err
}

// The label names, shared by every label pair that points at them.
var (
	labelCheck, labelKind, labelLocation, labelResult, labelTraceID = "check", "kind", "location", "result", "trace_id"
	// bucketBounds are durationBuckets for the buckets' pointers.
	bucketBounds = durationBuckets
	infBound     = math.Inf(1)
)

// scrapedCheck is one check's series in one scrape: its metrics and everything they point
// at. Its pointers point into itself (and at the label names), so a scrape allocates one
// per check.
type scrapedCheck struct {
	name, kind, location string
	outcomes             [len(outcomes)]string

	pairs             [3 + len(outcomes)]dto.LabelPair // check, kind, location, then a result per outcome
	byCheck           [1]*dto.LabelPair
	byKind            [2]*dto.LabelPair
	byLocation        [3]*dto.LabelPair
	byResult          [len(outcomes)][3]*dto.LabelPair
	success, duration dto.Gauge
	lastRun           dto.Gauge
	runs              [len(outcomes)]dto.Counter
	skipped           dto.Counter
	values            [3 + len(outcomes) + 1]float64
	histogram         dto.Histogram
	buckets           [len(durationBuckets)]dto.Bucket
	bucketPtrs        [len(durationBuckets)]*dto.Bucket
	cumulative        [len(durationBuckets)]uint64
	count             uint64
	sum               float64
	metrics           [5 + len(outcomes)]dto.Metric // success, duration, lastRun, histogram, skipped, runs
}

// families makes the per-check series into metric families, sorted by name, each one's
// metrics sorted by their labels.
func (s *checkSeries) families() []*dto.MetricFamily {
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

	scraped := make([]scrapedCheck, len(all))
	fam := func(name, help string, t dto.MetricType) *dto.MetricFamily {
		return &dto.MetricFamily{Name: &name, Help: &help, Type: &t, Metric: make([]*dto.Metric, 0, len(all))}
	}
	success := fam("probe_success", helpSuccess, dto.MetricType_GAUGE)
	duration := fam("probe_duration_seconds", helpDuration, dto.MetricType_GAUGE)
	lastRun := fam("vigil_check_last_run_timestamp_seconds", helpLastRun, dto.MetricType_GAUGE)
	histogram := fam("vigil_check_duration_seconds", helpHistogram, dto.MetricType_HISTOGRAM)
	runs := fam("vigil_check_runs_total", helpRuns, dto.MetricType_COUNTER)
	skipped := fam("vigil_scheduler_skipped_runs_total", helpSkipped, dto.MetricType_COUNTER)
	for i := range all {
		r, c := &all[i].checkRecord, &scraped[i]
		c.name, c.kind, c.location = all[i].name, r.kind, r.location
		c.pairs[0] = dto.LabelPair{Name: &labelCheck, Value: &c.name}
		c.byCheck[0] = &c.pairs[0]
		if r.skippedSeen {
			c.values[len(c.values)-1] = float64(r.skipped)
			c.skipped.Value = &c.values[len(c.values)-1]
			m := &c.metrics[4]
			m.Label, m.Counter = c.byCheck[:], &c.skipped
			skipped.Metric = append(skipped.Metric, m)
		}
		if !r.observed {
			continue
		}
		c.pairs[1] = dto.LabelPair{Name: &labelKind, Value: &c.kind}
		c.pairs[2] = dto.LabelPair{Name: &labelLocation, Value: &c.location}
		c.byKind = [2]*dto.LabelPair{&c.pairs[0], &c.pairs[1]}
		c.byLocation = [3]*dto.LabelPair{&c.pairs[0], &c.pairs[1], &c.pairs[2]}
		for k, g := range []struct {
			gauge *dto.Gauge
			value float64
			fam   *dto.MetricFamily
		}{{&c.success, r.success, success}, {&c.duration, r.duration, duration}, {&c.lastRun, r.lastRun, lastRun}} {
			c.values[k] = g.value
			g.gauge.Value = &c.values[k]
			m := &c.metrics[k]
			m.Label, m.Gauge = c.byLocation[:], g.gauge
			g.fam.Metric = append(g.fam.Metric, m)
		}
		for _, k := range outcomesSorted {
			if r.runs[k] == 0 {
				continue
			}
			c.outcomes[k] = string(outcomes[k])
			c.pairs[3+k] = dto.LabelPair{Name: &labelResult, Value: &c.outcomes[k]}
			c.byResult[k] = [3]*dto.LabelPair{&c.pairs[0], &c.pairs[1], &c.pairs[3+k]}
			c.values[3+k] = float64(r.runs[k])
			c.runs[k].Value = &c.values[3+k]
			m := &c.metrics[5+k]
			m.Label, m.Counter = c.byResult[k][:], &c.runs[k]
			runs.Metric = append(runs.Metric, m)
		}
		var n uint64
		for k := range durationBuckets {
			n += r.buckets[k]
			c.cumulative[k] = n
			c.buckets[k] = dto.Bucket{CumulativeCount: &c.cumulative[k], UpperBound: &bucketBounds[k]}
			c.bucketPtrs[k] = &c.buckets[k]
		}
		c.count, c.sum = r.count, r.sum
		c.histogram = dto.Histogram{SampleCount: &c.count, SampleSum: &c.sum, Bucket: c.bucketPtrs[:]}
		if r.exemplars != nil {
			c.histogram.Bucket = withExemplars(c.histogram.Bucket, r.exemplars, &c.count)
		}
		m := &c.metrics[3]
		m.Label, m.Histogram = c.byKind[:], &c.histogram
		histogram.Metric = append(histogram.Metric, m)
	}
	var out []*dto.MetricFamily
	for _, f := range []*dto.MetricFamily{success, duration, lastRun, histogram, runs, skipped} {
		if len(f.Metric) > 0 {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}

// withExemplars puts each bucket's newest run with a trace on it as its exemplar, as
// client_golang places them; +Inf's on a bucket added for it.
func withExemplars(buckets []*dto.Bucket, ex *[len(durationBuckets) + 1]exemplar, count *uint64) []*dto.Bucket {
	for k, e := range ex {
		if e.traceID == "" {
			continue
		}
		traceID, value := e.traceID, e.value
		d := &dto.Exemplar{Label: []*dto.LabelPair{{Name: &labelTraceID, Value: &traceID}}, Value: &value, Timestamp: timestamppb.New(e.at)}
		if k < len(durationBuckets) {
			buckets[k].Exemplar = d
			continue
		}
		buckets = append(slices.Clip(buckets), &dto.Bucket{CumulativeCount: count, UpperBound: &infBound, Exemplar: d})
	}
	return buckets
}
