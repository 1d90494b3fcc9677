package agent

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/vigil-monitor/vigil/checks"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// textFormats are the two formats textWriter writes, as the handler hands them to expfmt.
var textFormats = []struct {
	om     bool
	format expfmt.Format
}{
	{false, expfmt.NewFormat(expfmt.TypeTextPlain).WithEscapingScheme(model.NoEscaping)},
	{true, expfmt.NewFormat(expfmt.TypeOpenMetrics).WithEscapingScheme(model.NoEscaping)},
}

// sameAsExpfmt checks what tw writes of mf, with its header and without, against what
// expfmt writes; it reports whether tw took mf at all.
func sameAsExpfmt(t *testing.T, om bool, format expfmt.Format, mf *dto.MetricFamily) bool {
	t.Helper()
	tw := &textWriter{om: om}
	if !tw.plain(mf) {
		return false
	}
	var want bytes.Buffer
	if err := expfmt.NewEncoder(&want, format).Encode(mf); err != nil {
		t.Fatalf("textWriter took a family expfmt refuses (%v): %v", err, mf)
	}
	for _, header := range []bool{true, false} {
		var got bytes.Buffer
		out := bufio.NewWriter(&got)
		if err := tw.write(out, mf, header); err != nil {
			t.Fatal(err)
		}
		_ = out.Flush()
		w := want.Bytes()
		for !header && bytes.HasPrefix(w, []byte("# ")) {
			w = w[bytes.IndexByte(w, '\n')+1:]
		}
		if !bytes.Equal(got.Bytes(), w) {
			i := firstDiff(got.Bytes(), w)
			t.Fatalf("OpenMetrics %v, header %v: first difference at %d:\n%q\nwant:\n%q\nfamily: %v", om, header, i, around(got.Bytes(), i), around(w, i), mf)
		}
	}
	return true
}

// fuzzFamily makes a family of typ (gauge, counter, histogram, summary, untyped, gauge
// histogram) from the
// fuzzer's values; flags add a HELP, exemplars, their timestamps, a +Inf bucket, the
// metrics' timestamps and float counts.
func fuzzFamily(typ uint8, name, help, label, value string, v float64, n uint64, bound float64, exSecs int64, exNanos int32, ts int64, flags uint8) *dto.MetricFamily {
	types := [...]dto.MetricType{dto.MetricType_GAUGE, dto.MetricType_COUNTER, dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY, dto.MetricType_UNTYPED, dto.MetricType_GAUGE_HISTOGRAM}
	mf := &dto.MetricFamily{Name: proto.String(name), Type: types[int(typ)%len(types)].Enum()}
	if flags&1 != 0 {
		mf.Help = proto.String(help)
	}
	var ex *dto.Exemplar
	if flags&2 != 0 {
		ex = &dto.Exemplar{Label: []*dto.LabelPair{{Name: proto.String("trace_id"), Value: proto.String(value)}}, Value: proto.Float64(v)}
		if flags&4 != 0 {
			ex.Timestamp = &timestamppb.Timestamp{Seconds: exSecs, Nanos: exNanos}
		}
	}
	for i, labels := range [][]*dto.LabelPair{
		{{Name: proto.String(label), Value: proto.String(value)}, {Name: proto.String("check"), Value: proto.String(help)}},
		nil,
	} {
		m := &dto.Metric{Label: labels}
		if flags&16 != 0 {
			m.TimestampMs = proto.Int64(ts + int64(i))
		}
		switch mf.GetType() {
		case dto.MetricType_GAUGE:
			m.Gauge = &dto.Gauge{Value: proto.Float64(v)}
		case dto.MetricType_COUNTER:
			m.Counter = &dto.Counter{Value: proto.Float64(v), Exemplar: ex}
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			m.Histogram = &dto.Histogram{SampleCount: proto.Uint64(n + 2), SampleSum: proto.Float64(v), Bucket: []*dto.Bucket{
				{UpperBound: proto.Float64(bound), CumulativeCount: proto.Uint64(n), Exemplar: ex},
				{UpperBound: proto.Float64(bound * 2), CumulativeCount: proto.Uint64(n + 1)},
			}}
			if flags&8 != 0 {
				m.Histogram.Bucket = append(m.Histogram.Bucket, &dto.Bucket{UpperBound: proto.Float64(math.Inf(1)), CumulativeCount: proto.Uint64(n + 2), Exemplar: ex})
			}
			if flags&32 != 0 {
				m.Histogram.Bucket[0].CumulativeCountFloat = proto.Float64(float64(n) + .5)
			}
		case dto.MetricType_SUMMARY:
			m.Summary = &dto.Summary{SampleCount: proto.Uint64(n), SampleSum: proto.Float64(v)}
		default:
			m.Untyped = &dto.Untyped{Value: proto.Float64(v)}
		}
		mf.Metric = append(mf.Metric, m)
	}
	return mf
}

