package checks

import (
	"math/bits"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
)

// gaugeTable holds a kind's gauges of each check's last answer as one row of numbers per
// check, made into metrics only when /metrics is scraped. Metric vectors keep an object per
// series (several hundred bytes each) and hash the label values on every update: for a
// kind with a dozen gauges that was most of what a check cost in memory. Every gauge has
// the labels check and location, and a column may add one label with a fixed value (the
// phase of probe_http_duration_seconds).
//
// The table's gauges are Families, made a part of the checks at a time: the agent's
// /metrics serves them beside the registry's. A gauge that several kinds set (the
// certificate's expiry, the DNS lookup) is in a table those kinds share (sharedGauges).
type gaugeTable struct {
	cols []gaugeColumn
	fams []tableFamily // the own columns' families, by name

	mu   sync.Mutex
	rows map[string]*gaugeRow
}

type gaugeColumn struct {
	name, help   string
	label, extra string // the column's extra label and its value; "" for none
}

// tableFamily is a gauge of the table's own: its columns, by their extra label's value.
type tableFamily struct {
	name, help string
	label      string
	cols       []int
	extras     []*dto.LabelPair // each column's extra label, shared by every scrape
	mask       uint64           // the columns' bits
}

type gaugeRow struct {
	location string
	values   []float64
	set      uint64 // bit i: column i has a value
}

// column adds a gauge, or a column of one (label and extra not ""), and returns its index.
func (t *gaugeTable) column(name, help, label, extra string) int {
	t.cols = append(t.cols, gaugeColumn{name: name, help: help, label: label, extra: extra})
	if len(t.cols) > 64 {
		panic("gaugeTable: more than 64 columns")
	}
	// The agent encodes these families unescaped (agent/metrics_handler.go): names no
	// escaping scheme would change.
	if !model.LegacyValidation.IsValidMetricName(name) || label != "" && !model.LegacyValidation.IsValidLabelName(label) {
		panic("gaugeTable: " + name + " " + label + ": not a legacy metric or label name")
	}
	return len(t.cols) - 1
}

// freeze fixes the table's families; it is called once, after the last column is added.
func (t *gaugeTable) freeze() {
	byName := map[string]*tableFamily{}
	for i, c := range t.cols {
		f := byName[c.name]
		if f == nil {
			f = &tableFamily{name: c.name, help: c.help, label: c.label}
			byName[c.name] = f
		}
		f.cols = append(f.cols, i)
	}
	for _, f := range byName {
		slices.SortStableFunc(f.cols, func(a, b int) int { return strings.Compare(t.cols[a].extra, t.cols[b].extra) })
		for _, i := range f.cols {
			f.mask |= 1 << i
			if f.label != "" {
				label, extra := f.label, t.cols[i].extra
				f.extras = append(f.extras, &dto.LabelPair{Name: &label, Value: &extra})
			}
		}
		t.fams = append(t.fams, *f)
	}
	slices.SortFunc(t.fams, func(a, b tableFamily) int { return strings.Compare(a.name, b.name) })
}

// update sets a check's row under the table's lock: fn sets and clears columns.
func (t *gaugeTable) update(check, location string, fn func(r *gaugeRow)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rows == nil {
		t.rows = map[string]*gaugeRow{}
	}
	r := t.rows[check]
	if r == nil {
		r = &gaugeRow{values: make([]float64, len(t.cols))}
		t.rows[check] = r
	}
	r.location = location
	fn(r)
}

func (r *gaugeRow) put(col int, v float64) {
	r.values[col] = v
	r.set |= 1 << col
}

func (r *gaugeRow) clear(col int) { r.set &^= 1 << col }

// DeletePartialMatch implements Vec: it drops the row of labels["check"].
func (t *gaugeTable) DeletePartialMatch(labels prometheus.Labels) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.rows[labels["check"]]
	if !ok {
		return 0
	}
	delete(t.rows, labels["check"])
	return bits.OnesCount64(r.set)
}

// tableRow is a check's row as a scrape copied it.
type tableRow struct {
	check, location string
	gaugeRow
}

// names are the checks with a row, sorted: the rows of one scrape.
func (t *gaugeTable) names() []string {
	t.mu.Lock()
	names := make([]string, 0, len(t.rows))
	for check := range t.rows {
		names = append(names, check)
	}
	t.mu.Unlock()
	slices.Sort(names)
	return names
}

