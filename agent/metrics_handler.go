package agent

// GET /metrics. In the text formats (Prometheus's and OpenMetrics, what Prometheus asks
// for) the per-check families are written a few hundred checks at a time, each part made
// into protobuf objects, written out by textWriter (by expfmt, a part of a kind textWriter
// does not take) and dropped before the next: a scrape holds one part, not 310,000
// series' objects at once (at 10,000 checks that was 60-100 MB, and Go's heap target
// doubles what is live, so a scrape took the agent from about 120 to 290 MiB).
// The registry's own families are encoded as promhttp encodes them, merged in by name. The
// protobuf format, a name[] filter and a registry error go to promhttp with every family.
// A test holds headers and body to promhttp's, byte for byte.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/vigil-monitor/vigil/checks"
)

// scrapePart is how many checks' series of one family are encoded at a time. A part's
// objects are made in one array, a few KB a check, allocated at each scrape; with
// textWriter a part costs little more than its lines, so parts are small: at 1,000 checks
// a scrape allocated 3.0 MB with parts of 256, 1.5 MB with 64 (BenchmarkScrape, when it
// still kept the body in a test recorder), in the same time.
const scrapePart = 64

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
		rows := own.snapshot(true) // each part is encoded before the next is made
		var part bytes.Buffer
		tw := textWriter{om: format.FormatType() == expfmt.TypeOpenMetrics}
		f := 0
		for i := 0; i <= len(mfs); i++ {
			for ; f < len(own.refs) && (i == len(mfs) || own.refs[f].name < mfs[i].GetName()); f++ {
				ref := own.refs[f]
				if err := writeFamily(out, &tw, &part, partFormat, rows[ref.source], ref.family); err != nil {
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
// the family's HELP and TYPE lines from the first part only. A part tw writes as expfmt
// would is written by tw, straight to out; any other by expfmt.
func writeFamily(out *bufio.Writer, tw *textWriter, part *bytes.Buffer, format expfmt.Format, rows checks.FamilyRows, f int) error {
	first := true
	for start := 0; start < rows.Len(); start += scrapePart {
		mf := rows.Family(f, start, min(start+scrapePart, rows.Len()))
		if len(mf.Metric) == 0 {
			continue
		}
		if tw.plain(mf) {
			if err := tw.write(out, mf, first); err != nil {
				return err
			}
			first = false
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
