package agent

// The per-check series go to /metrics as metric families made here, beside the registry's
// rather than through it. A registry gathers a metric at a time: it asks each for its
// protobuf, checks it against its description, hashes its labels to find duplicates and
// sorts each family. At 10,000 checks that is 210,000 metrics and the objects of each, most
// of a scrape's CPU and a peak of some 70 MB. Here a check's series of one scrape are one
// allocation, made in the order the registry would sort them into; the text formats are
// written by textWriter, as expfmt writes them, the protobuf format by promhttp. A test
// holds the output byte for byte to what the registry made of the same series.

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/vigil-monitor/vigil/checks"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ownFamilies are the metric families kept beside the registry (checks.Families): the
// per-check series here and the kinds' gauge tables, by name.
type ownFamilies struct {
	sources []checks.Families
	refs    []familyRef
}

type familyRef struct {
	name           string
	source, family int
}

// newOwnFamilies indexes the sources' families by name. Two of one name are a programming
// error (the catalogue test would see it first).
func newOwnFamilies(sources ...checks.Families) *ownFamilies {
	o := &ownFamilies{sources: sources}
	for i, src := range sources {
		for f, name := range src.Names() {
			o.refs = append(o.refs, familyRef{name, i, f})
		}
	}
	slices.SortFunc(o.refs, func(a, b familyRef) int { return strings.Compare(a.name, b.name) })
	for i, ref := range o.refs {
		if i > 0 && ref.name == o.refs[i-1].name {
			panic("metric family " + ref.name + " kept by two sources")
		}
		if !model.LegacyValidation.IsValidMetricName(ref.name) { // they are encoded unescaped (metricsHandler)
			panic("metric family " + ref.name + ": not a legacy metric name")
		}
	}
	return o
}

// has reports whether name is one of the families.
func (o *ownFamilies) has(name string) bool {
	_, ok := slices.BinarySearchFunc(o.refs, name, func(r familyRef, name string) int { return strings.Compare(r.name, name) })
	return ok
}

// snapshot takes every source's rows for one scrape; inTurn as checks.Families.Snapshot.
func (o *ownFamilies) snapshot(inTurn bool) []checks.FamilyRows {
	rows := make([]checks.FamilyRows, len(o.sources))
	for i, src := range o.sources {
		rows[i] = src.Snapshot(inTurn)
	}
	return rows
}

// seriesGatherer is the registry's families and the own ones, merged by name.
type seriesGatherer struct {
	reg prometheus.Gatherer
	own *ownFamilies
}

// gatherer is what /metrics serves: the registry's families and the own ones.
func (a *Agent) gatherer() seriesGatherer { return seriesGatherer{a.opts.Registry, a.metrics.own} }

// Gather implements prometheus.TransactionalGatherer.
func (g seriesGatherer) Gather() ([]*dto.MetricFamily, func(), error) {
	mfs, err := g.reg.Gather()
	rows := g.own.snapshot(false)
	var own []*dto.MetricFamily
	for _, ref := range g.own.refs {
		r := rows[ref.source]
		if mf := r.Family(ref.family, 0, r.Len()); len(mf.Metric) > 0 {
			own = append(own, mf)
		}
	}
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
			err = errDuplicateFamily(own[j].GetName())
			merged = append(merged, mfs[i])
			i++
			j++
		}
	}
	return merged, func() {}, err
}

func errDuplicateFamily(name string) error {
	return fmt.Errorf("metric family %s is both registered and kept beside the registry", name)
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

// namedRecord is a check's record as a scrape read it.
type namedRecord struct {
	name string
	checkRecord
}

// names are the checks' names, sorted: the rows of one scrape.
func (s *checkSeries) names() []string {
	s.mu.Lock()
	names := make([]string, 0, len(s.checks))
	for name := range s.checks {
		names = append(names, name)
	}
	s.mu.Unlock()
	slices.Sort(names)
	return names
}

// copyRecords appends the records of names to into, copied under the lock, a record per
// name (a zero one, with no series, for a check gone since), and their exemplars into ex
// (a slot per name, reused).
func (s *checkSeries) copyRecords(names []string, into []namedRecord, ex []exemplars) []namedRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, name := range names {
		nr := namedRecord{name: name}
		if r := s.checks[name]; r != nil {
			nr.checkRecord = *r
			if r.exemplars != nil {
				ex[i] = *r.exemplars
				nr.exemplars = &ex[i]
			}
		}
		into = append(into, nr)
	}
	return into
}

// The per-check families, in the order of their names.
const (
	famDuration  = iota // probe_duration_seconds
	famSuccess          // probe_success
	famHistogram        // vigil_check_duration_seconds
	famLastRun          // vigil_check_last_run_timestamp_seconds
	famRuns             // vigil_check_runs_total
	famSkipped          // vigil_scheduler_skipped_runs_total
	famCount
)

