package agent

// GET /metrics. In the text formats (Prometheus's and OpenMetrics, what Prometheus asks
// for) the per-check families are written a few hundred checks at a time, each part made
// into protobuf objects, encoded by expfmt and dropped before the next: a scrape holds one
// part, not 310,000 series' objects at once (at 10,000 checks that was 60-100 MB, and Go's
// heap target doubles what is live, so a scrape took the agent from about 120 to 290 MiB).
// The registry's own families are encoded as promhttp encodes them, merged in by name. The
// protobuf format, a name[] filter and a registry error go to promhttp with every family.
// A test holds headers and body to promhttp's, byte for byte.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/vigil-monitor/vigil/checks"
)

// gzipWriters keeps gzip writers between scrapes: each holds about a megabyte of state.
// They compress at gzip's fastest level: at its default (promhttp's) the compression was
// half of a scrape's CPU, and the fastest halves that for a body some 18% larger
// (BenchmarkScrape10000: 340 to 190 ms, 1,208 to 1,432 KiB, for 10,000 checks).
var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // a valid level: no error
	return w
}}

// scrapePart is how many checks' series of one family are encoded at a time.
const scrapePart = 256

func metricsHandler(reg *prometheus.Registry, own *ownFamilies) http.Handler {
	whole := promhttp.HandlerForTransactional(seriesGatherer{reg, own}, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultOpenMetricsAcceptedFormats()...)
		if t := format.FormatType(); t != expfmt.TypeTextPlain && t != expfmt.TypeOpenMetrics || r.URL.Query().Has("name[]") {
			whole.ServeHTTP(w, r)
			return
		}
		mfs, err := reg.Gather()
		for _, mf := range mfs {
			if own.has(mf.GetName()) {
				err = errDuplicateFamily(mf.GetName())
			}
		}
		if err != nil {
			whole.ServeHTTP(w, r) // it reports the error
			return
		}
		w.Header().Add("Vary", "Accept")
		w.Header().Add("Vary", "Accept-Encoding")
		w.Header().Set("Content-Type", string(format))
		out := bufio.NewWriterSize(w, 32<<10)
		if acceptsGzip(r) {
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzipWriters.Get().(*gzip.Writer)
			gz.Reset(w)
			defer func() {
				_ = gz.Close()
				gzipWriters.Put(gz)
			}()
			out.Reset(gz)
		}
		defer out.Flush() // before the gzip stream closes
		enc := expfmt.NewEncoder(out, format)
		// The own families' names and label names are all legacy ones (newOwnFamilies and
		// the gauge tables hold them to it), which no escaping scheme changes: encoded
		// unescaped, they read the same, without expfmt's copy of every part's metric list.
		// The response's Content-Type stays the negotiated format.
		partFormat := format.WithEscapingScheme(model.NoEscaping)
		rows := own.snapshot()
		var part bytes.Buffer
		f := 0
		for i := 0; i <= len(mfs); i++ {
			for ; f < len(own.refs) && (i == len(mfs) || own.refs[f].name < mfs[i].GetName()); f++ {
				ref := own.refs[f]
				if err := writeFamily(out, &part, partFormat, rows[ref.source], ref.family); err != nil {
					return // the client went away
				}
			}
			if i < len(mfs) {
				if err := enc.Encode(mfs[i]); err != nil {
					return
				}
			}
		}
		if c, ok := enc.(expfmt.Closer); ok {
			_ = c.Close() // OpenMetrics' "# EOF"
		}
	})
}

// writeFamily writes family f of rows, a part at a time: each part encoded on its own,
// the family's HELP and TYPE lines kept from the first part only.
func writeFamily(out *bufio.Writer, part *bytes.Buffer, format expfmt.Format, rows checks.FamilyRows, f int) error {
	first := true
	for start := 0; start < rows.Len(); start += scrapePart {
		mf := rows.Family(f, start, min(start+scrapePart, rows.Len()))
		if len(mf.Metric) == 0 {
			continue
		}
		part.Reset()
		if err := expfmt.NewEncoder(part, format).Encode(mf); err != nil {
			return err
		}
		b := part.Bytes()
		for !first && bytes.HasPrefix(b, []byte("# ")) { // HELP, TYPE (and UNIT): a sample never starts with #
			b = b[bytes.IndexByte(b, '\n')+1:]
		}
		first = false
		if _, err := out.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// acceptsGzip chooses the encoding as promhttp does between identity and gzip: the offer
// with the highest q in Accept-Encoding ("*" matches either, values compared as written),
// identity on a tie or when nothing is acceptable. It reads the header with the same
// grammar: a value is a token (slashes allowed); a parameter other than q, or a q that is
// not 0, 1 or 0.ddd or 1.ddd, ends that header line; so does anything but a comma after a
// value. FuzzAcceptsGzip holds it to promhttp's choice.
func acceptsGzip(r *http.Request) bool {
	best, bestQ := "identity", -1.0
	specs := acceptSpecs(r.Header.Values("Accept-Encoding"))
	for _, offer := range []string{"identity", "gzip"} {
		for _, spec := range specs {
			if spec.q > bestQ && (spec.value == "*" || spec.value == offer) {
				best, bestQ = offer, spec.q
			}
		}
	}
	return best == "gzip" && bestQ != 0
}

type acceptSpec struct {
	value string
	q     float64
}

func acceptSpecs(lines []string) []acceptSpec {
	var specs []acceptSpec
	for _, s := range lines {
		for {
			n := 0
			for n < len(s) && (isToken(s[n]) || s[n] == '/') {
				n++
			}
			spec := acceptSpec{value: s[:n], q: 1}
			if spec.value == "" {
				break
			}
			s = trimSpace(s[n:])
			if strings.HasPrefix(s, ";") {
				s = trimSpace(s[1:])
				if !strings.HasPrefix(s, "q=") {
					break
				}
				if spec.q, s = quality(s[2:]); spec.q < 0 {
					break
				}
			}
			specs = append(specs, spec)
			s = trimSpace(s)
			if !strings.HasPrefix(s, ",") {
				break
			}
			s = trimSpace(s[1:])
		}
	}
	return specs
}

// isToken is HTTP's token character: ASCII, not a control character or a separator.
func isToken(c byte) bool {
	return c > 31 && c < 127 && !strings.ContainsRune(" \t\"(),/:;<=>?@[]\\{}", rune(c))
}

func trimSpace(s string) string { return strings.TrimLeft(s, " \t\r\n") }

// quality reads a q value: 0 or 1, then optionally a point and digits; -1 when it is not one.
func quality(s string) (float64, string) {
	if s == "" || s[0] != '0' && s[0] != '1' {
		return -1, ""
	}
	q := float64(s[0] - '0')
	s = s[1:]
	if !strings.HasPrefix(s, ".") {
		return q, s
	}
	s = s[1:]
	n, d, i := 0, 1, 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int(s[i]-'0')
		d *= 10
	}
	return q + float64(n)/float64(d), s[i:]
}
