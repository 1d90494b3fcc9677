package checks

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/vigil-monitor/vigil/configs"
	"google.golang.org/protobuf/proto"
)

type testColumns struct {
	single, other int
	phases        []int
}

func testTable() (*gaugeTable, testColumns) {
	t := &gaugeTable{}
	var c testColumns
	c.single = t.column("test_single", "A gauge.", "", "")
	for _, p := range []string{"resolve", "connect", "tls", "processing", "transfer"} { // not in order
		c.phases = append(c.phases, t.column("test_phase_seconds", "A gauge with a column per phase.", "phase", p))
	}
	c.other = t.column("test_other", "Another gauge.", "", "")
	t.freeze()
	return t, c
}

// referenceTable is the table's own gauges as const metrics through a registry: what
// Family has to make, byte for byte once encoded.
type referenceTable struct{ t *gaugeTable }

func (r referenceTable) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(r, ch) }

func (r referenceTable) Collect(ch chan<- prometheus.Metric) {
	for _, row := range r.t.snapshot() {
		for i, c := range r.t.cols {
			if row.set&(1<<i) == 0 {
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

// familiesText is a Families' families as text, each made from parts of part rows, taken
// in turn (each part copied before the next is made, which may reuse its memory).
func familiesText(t *testing.T, fams Families, part int) string {
	t.Helper()
	rows := fams.Snapshot(true)
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
	table, c := testTable()
	names := []string{"c10", "c9", "c1", "b", "c2", "a-very-long-name", "c100", `q"uote\`, "ünï", "z"}
	for k, name := range names {
		table.update(name, fmt.Sprint("loc-", k%3), func(r *gaugeRow) {
			r.put(c.single, float64(k))
			if k%2 == 0 {
				r.put(c.other, 1)
			}
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
	if got := table.Names(); fmt.Sprint(got) != "[test_other test_phase_seconds test_single]" {
		t.Errorf("names %v, want the gauges' sorted", got)
	}
	for _, part := range []int{1, 2, 3, 7, len(names)} {
		if got := familiesText(t, table, part); got != want {
			t.Errorf("parts of %d:\n%s\nwant:\n%s", part, got, want)
		}
	}
	// not taken in turn: every family of one range is made, and then they are encoded
	rows := table.Snapshot(false)
	var held []*dto.MetricFamily
	for f := range table.Names() {
		if mf := rows.Family(f, 0, rows.Len()); len(mf.Metric) > 0 {
			held = append(held, mf)
		}
	}
	var together strings.Builder
	for _, mf := range held {
		if _, err := expfmt.MetricFamilyToText(&together, mf); err != nil {
			t.Fatal(err)
		}
	}
	if got := together.String(); got != want {
		t.Errorf("families of one range held together:\n%s\nwant:\n%s", got, want)
	}
	if got := familiesText(t, (&gaugeTable{}), 1); got != "" {
		t.Errorf("an empty table: %q", got)
	}
}

// The gauges several kinds set are one table: each kind writes its checks' rows, a run
// that measured nothing clears what it did not measure, and a forgotten check's row goes.
func TestSharedGauges(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewKindMetrics(reg)
	for _, r := range []*Result{
		{Check: "web", Kind: configs.KindHTTP, Location: "eu", Vars: map[string]any{"status": 200, "dns_ms": 12.0, "cert_expiry_timestamp": 2e9}},
		{Check: "plain", Kind: configs.KindHTTP, Location: "eu", Vars: map[string]any{"status": 200, "dns_ms": 0.0}},
		{Check: "down", Kind: configs.KindHTTP, Location: "eu", Vars: map[string]any{"status": 200, "dns_ms": 5.0, "cert_expiry_timestamp": 2e9}},
		{Check: "down", Kind: configs.KindHTTP, Location: "eu", Vars: map[string]any{"error": "refused"}}, // no answer: nothing measured
		{Check: "cert", Kind: configs.KindTLS, Location: "us", Vars: map[string]any{"cert_expiry_timestamp": 1.9e9}},
		{Check: "smtp", Kind: configs.KindTCP, Location: "us", Vars: map[string]any{"cert_expiry_timestamp": 1.8e9}},
		{Check: "smtp", Kind: configs.KindTCP, Location: "us", Vars: map[string]any{}}, // no certificate this time
		{Check: "ns", Kind: configs.KindDNS, Location: "us", Vars: map[string]any{"lookup_ms": 250.0}},
		{Check: "gone", Kind: configs.KindTLS, Location: "us", Vars: map[string]any{"cert_expiry_timestamp": 1.7e9}},
	} {
		m.Observe(r)
	}
	m.Forget("gone", configs.KindTLS)
	want := `# HELP probe_dns_lookup_time_seconds How long resolving the target's name took in the last run; 0 on a reused connection.
# TYPE probe_dns_lookup_time_seconds gauge
probe_dns_lookup_time_seconds{check="ns",location="us"} 0.25
probe_dns_lookup_time_seconds{check="plain",location="eu"} 0
probe_dns_lookup_time_seconds{check="web",location="eu"} 0.012
# HELP probe_ssl_earliest_cert_expiry When the earliest-expiring certificate of the chain the last answer came with expires, in Unix seconds.
# TYPE probe_ssl_earliest_cert_expiry gauge
probe_ssl_earliest_cert_expiry{check="cert",location="us"} 1.9e+09
probe_ssl_earliest_cert_expiry{check="web",location="eu"} 2e+09
`
	for _, part := range []int{1, 2, 5} {
		if got := familiesText(t, m.shared, part); got != want {
			t.Errorf("parts of %d:\n%s\nwant:\n%s", part, got, want)
		}
	}
	if got := gatheredText(t, reg, func(name string) bool {
		return name == "probe_ssl_earliest_cert_expiry" || name == "probe_dns_lookup_time_seconds"
	}); got != "" {
		t.Errorf("the registry gathers the shared gauges too:\n%s", got)
	}
	if fams := m.Families(); fams[len(fams)-1] != Families(m.shared) {
		t.Errorf("the kinds' families do not end with the shared gauges: %v", fams)
	}
}

// A scrape copies the rows a part at a time: a run that ends while it is being sent does
// not wait for it, does not change a part already made, and is in the parts made after it.
func TestGaugeTableUpdateDuringScrape(t *testing.T) {
	table, c := testTable()
	for i := range 3 {
		table.update(fmt.Sprint("c", i), "eu", func(r *gaugeRow) { r.put(c.single, 1) })
	}
	rows := table.Snapshot(false)
	f := slices.Index(table.Names(), "test_single")
	first := rows.Family(f, 0, 2)
	updated := make(chan struct{})
	go func() {
		table.update("c1", "eu", func(r *gaugeRow) { r.put(c.single, 2) })
		table.update("c2", "eu", func(r *gaugeRow) { r.put(c.single, 3) })
		table.DeletePartialMatch(prometheus.Labels{"check": "c0"})
		close(updated)
	}()
	select {
	case <-updated:
	case <-time.After(time.Minute): // a deadlock, not a slow machine
		t.Fatal("an update waited for a scrape to finish sending")
	}
	if got := first.Metric[1].GetGauge().GetValue(); len(first.Metric) != 2 || got != 1 {
		t.Errorf("a part already made changed: %d metrics, c1 = %v, want 2 and 1", len(first.Metric), got)
	}
	rest := rows.Family(f, 2, 3)
	if got := rest.Metric[0].GetGauge().GetValue(); got != 3 {
		t.Errorf("a part made after the update: c2 = %v, want 3", got)
	}
	if again := rows.Family(f, 0, 2); len(again.Metric) != 1 || again.Metric[0].GetLabel()[0].GetValue() != "c1" {
		t.Errorf("a part made after c0 was deleted: %v, want c1 alone", again.Metric)
	}
	if got := familiesText(t, table, 3); !strings.Contains(got, `test_single{check="c1",location="eu"} 2`) {
		t.Errorf("the next scrape lacks the update:\n%s", got)
	}
}

// snapshot copies every row, sorted by check, as one part.
func (t *gaugeTable) snapshot() []tableRow {
	names := t.names()
	return t.copyRows(names, nil, make([]float64, 0, len(names)*len(t.cols)))
}