type seriesFamily struct {
	name, help string
	typ        dto.MetricType
}

var seriesFamilies = [famCount]seriesFamily{
	{"probe_duration_seconds", helpDuration, dto.MetricType_GAUGE},
	{"probe_success", helpSuccess, dto.MetricType_GAUGE},
	{"vigil_check_duration_seconds", helpHistogram, dto.MetricType_HISTOGRAM},
	{"vigil_check_last_run_timestamp_seconds", helpLastRun, dto.MetricType_GAUGE},
	{"vigil_check_runs_total", helpRuns, dto.MetricType_COUNTER},
	{"vigil_scheduler_skipped_runs_total", helpSkipped, dto.MetricType_COUNTER},
}

// Names implements checks.Families.
func (s *checkSeries) Names() []string {
	names := make([]string, famCount)
	for f, def := range seriesFamilies {
		names[f] = def.name
	}
	return names
}

// Snapshot implements checks.Families: the checks' names; their records are copied a
// part at a time (Family), so that a scrape of 10,000 checks holds one part's copies.
// A check's families are made in distinct parts of one scrapedCheck, taken in turn or not.
func (s *checkSeries) Snapshot(bool) checks.FamilyRows { return &seriesRows{s: s, names: s.names()} }

// seriesRows are the checks of one scrape, and what their families are made in: the
// records of the range last asked for and a scrapedCheck per check of it, reused from
// range to range.
type seriesRows struct {
	s       *checkSeries
	names   []string
	recs    []namedRecord
	ex      []exemplars
	scraped []scrapedCheck
}

func (s *seriesRows) Len() int { return len(s.names) }

// Family implements checks.FamilyRows. A check's families are made in distinct parts of
// its scrapedCheck, so those of one range stay valid together; each reads the records as
// they are when it is made. Their label pairs are shared: a check whose kind or location a
// reload changed between two families of one range shows the later in both.
func (s *seriesRows) Family(f, from, to int) *dto.MetricFamily {
	if len(s.scraped) < to-from {
		s.scraped = make([]scrapedCheck, to-from)
		s.ex = make([]exemplars, to-from)
	}
	s.recs = s.s.copyRecords(s.names[from:to], s.recs[:0], s.ex)
	return buildFamily(f, s.recs, s.scraped[:to-from])
}

// buildFamily makes family f of recs, into scraped (one per record; its other families'
// parts are left as they were).
func buildFamily(f int, recs []namedRecord, scraped []scrapedCheck) *dto.MetricFamily {
	def := seriesFamilies[f]
	mf := &dto.MetricFamily{Name: &def.name, Help: &def.help, Type: &def.typ, Metric: make([]*dto.Metric, 0, len(recs))}
	for i := range recs {
		r, c := &recs[i].checkRecord, &scraped[i]
		c.name, c.kind, c.location = recs[i].name, r.kind, r.location
		c.pairs[0] = dto.LabelPair{Name: &labelCheck, Value: &c.name}
		c.byCheck[0] = &c.pairs[0]
		if f == famSkipped {
			if r.skippedSeen {
				c.values[len(c.values)-1] = float64(r.skipped)
				c.skipped.Value = &c.values[len(c.values)-1]
				m := &c.metrics[4]
				m.Label, m.Counter = c.byCheck[:], &c.skipped
				mf.Metric = append(mf.Metric, m)
			}
			continue
		}
		if !r.observed {
			continue
		}
		c.pairs[1] = dto.LabelPair{Name: &labelKind, Value: &c.kind}
		c.pairs[2] = dto.LabelPair{Name: &labelLocation, Value: &c.location}
		c.byKind = [2]*dto.LabelPair{&c.pairs[0], &c.pairs[1]}
		c.byLocation = [3]*dto.LabelPair{&c.pairs[0], &c.pairs[1], &c.pairs[2]}
		gauge := func(k int, g *dto.Gauge, v float64) {
			c.values[k] = v
			g.Value = &c.values[k]
			m := &c.metrics[k]
			m.Label, m.Gauge = c.byLocation[:], g
			mf.Metric = append(mf.Metric, m)
		}
		switch f {
		case famSuccess:
			gauge(0, &c.success, r.success)
		case famDuration:
			gauge(1, &c.duration, r.duration)
		case famLastRun:
			gauge(2, &c.lastRun, r.lastRun)
		case famRuns:
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
				mf.Metric = append(mf.Metric, m)
			}
		case famHistogram:
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
			mf.Metric = append(mf.Metric, m)
		}
	}
	return mf
}

// withExemplars puts each bucket's newest run with a trace on it as its exemplar, as
// client_golang places them; +Inf's on a bucket added for it.
func withExemplars(buckets []*dto.Bucket, ex *exemplars, count *uint64) []*dto.Bucket {
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
