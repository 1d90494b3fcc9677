package agent

// textWriter writes the families kept beside the registry in Prometheus's text format or
// OpenMetrics, byte for byte as expfmt writes them, for the kinds of family those are:
// gauges, counters and classic histograms whose names and label names need no quotes.
// expfmt joins a sample's name and suffix into a new string for every sample (each bucket,
// sum and count) and checks every name it writes rune by rune: at 10,000 checks that was
// 5.9 MB of a scrape's allocations and more than half its CPU. A family of another kind
// (plain reports which) is left to expfmt. FuzzTextWriter holds both formats to expfmt's.

import (
	"bufio"
	"bytes"
	"math"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
)

type textWriter struct {
	om    bool     // OpenMetrics, not Prometheus's text format
	line  []byte   // the line being written, reused
	names []string // label names found to need no quotes
}

// plain reports whether w writes mf as expfmt would. Anything else (another type, a name
// expfmt would quote, a float histogram, an exemplar's timestamp expfmt refuses, a nil
// where expfmt expects a value) goes to expfmt, which writes it or says what is wrong.
func (w *textWriter) plain(mf *dto.MetricFamily) bool {
	typ := mf.GetType()
	if !model.LegacyValidation.IsValidMetricName(mf.GetName()) || !model.LegacyValidation.IsValidMetricName(w.familyName(mf)) {
		return false // a counter named _total is the family "" in OpenMetrics, which expfmt quotes
	}
	for _, m := range mf.Metric {
		if m == nil || !w.plainLabels(m.Label) {
			return false
		}
		switch typ {
		case dto.MetricType_GAUGE:
			if m.Gauge == nil {
				return false
			}
		case dto.MetricType_COUNTER:
			if m.Counter == nil || w.om && !w.plainExemplar(m.Counter.Exemplar) {
				return false
			}
		case dto.MetricType_HISTOGRAM:
			h := m.Histogram
			if h == nil || h.GetSampleCountFloat() != 0 {
				return false
			}
			for _, b := range h.Bucket {
				if b == nil || b.GetCumulativeCountFloat() != 0 || w.om && !w.plainExemplar(b.Exemplar) {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}

func (w *textWriter) plainLabels(pairs []*dto.LabelPair) bool {
	for _, p := range pairs {
		if p == nil || !w.plainName(p.GetName()) {
			return false
		}
	}
	return true
}

// plainName reports whether a label name is written without quotes; the few names of a
// family are remembered, compared rather than checked rune by rune again.
func (w *textWriter) plainName(name string) bool {
	for _, n := range w.names {
		if n == name {
			return true
		}
	}
	if !model.LegacyValidation.IsValidMetricName(name) {
		return false
	}
	w.names = append(w.names, name)
	return true
}

func (w *textWriter) plainExemplar(e *dto.Exemplar) bool {
	return e == nil || len(e.Label) == 0 || w.plainLabels(e.Label) && (e.Timestamp == nil || e.Timestamp.CheckValid() == nil)
}

// write writes mf, which plain accepted; its HELP and TYPE lines only if header.
func (w *textWriter) write(out *bufio.Writer, mf *dto.MetricFamily, header bool) error {
	name, typ := mf.GetName(), mf.GetType()
	if header {
		if err := w.flush(out, w.header(w.line[:0], mf)); err != nil {
			return err
		}
	}
	for _, m := range mf.Metric {
		switch typ {
		case dto.MetricType_GAUGE:
			b := w.value(w.sample(w.line[:0], name, "", m.Label, false, 0), m.Gauge.GetValue())
			if err := w.flush(out, w.end(b, m, nil)); err != nil {
				return err
			}
		case dto.MetricType_COUNTER:
			b := w.value(w.sample(w.line[:0], name, "", m.Label, false, 0), m.Counter.GetValue())
			if err := w.flush(out, w.end(b, m, m.Counter.Exemplar)); err != nil {
				return err
			}
		case dto.MetricType_HISTOGRAM:
			if err := w.histogram(out, name, m); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *textWriter) histogram(out *bufio.Writer, name string, m *dto.Metric) error {
	h := m.Histogram
	inf := false
	for _, bucket := range h.Bucket {
		b := w.count(w.sample(w.line[:0], name, "_bucket", m.Label, true, bucket.GetUpperBound()), bucket.GetCumulativeCount())
		if err := w.flush(out, w.end(b, m, bucket.Exemplar)); err != nil {
			return err
		}
		inf = inf || math.IsInf(bucket.GetUpperBound(), 1)
	}
	if !inf {
		b := w.count(w.sample(w.line[:0], name, "_bucket", m.Label, true, math.Inf(1)), h.GetSampleCount())
		if err := w.flush(out, w.end(b, m, nil)); err != nil {
			return err
		}
	}
	b := w.value(w.sample(w.line[:0], name, "_sum", m.Label, false, 0), h.GetSampleSum())
	if err := w.flush(out, w.end(b, m, nil)); err != nil {
		return err
	}
	return w.flush(out, w.end(w.count(w.sample(w.line[:0], name, "_count", m.Label, false, 0), h.GetSampleCount()), m, nil))
}

// flush writes a line and keeps its memory for the next.
func (w *textWriter) flush(out *bufio.Writer, b []byte) error {
	w.line = b
	_, err := out.Write(b)
	return err
}

// header appends the HELP and TYPE lines. OpenMetrics names a counter's family without
// its _total, and calls a counter without one unknown.
func (w *textWriter) header(b []byte, mf *dto.MetricFamily) []byte {
	name, typ := w.familyName(mf), "counter"
	switch mf.GetType() {
	case dto.MetricType_GAUGE:
		typ = "gauge"
	case dto.MetricType_HISTOGRAM:
		typ = "histogram"
	case dto.MetricType_COUNTER:
		if w.om && !strings.HasSuffix(mf.GetName(), "_total") {
			typ = "unknown"
		}
	}
	if mf.Help != nil {
		b = append(b, "# HELP "...)
		b = append(b, name...)
		b = append(b, ' ')
		b = appendEscaped(b, mf.GetHelp(), w.om)
		b = append(b, '\n')
	}
	b = append(b, "# TYPE "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, typ...)
	return append(b, '\n')
}

// familyName is the name the HELP and TYPE lines give: a counter's without its _total in
// OpenMetrics.
func (w *textWriter) familyName(mf *dto.MetricFamily) string {
	if w.om && mf.GetType() == dto.MetricType_COUNTER {
		if n, ok := strings.CutSuffix(mf.GetName(), "_total"); ok {
			return n
		}
	}
	return mf.GetName()
}

// sample appends a sample's name and labels, le last if it has one.
func (w *textWriter) sample(b []byte, name, suffix string, labels []*dto.LabelPair, hasLe bool, le float64) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	if len(labels) == 0 && !hasLe {
		return b
	}
	b = appendLabels(b, labels)
	if hasLe {
		b = b[:len(b)-1] // the closing brace
		if len(labels) > 0 {
			b = append(b, ',')
		}
		b = append(b, `le="`...)
		b = w.float(b, le)
		b = append(b, `"}`...)
	}
	return b
}

// appendLabels appends {name="value",...}; {} for none.
func appendLabels(b []byte, labels []*dto.LabelPair) []byte {
	b = append(b, '{')
	for i, p := range labels {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, p.GetName()...)
		b = append(b, `="`...)
		b = appendEscaped(b, p.GetValue(), true)
		b = append(b, '"')
	}
	return append(b, '}')
}

// value appends a sample's float value.
func (w *textWriter) value(b []byte, v float64) []byte { return w.float(append(b, ' '), v) }

// count appends a sample's count: an integer in OpenMetrics, a float in the text format.
func (w *textWriter) count(b []byte, n uint64) []byte {
	if w.om {
		return strconv.AppendUint(append(b, ' '), n, 10)
	}
	return w.value(b, float64(n))
}

// end appends the metric's timestamp, the exemplar (OpenMetrics only) and the newline.
func (w *textWriter) end(b []byte, m *dto.Metric, e *dto.Exemplar) []byte {
	if m.TimestampMs != nil {
		if w.om {
			b = w.float(append(b, ' '), float64(*m.TimestampMs)/1000)
		} else {
			b = strconv.AppendInt(append(b, ' '), *m.TimestampMs, 10)
		}
	}
	if w.om && e != nil && len(e.Label) > 0 {
		b = appendLabels(append(b, " # "...), e.Label)
		b = w.float(append(b, ' '), e.GetValue())
		if e.Timestamp != nil {
			b = w.float(append(b, ' '), float64(e.Timestamp.AsTime().UnixNano())/1e9)
		}
	}
	return append(b, '\n')
}

// float appends f as the format writes a float: shortest form, +Inf, -Inf and NaN by name;
// in OpenMetrics with a ".0" when it would read as an integer.
func (w *textWriter) float(b []byte, f float64) []byte {
	start := len(b)
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	case f == 0: // -0 too
		b = append(b, '0')
	default:
		b = strconv.AppendFloat(b, f, 'g', -1, 64)
	}
	if w.om && !bytes.ContainsAny(b[start:], "e.") {
		b = append(b, '.', '0')
	}
	return b
}

// appendEscaped appends s with backslashes and newlines escaped, and double quotes if
// quote, as expfmt escapes label values (and OpenMetrics' HELP text).
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}
