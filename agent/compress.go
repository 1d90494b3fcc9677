package agent

// Compression of what the agent answers: /metrics (metrics_handler.go) and every other
// answer once it is redacted (redactOutput). The status page of a thousand checks is
// 4.7 MB of HTML, most of it the bars' details written out a thousand times over; a
// browser asks for gzip and gets a small part of that on the wire.
//
// Compressing an answer that holds a secret next to text a stranger can put in the same
// answer lets the stranger guess the secret from the answers' sizes (BREACH). The agent's
// answers hold no secret to guess: the config's secrets are masked in every answer before
// it is compressed (redactOutput), the API token is never written into one, and no page
// carries a session or anti-forgery token.

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"sync"
)

// gzipWriters keeps gzip writers between answers: each holds about a megabyte of state.
// They compress at gzip's fastest level: at its default (promhttp's) the compression was
// half of a scrape's CPU, and the fastest halves that for a body some 18% larger
// (BenchmarkScrape at 10,000 checks: 340 to 190 ms, 1,208 to 1,432 KiB).
var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // a valid level: no error
	return w
}}

// minCompressed is the smallest answer compressed: about one TCP segment. Below it gzip
// saves no round trip and its header and trailer can make the answer larger.
const minCompressed = 1400

// compressibleType reports whether an answer of Content-Type ct is text that gzip
// shrinks: HTML, JSON, SVG, plain text. Images other than SVG are compressed already, an
// octet stream may be, and an answer with no type is left for the client to sniff, which
// it could not do through gzip.
func compressibleType(ct string) bool {
	ct, _, _ = strings.Cut(ct, ";")
	ct = strings.ToLower(strings.TrimSpace(ct))
	switch {
	case strings.HasPrefix(ct, "text/"):
		return true
	case ct == "application/json", strings.HasSuffix(ct, "+json"), strings.HasSuffix(ct, "+xml"),
		ct == "application/xml", ct == "application/javascript", ct == "image/svg+xml":
		return true
	}
	return false
}

// writeAnswer writes a whole answer: gzipped when the client accepts gzip and the answer
// is text of at least minCompressed bytes that no handler has encoded already, as is.
// Every answer of a compressible type says it varies with Accept-Encoding, compressed or
// not, so a cache between the two keeps them apart. The Content-Length is left to the
// server (it counts the bytes written, compressed or not).
func writeAnswer(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	a := answer{w: w, r: r, status: status}
	a.write(body)
	a.close()
}

// answer writes an answer in parts as they come, choosing as writeAnswer does for the
// whole: the parts are held until there are minCompressed bytes of them (or the last), and
// the rest goes on as it is written, through gzip or not.
type answer struct {
	w      http.ResponseWriter
	r      *http.Request
	status int
	held   []byte
	out    io.Writer // once chosen: w, or gz writing to it
	gz     *gzip.Writer
}

func (a *answer) write(p []byte) {
	if a.out == nil {
		if len(a.held)+len(p) < minCompressed {
			a.held = append(a.held, p...)
			return
		}
		a.start(true)
		if len(a.held) > 0 {
			_, _ = a.out.Write(a.held)
			a.held = nil
		}
	}
	_, _ = a.out.Write(p)
}

// close writes what is held and ends the answer.
func (a *answer) close() {
	if a.out == nil {
		a.start(false)
		_, _ = a.out.Write(a.held)
	}
	if a.gz != nil {
		_ = a.gz.Close()
		a.gz.Reset(nil) // hold no answer's writer in the pool
		gzipWriters.Put(a.gz)
		a.gz = nil
	}
}

// start writes the header, the answer compressed when it is long (at least minCompressed
// bytes) compressible text the client accepts gzipped.
func (a *answer) start(long bool) {
	h := a.w.Header()
	h.Del("Content-Length")
	a.out = a.w
	if !compressibleType(h.Get("Content-Type")) || h.Get("Content-Encoding") != "" {
		a.w.WriteHeader(a.status)
		return
	}
	h.Add("Vary", "Accept-Encoding")
	if !long || a.status == http.StatusNoContent || a.status == http.StatusNotModified || !acceptsGzip(a.r) {
		a.w.WriteHeader(a.status)
		return
	}
	h.Set("Content-Encoding", "gzip")
	a.w.WriteHeader(a.status)
	a.gz = gzipWriters.Get().(*gzip.Writer)
	a.gz.Reset(a.w)
	a.out = a.gz
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
