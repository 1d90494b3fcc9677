package checks

import (
	"errors"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Instrument implements Instrumented: the http kind's last answer, under
// blackbox_exporter's names, so that dashboards and alert rules written for its http
// module read vigil's checks too (with check and location where blackbox has its target).
func (httpKind) Instrument(reg prometheus.Registerer) *Recorder {
	f := promauto.With(reg)
	labels := []string{"check", "location"}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return f.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	status := gauge("probe_http_status_code", "Response HTTP status code of the check's last run; 0 when no answer came.")
	phases := f.NewGaugeVec(prometheus.GaugeOpts{Name: "probe_http_duration_seconds",
		Help: "Duration of the last request by phase (resolve, connect, tls, processing, transfer); connection phases are 0 on a reused connection."},
		[]string{"check", "location", "phase"})
	contentLength := gauge("probe_http_content_length", "Length of the last response's body as its Content-Length header gave it; -1 when it gave none.")
	bodyLength := gauge("probe_http_uncompressed_body_length", "Bytes of the last response's body that were read (up to max_body_bytes).")
	redirects := gauge("probe_http_redirects", "Redirects the last request followed.")
	ssl := gauge("probe_http_ssl", "Whether the last answer came over TLS (1) or not (0).")
	version := gauge("probe_http_version", "HTTP version of the last answer (1.1, 2).")
	expiry := certExpiryGauge(reg)
	dns := dnsLookupGauge(reg)
	answer := []*prometheus.GaugeVec{phases, contentLength, bodyLength, redirects, ssl, version, expiry, dns}
	all := append([]*prometheus.GaugeVec{status}, answer...)
	return &Recorder{Vecs: vecs(all...), Observe: func(r *Result) {
		l := prometheus.Labels{"check": r.Check, "location": r.Location}
		code, ok := r.Vars["status"].(int)
		if !ok {
			// No answer: no phase or size was measured, and a stale one would mislead.
			status.With(l).Set(0)
			for _, v := range answer {
				v.DeletePartialMatch(l)
			}
			return
		}
		status.With(l).Set(float64(code))
		num := func(name string) float64 {
			switch v := r.Vars[name].(type) {
			case float64:
				return v
			case int:
				return float64(v)
			}
			return 0
		}
		resolve, connect, handshake := num("dns_ms")/1000, num("connect_ms")/1000, num("tls_ms")/1000
		ttfb, total := num("ttfb_ms")/1000, num("duration_ms")/1000
		for phase, s := range map[string]float64{
			"resolve": resolve, "connect": connect, "tls": handshake,
			"processing": max(0, ttfb-resolve-connect-handshake), "transfer": max(0, total-ttfb),
		} {
			phases.WithLabelValues(r.Check, r.Location, phase).Set(s)
		}
		contentLength.With(l).Set(num("content_length"))
		bodyLength.With(l).Set(num("body_bytes"))
		redirects.With(l).Set(num("redirects"))
		version.With(l).Set(httpVersion(r.Vars["proto"]))
		dns.With(l).Set(resolve)
		if at := num("cert_expiry_timestamp"); at > 0 {
			ssl.With(l).Set(1)
			expiry.With(l).Set(at)
		} else {
			ssl.With(l).Set(0)
			expiry.Delete(l)
		}
	}}
}

// Metrics more than one kind sets (blackbox_exporter names a measurement, not a prober):
// each is defined once, here, and the kinds that set it share one collector.

// certExpiryGauge is probe_ssl_earliest_cert_expiry.
func certExpiryGauge(reg prometheus.Registerer) *prometheus.GaugeVec {
	return sharedGauge(reg, prometheus.GaugeOpts{Name: "probe_ssl_earliest_cert_expiry",
		Help: "When the earliest-expiring certificate of the chain the last answer came with expires, in Unix seconds."})
}

// dnsLookupGauge is probe_dns_lookup_time_seconds.
func dnsLookupGauge(reg prometheus.Registerer) *prometheus.GaugeVec {
	return sharedGauge(reg, prometheus.GaugeOpts{Name: "probe_dns_lookup_time_seconds",
		Help: "How long resolving the target's name took in the last run; 0 on a reused connection."})
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
