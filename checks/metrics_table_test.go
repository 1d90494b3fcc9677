package checks

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/vigil-monitor/vigil/internal/promtest"
	"google.golang.org/protobuf/proto"
)

type testColumns struct {
	single, shared int
	phases         []int
}

func testTable(reg prometheus.Registerer) (*gaugeTable, testColumns) {
	t := &gaugeTable{}
	var c testColumns
	c.single = t.column("test_single", "A gauge.", "", "")
	for _, p := range []string{"resolve", "connect", "tls", "processing", "transfer"} { // not in order
		c.phases = append(c.phases, t.column("test_phase_seconds", "A gauge with a column per phase.", "phase", p))
	}
	opts := prometheus.GaugeOpts{Name: "test_shared", Help: "A gauge another kind sets too."}
	sharedGauge(reg, opts)
	c.shared = t.sharedColumn(opts)
	t.register(reg)
	return t, c
}

// referenceTable is the table's own gauges as const metrics through a registry: what
// Family has to make, byte for byte once encoded.
type referenceTable struct{ t *gaugeTable }

func (r referenceTable) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(r, ch) }

func (r referenceTable) Collect(ch chan<- prometheus.Metric) {
	for _, row := range r.t.snapshot() {
		for i, c := range r.t.cols {
			if c.shared != nil || row.set&(1<<i) == 0 {
				continue
			}
			labels, values := []string{"check", "location"}, []string{row.check, row.location}
			if c.label != "" {
				labels, values = append(labels, c.label), append(values, c.extra)
			}
			desc := prometheus.NewDesc(c.name, c.help, labels, nil)
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, row.values[i], values...)
		}
	}
}

// gatheredText is what g gathers, as text: the families whose names keep takes.
func gatheredText(t *testing.T, g prometheus.Gatherer, keep func(name string) bool) string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, mf := range mfs {
		if !keep(mf.GetName()) {
			continue
		}
		if _, err := expfmt.MetricFamilyToText(&out, mf); err != nil {
			t.Fatal(err)
		}
	}
	return out.String()
}

// familiesText is a Families' families as text, each made from parts of part rows (each
// part copied before the next is made, which may reuse its memory).
func familiesText(t *testing.T, fams Families, part int) string {
	t.Helper()
	rows := fams.Snapshot()
	var out strings.Builder
	for f := range fams.Names() {
		var whole *dto.MetricFamily
		for from := 0; from < rows.Len(); from += part {
			mf := rows.Family(f, from, min(from+part, rows.Len()))
			if whole == nil {
				whole = &dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type}
			}
			for _, m := range mf.Metric {
				whole.Metric = append(whole.Metric, proto.Clone(m).(*dto.Metric))
			}
		}
		if whole == nil || len(whole.Metric) == 0 {
			continue
		}
		if _, err := expfmt.MetricFamilyToText(&out, whole); err != nil {
			t.Fatal(err)
		}
	}
	return out.String()
}

// The table's families are what a registry makes of the same gauges, whatever order the
// checks ran in, in a part of any size: every column, a cleared column, a row with none
// of a family's columns, labels that need escaping.
func TestGaugeTableFamilies(t *testing.T) {
	table, c := testTable(prometheus.NewRegistry())
	names := []string{"c10", "c9", "c1", "b", "c2", "a-very-long-name", "c100", `q"uote\`, "ünï", "z"}
	for k, name := range names {
		table.update(name, fmt.Sprint("loc-", k%3), func(r *gaugeRow) {
			r.put(c.single, float64(k))
			r.put(c.shared, 1)
			if k%4 == 3 {
				return // no phases
			}
			for i, p := range c.phases {
				r.put(p, float64(k*10+i)+0.25)
			}
			if k%3 == 1 {
				r.clear(c.phases[2])
			}
		})
	}
	table.update("z", "loc-9", func(r *gaugeRow) { r.clear(c.single) }) // a family with no column set
	ref := prometheus.NewPedanticRegistry()
	ref.MustRegister(referenceTable{table})
	want := gatheredText(t, ref, func(string) bool { return true })
	if !strings.Contains(want, `test_single{check="q\"uote\\",location="loc-1"} 7`) {
		t.Fatalf("the reference lacks an escaped series:\n%s", want)
	}
	if got := table.Names(); fmt.Sprint(got) != "[test_phase_seconds test_single]" {
		t.Errorf("names %v, want the own gauges' sorted", got)
	}
	for _, part := range []int{1, 2, 3, 7, len(names)} {
		if got := familiesText(t, table, part); got != want {
			t.Errorf("parts of %d:\n%s\nwant:\n%s", part, got, want)
		}
	}
	if got := familiesText(t, (&gaugeTable{}), 1); got != "" {
		t.Errorf("an empty table: %q", got)
	}
}

// A shared gauge goes through the registry, merged with the other kind's vector of the
// same name, in the order the registry sorts series into; the table's own gauges do not.
func TestGaugeTableSharedColumns(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	table, c := testTable(reg)
	sharedGauge(reg, prometheus.GaugeOpts{Name: "test_shared", Help: "A gauge another kind sets too."}).WithLabelValues("m", "eu").Set(7)
	for _, name := range []string{"c10", "c9", "c1", "b", "z", "a"} {
		table.update(name, "eu", func(r *gaugeRow) {
			r.put(c.single, 1)
			r.put(c.shared, 2)
		})
	}
	table.update("b", "eu", func(r *gaugeRow) { r.clear(c.shared) })
	promtest.InGatherOrder(t, sharedColumns{table})
	got := gatheredText(t, reg, func(string) bool { return true })
	want := `# HELP test_shared A gauge another kind sets too.
# TYPE test_shared gauge
test_shared{check="a",location="eu"} 2
test_shared{check="c1",location="eu"} 2
test_shared{check="c10",location="eu"} 2
test_shared{check="c9",location="eu"} 2
test_shared{check="m",location="eu"} 7
test_shared{check="z",location="eu"} 2
`
	if got != want {
		t.Errorf("gathered:\n%s\nwant:\n%s", got, want)
	}
	if n := table.DeletePartialMatch(prometheus.Labels{"check": "a"}); n != 2 {
		t.Errorf("forgetting a check dropped %d series, want 2", n)
	}
	if got := familiesText(t, table, 2); strings.Contains(got, `check="a"`) {
		t.Errorf("a forgotten check is still served:\n%s", got)
	}
}

// A run that ends while a scrape is sending is not held up by it.
func TestGaugeTableUpdateDuringScrape(t *testing.T) {
	table, c := testTable(prometheus.NewRegistry())
	for i := range 3 {
		table.update(fmt.Sprint("c", i), "eu", func(r *gaugeRow) { r.put(c.shared, 1) })
	}
	ch := make(chan prometheus.Metric)
	go func() {
		sharedColumns{table}.Collect(ch)
		close(ch)
	}()
	<-ch // the scrape is now waiting to send its second series
	updated := make(chan struct{})
	go func() {
		table.update("c0", "eu", func(r *gaugeRow) { r.put(c.shared, 2) })
		close(updated)
	}()
	select {
	case <-updated:
	case <-time.After(time.Minute): // a deadlock, not a slow machine
		t.Fatal("an update waited for a scrape to finish sending")
	}
	for range ch {
	}
}