// copyRows appends the rows of checks to rows, copied under the lock (a row without
// values for a check gone since), their values into values, which has room for them all.
func (t *gaugeTable) copyRows(checks []string, rows []tableRow, values []float64) []tableRow {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, check := range checks {
		row := tableRow{check: check}
		if r := t.rows[check]; r != nil {
			values = append(values, r.values...)
			row.location, row.gaugeRow = r.location, gaugeRow{values: values[len(values)-len(r.values):], set: r.set}
		}
		rows = append(rows, row)
	}
	return rows
}

// Names implements Families.
func (t *gaugeTable) Names() []string {
	names := make([]string, len(t.fams))
	for i, f := range t.fams {
		names[i] = f.name
	}
	return names
}

// Snapshot implements Families: the checks' names; their rows are copied a part at a time
// (Family), so that a scrape of 10,000 checks holds one part's copies. Taken in turn, the
// families share one set of arrays; otherwise each family has its own, as they are held
// together (a scrape in the protobuf format, made whole). Sharing them saves 1.2 MB of a
// scrape's allocations (BenchmarkScrape at 10,000 checks: 18.6 to 17.4 MB; at 1,000, 6.0 to 4.8, the test recorder's copy of the body included).
func (t *gaugeTable) Snapshot(inTurn bool) FamilyRows {
	n := len(t.fams)
	if inTurn {
		n = 1
	}
	return &tableRows{t: t, checks: t.names(), scratch: make([]familyScratch, n)}
}

type tableRows struct {
	t       *gaugeTable
	checks  []string
	scratch []familyScratch // a family's arrays (or every family's, taken in turn), reused from part to part
}

// familyScratch is what a family's metrics are made in: the rows of its part, as Family
// copied them, and the metrics made of them.
type familyScratch struct {
	rows    []tableRow
	values  []float64
	pairs   []dto.LabelPair // each row's check and location labels
	ptrs    []*dto.Metric
	metrics []dto.Metric
	gauges  []dto.Gauge
	labels  []*dto.LabelPair
}

func (s *tableRows) Len() int { return len(s.checks) }

var gaugeType = dto.MetricType_GAUGE

// Family implements FamilyRows: a metric per row and column of the family that has a
// value, rows by check and a row's columns by their extra label, as a registry sorts them.
// A family's metrics are made in arrays kept for its next part.
func (s *tableRows) Family(i, from, to int) *dto.MetricFamily {
	f := &s.t.fams[i]
	sc := &s.scratch[min(i, len(s.scratch)-1)]
	if cap(sc.values) < (to-from)*len(s.t.cols) {
		sc.values = make([]float64, 0, (to-from)*len(s.t.cols))
		sc.pairs = make([]dto.LabelPair, 2*(to-from))
	}
	sc.rows = s.t.copyRows(s.checks[from:to], sc.rows[:0], sc.values[:0])
	rows := sc.rows
	n := 0
	for _, r := range rows {
		n += bits.OnesCount64(r.set & f.mask)
	}
	perMetric := 2
	if f.label != "" {
		perMetric = 3
	}
	if cap(sc.metrics) < n {
		sc.ptrs, sc.metrics, sc.gauges, sc.labels = make([]*dto.Metric, n), make([]dto.Metric, n), make([]dto.Gauge, n), make([]*dto.LabelPair, perMetric*n)
	}
	mf := &dto.MetricFamily{Name: &f.name, Help: &f.help, Type: &gaugeType, Metric: sc.ptrs[:n]}
	m := 0
	for k := range rows {
		r := &rows[k]
		if r.set&f.mask == 0 {
			continue
		}
		check, location := &sc.pairs[2*k], &sc.pairs[2*k+1]
		*check = dto.LabelPair{Name: &labelCheck, Value: &r.check}
		*location = dto.LabelPair{Name: &labelLocation, Value: &r.location}
		for j, c := range f.cols {
			if r.set&(1<<c) == 0 {
				continue
			}
			l := sc.labels[perMetric*m : perMetric*(m+1) : perMetric*(m+1)]
			l[0], l[1] = check, location
			if f.label != "" {
				l[2] = f.extras[j]
			}
			sc.gauges[m] = dto.Gauge{Value: &r.values[c]}
			sc.metrics[m] = dto.Metric{Label: l, Gauge: &sc.gauges[m]}
			mf.Metric[m] = &sc.metrics[m]
			m++
		}
	}
	return mf
}

// The label names, shared by every label pair that points at them.
var labelCheck, labelLocation = "check", "location"