// FuzzTextWriter holds textWriter to expfmt byte for byte in both formats, for every
// family it takes; a family it does not take is expfmt's to write.
func FuzzTextWriter(f *testing.F) {
	f.Add(uint8(0), "probe_success", "Whether it passed.", "location", "eu-west", 1.0, uint64(3), 0.25, int64(1_700_000_000), int32(5e8), int64(1_700_000_000_123), uint8(1))
	f.Add(uint8(1), "vigil_check_runs_total", "Runs \\ by\nresult \"quoted\".", "result", "pass", 1e6, uint64(0), 1.0, int64(0), int32(0), int64(-5), uint8(1|2|4|16))
	f.Add(uint8(1), "vigil_restarts", "A counter without its _total.", "le", "a\\b\"c\nd", math.Copysign(0, -1), uint64(0), -1.0, int64(0), int32(0), int64(0), uint8(0))
	f.Add(uint8(2), "vigil_check_duration_seconds", "Duration of check runs.", "kind", "http", 0.123456789, uint64(1_000_000), 0.005, int64(1_764_800_000), int32(999_999_999), int64(0), uint8(1|2|4|8))
	f.Add(uint8(2), "h", "", "check", "\xff\xfe", math.NaN(), uint64(math.MaxUint64-2), math.Inf(-1), int64(-62135596800), int32(0), int64(0), uint8(2|4|16))
	f.Add(uint8(0), "a:b", "colons", "l:colon", "x", math.Inf(1), uint64(1), 1e-300, int64(0), int32(0), int64(0), uint8(0))
	f.Add(uint8(0), "needs.quotes", "", "ok", "x", 1.5, uint64(1), 1.0, int64(0), int32(0), int64(0), uint8(0))
	f.Add(uint8(2), "h", "", "ok", "x", 1.5, uint64(1), 1.0, int64(0), int32(0), int64(0), uint8(32))
	f.Add(uint8(3), "s", "", "ok", "x", 1.5, uint64(1), 1.0, int64(0), int32(0), int64(0), uint8(0))
	f.Add(uint8(1), "_total", "OpenMetrics names the family \"\"", "ok", "x", 1.5, uint64(1), 1.0, int64(0), int32(0), int64(0), uint8(1))
	f.Add(uint8(2), "h", "", "ok", "x", 1.5, uint64(1), 1.0, int64(1), int32(-1), int64(0), uint8(2|4))
	f.Fuzz(func(t *testing.T, typ uint8, name, help, label, value string, v float64, n uint64, bound float64, exSecs int64, exNanos int32, ts int64, flags uint8) {
		mf := fuzzFamily(typ, name, help, label, value, v, n, bound, exSecs, exNanos, ts, flags)
		for _, tf := range textFormats {
			sameAsExpfmt(t, tf.om, tf.format, mf)
		}
	})
}

// TestTextWriterTakesWhatItCan: the families kept beside the registry are written by
// textWriter (FuzzTextWriter's seeds of those kinds are taken, and match expfmt), and
// what it cannot write as expfmt would is left to expfmt.
func TestTextWriterTakesWhatItCan(t *testing.T) {
	for _, c := range []struct {
		what  string
		mf    *dto.MetricFamily
		plain bool
	}{
		{"a gauge", fuzzFamily(0, "probe_success", "h", "location", "eu", 1, 0, 0, 0, 0, 0, 1), true},
		{"a counter with an exemplar and timestamps", fuzzFamily(1, "vigil_check_runs_total", "h", "result", "pass", 3, 0, 0, 1_700_000_000, 1, 1_700_000_000_000, 1|2|4|16), true},
		{"a histogram with exemplars", fuzzFamily(2, "vigil_check_duration_seconds", "h", "kind", "http", .3, 7, .25, 1_700_000_000, 0, 0, 1|2|4|8), true},
		{"a summary", fuzzFamily(3, "s", "", "l", "v", 1, 1, 1, 0, 0, 0, 0), false},
		{"an untyped family", fuzzFamily(4, "u", "", "l", "v", 1, 1, 1, 0, 0, 0, 0), false},
		{"a gauge histogram", fuzzFamily(5, "gh", "", "l", "v", 1, 1, 1, 0, 0, 0, 0), false},
		{"a name to quote", fuzzFamily(0, "needs.quotes", "", "l", "v", 1, 1, 1, 0, 0, 0, 0), false},
		{"a label name to quote", fuzzFamily(0, "g", "", "needs-quotes", "v", 1, 1, 1, 0, 0, 0, 0), false},
		{"an empty label name", fuzzFamily(0, "g", "", "", "v", 1, 1, 1, 0, 0, 0, 0), false},
		{"a float histogram", fuzzFamily(2, "h", "", "l", "v", 1, 1, 1, 0, 0, 0, 32), false},
		{"an exemplar's timestamp out of range", fuzzFamily(2, "h", "", "l", "v", 1, 1, 1, 1, -1, 0, 2|4), false},
	} {
		for _, tf := range textFormats {
			took := sameAsExpfmt(t, tf.om, tf.format, c.mf)
			if want := c.plain || !tf.om && c.what == "an exemplar's timestamp out of range"; took != want {
				t.Errorf("%s, OpenMetrics %v: taken %v, want %v", c.what, tf.om, took, want)
			}
		}
	}
}

