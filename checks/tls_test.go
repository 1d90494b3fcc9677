package checks

import (
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// tlsServer serves TLS with cfg on a loopback port and closes each connection once the
// handshake is done: the tls kind never speaks the protocol behind it.
func tlsServer(t *testing.T, cfg *tls.Config) string {
	return tcpServer(t, func(c net.Conn, _ <-chan struct{}) {
		tc := tls.Server(c, cfg)
		_ = tc.Handshake()
		_ = tc.Close()
	})
}

func tlsCheck(addr, extra string) string {
	return fmt.Sprintf(`
checks:
  - name: cert
    kind: tls
    timeout: 2s
    address: %q
%s`, addr, extra)
}

func TestTLSReadsTheChain(t *testing.T) {
	ca := newTestCA(t)
	cert := ca.leaf(t, 60*24*time.Hour)
	cert.OCSPStaple = []byte{0x30, 0x03, 0x0a, 0x01, 0x00} // any bytes: the kind reports a staple's presence
	addr := tlsServer(t, serverTLS(cert))
	res := run(t, buildOne(t, tlsCheck(addr, fmt.Sprintf(`    tls_config: {ca_file: %q}
    assert:
      - verified
      - cert_expiry_days > 59 && cert_expiry_days < 61
      - issuer contains 'vigil test CA'
      - "'127.0.0.1' in sans && 'localhost' in sans"
      - tls_version == 'TLS 1.3'
      - ocsp_stapled
      - chain_length == 1
      - len(fingerprint_sha256) == 64
`, ca.pemFile))), Input{})
	wantOutcome(t, res, Pass)

	// The certificate's expiry reaches blackbox_exporter's metric as a Unix time.
	reg := prometheus.NewRegistry()
	observe := NewKindMetrics(reg)
	observe.Observe(res)
	got := gaugeValue(t, reg, observe, "probe_ssl_earliest_cert_expiry")
	want := float64(time.Now().Add(60 * 24 * time.Hour).Unix())
	if got < want-3600 || got > want+3600 {
		t.Errorf("probe_ssl_earliest_cert_expiry = %v, want about %v", got, want)
	}
}

// gaugeValue is the value of a gauge's one series, gathered from reg or from the kinds'
// families kept beside it.
func gaugeValue(t *testing.T, reg *prometheus.Registry, m KindMetrics, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fams := range m.Families() {
		rows := fams.Snapshot(false) // the families are held together
		for i := range fams.Names() {
			mfs = append(mfs, rows.Family(i, 0, rows.Len()))
		}
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s has no single series", name)
	return 0
}

// A certificate that expires in five days is valid, and fails the default assertion.
func TestTLSExpiringCertFailsByDefault(t *testing.T) {
	ca := newTestCA(t)
	addr := tlsServer(t, serverTLS(ca.leaf(t, 5*24*time.Hour)))
	res := run(t, buildOne(t, tlsCheck(addr, fmt.Sprintf("    tls_config: {ca_file: %q}\n", ca.pemFile))), Input{})
	wantOutcome(t, res, Fail, "cert_expiry_days >= 14", "a certificate in the chain expires")
	if res.Vars["verified"] != true {
		t.Errorf("verified = %v", res.Vars["verified"])
	}
}

func TestTLSExpiredCert(t *testing.T) {
	ca := newTestCA(t)
	addr := tlsServer(t, serverTLS(ca.leaf(t, -48*time.Hour)))
	res := run(t, buildOne(t, tlsCheck(addr, fmt.Sprintf("    tls_config: {ca_file: %q}\n", ca.pemFile))), Input{})
	wantOutcome(t, res, Fail, "is not valid for 127.0.0.1", "expired")

	// insecure_skip_verify only reports: the assertions judge.
	res = run(t, buildOne(t, tlsCheck(addr, fmt.Sprintf(`    tls_config: {ca_file: %q, insecure_skip_verify: true}
    assert: ["!verified", "verify_error contains 'expired'", "cert_expiry_days < -1"]
`, ca.pemFile))), Input{})
	wantOutcome(t, res, Pass)
}

func TestTLSWrongName(t *testing.T) {
	ca := newTestCA(t)
	addr := tlsServer(t, serverTLS(ca.leaf(t, 60*24*time.Hour)))
	res := run(t, buildOne(t, tlsCheck(addr, fmt.Sprintf("    tls_config: {ca_file: %q, server_name: api.example.com}\n", ca.pemFile))), Input{})
	wantOutcome(t, res, Fail, "not valid for api.example.com")
}

// A server that accepts and never shakes hands: the run ends at its timeout, as an error.
func TestTLSStalledHandshakeIsError(t *testing.T) {
	addr := tcpServer(t, silent)
	c := buildOne(t, strings.Replace(tlsCheck(addr, ""), "timeout: 2s", "timeout: 300ms", 1))
	res := run(t, c, Input{})
	wantOutcome(t, res, Error, "TLS handshake with 127.0.0.1:", "timed out")
}

// A server that speaks something else than TLS is an error: there is no chain to judge.
func TestTLSNotTLSIsError(t *testing.T) {
	addr := tcpServer(t, func(c net.Conn, _ <-chan struct{}) {
		fmt.Fprint(c, "SSH-2.0-OpenSSH_9.2\r\n")
	})
	wantOutcome(t, run(t, buildOne(t, tlsCheck(addr, "")), Input{}), Error, "TLS handshake")
}

func TestTLSStartTLS(t *testing.T) {
	ca := newTestCA(t)
	addr := tcpServer(t, mailServer("smtp", serverTLS(ca.leaf(t, 60*24*time.Hour))))
	res := run(t, buildOne(t, tlsCheck(addr, fmt.Sprintf("    starttls: smtp\n    tls_config: {ca_file: %q}\n", ca.pemFile))), Input{})
	wantOutcome(t, res, Pass)
}

// baseline.fingerprint_sha256 catches a deploy that makes the ingress serve another certificate.
func TestTLSBaselineFingerprint(t *testing.T) {
	ca := newTestCA(t)
	addr := tlsServer(t, serverTLS(ca.leaf(t, 60*24*time.Hour)))
	c := buildOne(t, tlsCheck(addr, fmt.Sprintf("    tls_config: {ca_file: %q}\n    assert: [\"fingerprint_sha256 == baseline.fingerprint_sha256\"]\n", ca.pemFile)))
	before := run(t, c, Input{})
	base := c.Baseline([]*Result{before}, 3)
	deploy := &Deploy{ID: "d1", Service: "web", Version: "v2"}
	wantOutcome(t, run(t, c, Input{Deploy: deploy, Baseline: base}), Pass)
	base["fingerprint_sha256"] = strings.Repeat("0", 64)
	wantOutcome(t, run(t, c, Input{Deploy: deploy, Baseline: base}), Fail, "fingerprint_sha256 == baseline.fingerprint_sha256")
}

func TestTLSConfigErrors(t *testing.T) {
	wantBuildError(t, tlsCheck("127.0.0.1:443", "    starttls: ftp\n"), `checks[0].starttls: "ftp" is not a STARTTLS protocol`)
	wantBuildError(t, tlsCheck("127.0.0.1:443", "    tls_config: {ca_file: /nonexistent/ca.pem}\n"), "checks[0].tls_config.ca_file: cannot read")
	wantBuildError(t, tlsCheck("127.0.0.1:443", "    request: {url: 'http://x'}\n"), "checks[0].request", "not a key of tls checks")
	if !slices.Contains(tlsVarNames(), "cert_expiry_days") {
		t.Fatal("tls variables lack cert_expiry_days")
	}
}

// A server that accepts and closes at once (a load balancer with no healthy backend) or
// never finishes the handshake gave no answer, in the tls kind and in a tcp check that
// speaks TLS, as the http kind has it: a deploy's verification counts the silence.
func TestTLSHandshakeWithNoAnswer(t *testing.T) {
	closes := tcpServer(t, func(net.Conn, <-chan struct{}) {})
	stalls := tcpServer(t, silent)
	short := func(s string) string { return strings.Replace(s, "timeout: 2s", "timeout: 300ms", 1) }
	// Closed at once, before reading the hello, is a close or a reset, as the kernel has it.
	for _, tc := range []struct{ name, yaml, reason string }{
		{"tls: closed", tlsCheck(closes, ""), "the connection before finishing it"},
		{"tls: stalled", short(tlsCheck(stalls, "")), "timed out: the server did not finish it"},
		{"tcp: closed", tcpCheck(closes, "    tls: true\n"), "the connection before finishing it"},
		{"tcp: stalled", short(tcpCheck(stalls, "    tls: true\n")), "timed out: the server did not finish it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, buildOne(t, tc.yaml), Input{})
			wantOutcome(t, res, Error, "TLS handshake with 127.0.0.1:", tc.reason)
			if !res.NoAnswer {
				t.Errorf("NoAnswer = false; a server that drops or stalls the handshake gave no answer (%s)", res.Summary())
			}
		})
	}
}
