package checks

import (
	"errors"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Instrument implements Instrumented: the http kind's last answer, under
// blackbox_exporter's names, so that dashboards and alert rules written for its http
// module read vigil's checks too (with check and location where blackbox has its target).
// The gauges live in one table, a row per check (see gaugeTable).
func (httpKind) Instrument(reg prometheus.Registerer) *Recorder {
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
	// shared with other kinds: their vectors register the names (and describe them)
	certExpiryGauge(reg)
	dnsLookupGauge(reg)
	expiry := t.sharedColumn(certExpiryOpts)
	dns := t.sharedColumn(dnsLookupOpts)
	t.register(reg)
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
		t.update(r.Check, r.Location, func(row *gaugeRow) {
			if !ok {
				// No answer: no phase or size was measured, and a stale one would mislead.
				row.set = 0
				row.put(status, 0)
				return
			}
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
			row.put(dns, resolve)
			if at := num("cert_expiry_timestamp"); at > 0 {
				row.put(ssl, 1)
				row.put(expiry, at)
			} else {
				row.put(ssl, 0)
				row.clear(expiry)
			}
		})
	}}
}

// Metrics more than one kind sets (blackbox_exporter names a measurement, not a prober):
// each is defined once, here, and the kinds that set it share one collector.

var (
	certExpiryOpts = prometheus.GaugeOpts{Name: "probe_ssl_earliest_cert_expiry",
		Help: "When the earliest-expiring certificate of the chain the last answer came with expires, in Unix seconds."}
	dnsLookupOpts = prometheus.GaugeOpts{Name: "probe_dns_lookup_time_seconds",
		Help: "How long resolving the target's name took in the last run; 0 on a reused connection."}
)

// certExpiryGauge is probe_ssl_earliest_cert_expiry.
func certExpiryGauge(reg prometheus.Registerer) *prometheus.GaugeVec {
	return sharedGauge(reg, certExpiryOpts)
}

// dnsLookupGauge is probe_dns_lookup_time_seconds.
func dnsLookupGauge(reg prometheus.Registerer) *prometheus.GaugeVec {
	return sharedGauge(reg, dnsLookupOpts)
}

// sharedGauge registers a {check, location} gauge vector, or returns the one another kind
// registered under the same name.
func sharedGauge(reg prometheus.Registerer, opts prometheus.GaugeOpts) *prometheus.GaugeVec {
	v := prometheus.NewGaugeVec(opts, []string{"check", "location"})
	if err := reg.Register(v); err != nil {
		var dup prometheus.AlreadyRegisteredError
		if errors.As(err, &dup) {
			if existing, ok := dup.ExistingCollector.(*prometheus.GaugeVec); ok {
				return existing
			}
		}
		panic(err) // two definitions of one name: a programming error, caught by the catalogue test
	}
	return v
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