// TestTextWriterAllocatesNothing: once its line has grown, writing a family of 256
// checks' histograms with exemplars allocates nothing (expfmt: a string per sample).
func TestTextWriterAllocatesNothing(t *testing.T) {
	recs := seriesFixture(256)
	rows := recs.Snapshot(true)
	mf := rows.Family(famHistogram, 0, rows.Len())
	exemplars := 0
	for _, m := range mf.Metric {
		for _, b := range m.Histogram.Bucket {
			if b.Exemplar != nil {
				exemplars++
			}
		}
	}
	if len(mf.Metric) < 200 || exemplars < 100 {
		t.Fatalf("the fixture has %d histograms, %d exemplars", len(mf.Metric), exemplars)
	}
	for _, tf := range textFormats {
		tw := &textWriter{om: tf.om}
		out := bufio.NewWriter(io.Discard)
		if !tw.plain(mf) {
			t.Fatal("the histogram family is not taken")
		}
		if n := testing.AllocsPerRun(5, func() {
			if !tw.plain(mf) || tw.write(out, mf, true) != nil {
				t.Fatal("not written")
			}
		}); n != 0 {
			t.Errorf("OpenMetrics %v: %v allocations a family", tf.om, n)
		}
	}
}

// oddFamilies are families kept beside the registry of kinds textWriter does not take (a
// summary, an untyped family), a row per check: what a part of such a kind goes through.
type oddFamilies struct{ n int }

func (o oddFamilies) Names() []string                 { return []string{"odd_summary_seconds", "odd_untyped"} }
func (o oddFamilies) Snapshot(bool) checks.FamilyRows { return o }
func (o oddFamilies) Len() int                        { return o.n }
func (o oddFamilies) Family(f, from, to int) *dto.MetricFamily {
	mf := fuzzFamily(uint8(3+f), o.Names()[f], "An odd one \\ out.", "check", "", 0, 0, 0, 0, 0, 0, 1)
	mf.Metric = nil
	for i := from; i < to; i++ {
		m := &dto.Metric{Label: []*dto.LabelPair{{Name: proto.String("check"), Value: proto.String(fmt.Sprintf("c-%03d \"%d\"", i, i))}}}
		if f == 0 {
			m.Summary = &dto.Summary{SampleCount: proto.Uint64(uint64(i)), SampleSum: proto.Float64(float64(i) / 7),
				Quantile: []*dto.Quantile{{Quantile: proto.Float64(.5), Value: proto.Float64(float64(i) / 10)}}}
		} else {
			m.Untyped = &dto.Untyped{Value: proto.Float64(float64(i))}
		}
		mf.Metric = append(mf.Metric, m)
	}
	return mf
}

// A family part textWriter does not take is written by expfmt, its HELP and TYPE lines
// from the first part only: the scrape is the one promhttp makes of the families whole.
func TestPartsLeftToExpfmt(t *testing.T) {
	odd := oddFamilies{n: 3*scrapePart + 5}
	whole := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		return []*dto.MetricFamily{odd.Family(0, 0, odd.n), odd.Family(1, 0, odd.n)}, nil
	})
	reg := prometheus.NewRegistry()
	got := metricsHandler(reg, newOwnFamilies(odd))
	want := promhttp.HandlerFor(prometheus.Gatherers{whole, reg}, promhttp.HandlerOpts{EnableOpenMetrics: true}) // reg: the errors counter metricsHandler registers
	for _, accept := range []string{"text/plain;version=0.0.4", "application/openmetrics-text;version=1.0.0"} {
		_, wb := scrapeWith(t, want, accept, "", "")
		_, gb := scrapeWith(t, got, accept, "", "")
		if !bytes.Equal(gb, wb) {
			i := firstDiff(gb, wb)
			t.Errorf("%s: %d bytes, promhttp's %d; first difference at %d:\n%q\nwant:\n%q", accept, len(gb), len(wb), i, around(gb, i), around(wb, i))
		}
		if n := bytes.Count(wb, []byte("# TYPE odd_")); n != 2 || !bytes.Contains(wb, []byte(fmt.Sprintf(`c-%03d \"%d\"`, odd.n-1, odd.n-1))) {
			t.Errorf("%s: the reference has %d TYPE lines, or not every check", accept, n)
		}
	}
}
