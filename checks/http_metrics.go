package checks

import (
	"strconv"
	"strings"
)

// Instrument implements Instrumented: the http kind's last answer, under
// blackbox_exporter's names, so that dashboards and alert rules written for its http
// module read vigil's checks too (with check and location where blackbox has its target).
// The gauges live in one table, a row per check (see gaugeTable).
func (httpKind) Instrument(in Instruments) *Recorder {
	t := &gaugeTable{}
	status := t.column("probe_http_status_code", "Response HTTP status code of the check's last run; 0 when no answer came.", "", "")
	var phases [5]int
	for i, p := range []string{"resolve", "connect", "tls", "processing", "transfer"} {
		phases[i] = t.column("probe_http_duration_seconds",
			"Duration of the last request by phase (resolve, connect, tls, processing, transfer); connection phases are 0 on a reused connection.", "phase", p)
	}
	contentLength := t.column("probe_http_content_length", "Length of the last response's body as its Content-Length header gave it; -1 when it gave none.", "", "")
	bodyLength := t.column("probe_http_uncompressed_body_length", "Bytes of the last response's body that were read (up to max_body_bytes).", "", "")
	redirects := t.column("probe_http_redirects", "Redirects the last request followed.", "", "")
	ssl := t.column("probe_http_ssl", "Whether the last answer came over TLS (1) or not (0).", "", "")
	version := t.column("probe_http_version", "HTTP version of the last answer (1.1, 2).", "", "")
	t.freeze()
	shared := in.shared // the certificate's expiry and the DNS lookup, which other kinds set too
	return &Recorder{Vecs: []Vec{t}, Families: t, Observe: func(r *Result) {
		code, ok := r.Vars["status"].(int)
		num := func(name string) float64 {
			switch v := r.Vars[name].(type) {
			case float64:
				return v
			case int:
				return float64(v)
			}
			return 0
		}
		if !ok {
			// No answer: no phase or size was measured, and a stale one would mislead.
			t.update(r.Check, r.Location, func(row *gaugeRow) {
				row.set = 0
				row.put(status, 0)
			})
			shared.update(r.Check, r.Location, func(row *gaugeRow) { row.set = 0 })
			return
		}
		at := num("cert_expiry_timestamp")
		t.update(r.Check, r.Location, func(row *gaugeRow) {
			row.put(status, float64(code))
			resolve, connect, handshake := num("dns_ms")/1000, num("connect_ms")/1000, num("tls_ms")/1000
			ttfb, total := num("ttfb_ms")/1000, num("duration_ms")/1000
			for i, s := range [5]float64{resolve, connect, handshake, max(0, ttfb-resolve-connect-handshake), max(0, total-ttfb)} {
				row.put(phases[i], s)
			}
			row.put(contentLength, num("content_length"))
			row.put(bodyLength, num("body_bytes"))
			row.put(redirects, num("redirects"))
			row.put(version, httpVersion(r.Vars["proto"]))
			row.put(ssl, 0)
			if at > 0 {
				row.put(ssl, 1)
			}
		})
		shared.update(r.Check, r.Location, func(row *gaugeRow) {
			row.put(shared.dnsLookup, num("dns_ms")/1000)
			shared.setCertExpiry(row, at)
		})
	}}
}

// sharedGauges is a table of the gauges more than one kind sets (blackbox_exporter names a
// measurement, not a prober): the certificate chain's earliest expiry (http, tls, tcp) and
// the DNS lookup (http, dns). A check's row is written by its own kind; check names are
// unique across kinds.
type sharedGauges struct {
	*gaugeTable
	certExpiry, dnsLookup int
}

func newSharedGauges() *sharedGauges {
	s := &sharedGauges{gaugeTable: &gaugeTable{}}
	s.certExpiry = s.column("probe_ssl_earliest_cert_expiry",
		"When the earliest-expiring certificate of the chain the last answer came with expires, in Unix seconds.", "", "")
	s.dnsLookup = s.column("probe_dns_lookup_time_seconds",
		"How long resolving the target's name took in the last run; 0 on a reused connection.", "", "")
	s.freeze()
	return s
}

// setCertExpiry sets the expiry, or clears it when the run saw no certificate (at 0): an
// old expiry would mislead.
func (s *sharedGauges) setCertExpiry(row *gaugeRow, at float64) {
	if at > 0 {
		row.put(s.certExpiry, at)
	} else {
		row.clear(s.certExpiry)
	}
}

// httpVersion turns "HTTP/1.1" into 1.1 and "HTTP/2.0" into 2; 0 when it cannot.
func httpVersion(proto any) float64 {
	s, _ := proto.(string)
	v, err := strconv.ParseFloat(strings.TrimPrefix(s, "HTTP/"), 64)
	if err != nil {
		return 0
	}
	return v
}

// vecs lists collectors for a Recorder.
func vecs[V Vec](vs ...V) []Vec {
	out := make([]Vec, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}
