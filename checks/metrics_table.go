package checks

import (
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// gaugeTable holds a kind's gauges of each check's last answer as one row of numbers per
// check, made into metrics only when /metrics is scraped. Metric vectors keep an object per
// series (several hundred bytes each) and hash the label values on every update: for a
// kind with a dozen gauges that was most of what a check cost in memory. Every gauge has
// the labels check and location, and a column may add one label with a fixed value (the
// phase of probe_http_duration_seconds).
type gaugeTable struct {
	cols []gaugeColumn
	// shared are descriptions another kind's vector registers too (blackbox_exporter's
	// names for a measurement, not a prober): not described here, so that registering both
	// is no conflict; the registry still checks their help and type when it gathers.
	shared map[*prometheus.Desc]bool

	mu   sync.Mutex
	rows map[string]*gaugeRow
}

type gaugeColumn struct {
	desc  *prometheus.Desc
	extra string // the value of the column's extra label; "" for none
}

type gaugeRow struct {
	location string
	values   []float64
	set      uint64 // bit i: column i has a value
}

// column adds a gauge, or a column of one (extra != ""), and returns its index.
func (t *gaugeTable) column(desc *prometheus.Desc, extra string) int {
	t.cols = append(t.cols, gaugeColumn{desc, extra})
	if len(t.cols) > 64 {
		panic("gaugeTable: more than 64 columns")
	}
	return len(t.cols) - 1
}

// gaugeDesc describes a gauge with the table's labels, plus extra when it is not "".
func gaugeDesc(name, help, extra string) *prometheus.Desc {
	labels := []string{"check", "location"}
	if extra != "" {
		labels = append(labels, extra)
	}
	return prometheus.NewDesc(name, help, labels, nil)
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
	n := 0
	for c := range t.cols {
		if r.set&(1<<c) != 0 {
			n++
		}
	}
	return n
}

// Describe implements prometheus.Collector.
func (t *gaugeTable) Describe(ch chan<- *prometheus.Desc) {
	seen := map[*prometheus.Desc]bool{}
	for _, c := range t.cols {
		if !seen[c.desc] && !t.shared[c.desc] {
			seen[c.desc] = true
			ch <- c.desc
		}
	}
}

// Collect implements prometheus.Collector. Like the per-check series in agent, it copies
// the rows under the lock and sends the metrics after it, rows by check name and a
// gauge's columns by their extra label: the order the registry sorts them into.
func (t *gaugeTable) Collect(ch chan<- prometheus.Metric) {
	type named struct {
		check string
		gaugeRow
	}
	t.mu.Lock()
	all := make([]named, 0, len(t.rows))
	values := make([]float64, 0, len(t.rows)*len(t.cols)) // one array for every row's copy
	for check, r := range t.rows {
		values = append(values, r.values...)
		all = append(all, named{check, gaugeRow{location: r.location, values: values[len(values)-len(r.values):], set: r.set}})
	}
	t.mu.Unlock()
	slices.SortFunc(all, func(a, b named) int { return strings.Compare(a.check, b.check) })
	order := make([]int, len(t.cols))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(t.cols[a].extra, t.cols[b].extra) })
	for _, r := range all {
		for _, i := range order {
			c := t.cols[i]
			if r.set&(1<<i) == 0 {
				continue
			}
			if c.extra != "" {
				ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, r.values[i], r.check, r.location, c.extra)
			} else {
				ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, r.values[i], r.check, r.location)
			}
		}
	}
}
