package checks

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
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

// A server that speaks something else than TLS on the check's port (a deploy that left
// the terminator out, an ingress serving plain HTTP) refuses every TLS client: the run
// fails. It was an error, and an error never fails a deploy.
func TestTLSNotTLSFails(t *testing.T) {
	for name, banner := range map[string]string{"ssh": "SSH-2.0-OpenSSH_9.2\r\n",
		"plain http": "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"} {
		addr := tcpServer(t, func(c net.Conn, _ <-chan struct{}) { fmt.Fprint(c, banner) })
		t.Run(name, func(t *testing.T) {
			wantOutcome(t, run(t, buildOne(t, tlsCheck(addr, "")), Input{}), Fail, "TLS handshake", "not in TLS")
		})
	}
}

// A server that refuses the handshake with an alert (here its certificate cannot be
// loaded: a key that does not match, a secret not mounted) refuses every client: the run
// fails, for the tls kind and the http kind alike. Both called it an error.
func TestTLSHandshakeRefusedFails(t *testing.T) {
	broken := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return nil, fmt.Errorf("tls: private key does not match public key")
	}}
	addr := tlsServer(t, broken)
	wantOutcome(t, run(t, buildOne(t, tlsCheck(addr, "")), Input{}), Fail, "the server refused it", "remote error: tls: internal error")
	res := run(t, buildOne(t, fmt.Sprintf(`
checks:
  - name: home
    kind: http
    timeout: 2s
    request: {url: "https://%s/"}
`, addr)), Input{})
	wantOutcome(t, res, Fail, "remote error: tls: internal error", "refused the TLS handshake")
	wantOutcome(t, run(t, buildOne(t, tcpCheck(addr, "    tls: true\n")), Input{}), Fail, "the server refused it")
}

func TestTLSStartTLS(t *testing.T) {
	ca := newTestCA(t)
	addr := tcpServer(t, mailServer("smtp", serverTLS(ca.leaf(t, 60*24*time.Hour))))
	res := run(t, buildOne(t, tlsCheck(addr, fmt.Sprintf("    starttls: smtp\n    tls_config: {ca_file: %q}\n", ca.pemFile))), Input{})
	wantOutcome(t, res, Pass)
}

// A refused STARTTLS is the server's answer, and no client gets TLS from it: the run fails,
// as in the tcp kind, rather than ending in an error no verification counts.
func TestTLSStartTLSRefused(t *testing.T) {
	addr := tcpServer(t, func(c net.Conn, _ <-chan struct{}) {
		r := bufio.NewReader(c)
		fmt.Fprint(c, "220 ready\r\n")
		_, _ = r.ReadString('\n')
		fmt.Fprint(c, "250 mail.test\r\n")
		_, _ = r.ReadString('\n')
		fmt.Fprint(c, "454 TLS not available due to temporary reason\r\n")
	})
	res := run(t, buildOne(t, tlsCheck(addr, "    starttls: smtp\n")), Input{})
	wantOutcome(t, res, Fail, "smtp STARTTLS was refused", "454 TLS not available")
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

// intermediate is a CA that root signed, expiring after ttl (negative: already expired);
// its certificate is in no PEM file: a server sends it, or a client has no way to it.
func intermediate(t *testing.T, root *testCA, ttl time.Duration) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	notBefore := time.Now().Add(-time.Hour)
	if ttl < 0 {
		notBefore = time.Now().Add(ttl - time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "vigil test intermediate"},
		NotBefore: notBefore, NotAfter: time.Now().Add(ttl),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root.cert, &key.PublicKey, root.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

// Chains a deploy can get wrong while the leaf itself is fine: the intermediate left out
// (browsers may fetch it, Go clients and curl fail), an intermediate out of date, one that
// expires before the leaf. Each is judged on the whole chain, and the reason names the
// certificate at fault.
func TestTLSIntermediates(t *testing.T) {
	root := newTestCA(t)
	leafOf := func(in *testCA, full bool) tls.Certificate {
		c := in.leaf(t, 60*24*time.Hour)
		if full {
			c.Certificate = append(c.Certificate, in.cert.Raw)
		}
		return c
	}
	good, soon, expired := intermediate(t, root, 300*24*time.Hour), intermediate(t, root, 10*24*time.Hour), intermediate(t, root, -24*time.Hour)
	for _, tc := range []struct {
		name    string
		cert    tls.Certificate
		assert  string
		outcome Outcome
		reasons []string
	}{
		{"full chain", leafOf(good, true), `["verified", "chain_length == 2", "cert_expiry_days > 59", "leaf_expiry_days > 59"]`, Pass, nil},
		{"intermediate missing", leafOf(good, false), `["chain_length == 1"]`, Fail,
			[]string{"is not valid for 127.0.0.1", "unknown authority", `the server sent only its own certificate, issued by "CN=vigil test intermediate"`}},
		{"intermediate expired", leafOf(expired, true), `["leaf_expiry_days > 59"]`, Fail,
			[]string{"is not valid for 127.0.0.1", "expired", `(the certificate of "CN=vigil test intermediate", valid until`}},
		// Verified, and cert_expiry_days is the intermediate's 10 days, not the leaf's 60:
		// the assertion fails and says which certificate.
		{"intermediate expires first", leafOf(soon, true), `["verified", "leaf_expiry_days > 59", "cert_expiry_days >= 14"]`, Fail,
			[]string{"cert_expiry_days >= 14 is false: cert_expiry_days = 10 (a certificate in the chain expires", `"CN=vigil test intermediate"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tlsServer(t, serverTLS(tc.cert))
			extra := fmt.Sprintf("    tls_config: {ca_file: %q}\n", root.pemFile)
			if tc.assert != "" {
				extra += "    assert: " + tc.assert + "\n"
			}
			res := run(t, buildOne(t, tlsCheck(addr, extra)), Input{})
			wantOutcome(t, res, tc.outcome, tc.reasons...)
		})
	}
	// The tcp kind judges a chain the same way, before any step.
	addr := tcpServer(t, func(c net.Conn, done <-chan struct{}) {
		redis("+PONG")(tls.Server(c, serverTLS(leafOf(good, false))), done)
	})
	res := run(t, buildOne(t, tcpCheck(addr, fmt.Sprintf("    tls: true\n    tls_config: {ca_file: %q}\n%s", root.pemFile, pingSteps))), Input{})
	wantOutcome(t, res, Fail, "the server sent only its own certificate")
}

// server_name is sent as SNI: a server that picks its certificate by name (an ingress)
// serves its default one to a client without it, and vigil judges what was served. An
// address's IP is not sent, as TLS has it.
func TestTLSServerNameIsSNI(t *testing.T) {
	ca := newTestCA(t)
	api := ca.leafFor(t, 60*24*time.Hour, []string{"api.example.com"}, nil)
	fallback := ca.leafFor(t, 60*24*time.Hour, []string{"ingress.local"}, nil)
	var mu sync.Mutex
	var seen []string
	addr := tlsServer(t, &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		mu.Lock()
		seen = append(seen, h.ServerName)
		mu.Unlock()
		if h.ServerName == "api.example.com" {
			return &api, nil
		}
		return &fallback, nil
	}})
	res := run(t, buildOne(t, tlsCheck(addr, fmt.Sprintf("    tls_config: {ca_file: %q, server_name: api.example.com}\n    assert: [\"verified\", \"'api.example.com' in sans\"]\n", ca.pemFile))), Input{})
	wantOutcome(t, res, Pass)
	res = run(t, buildOne(t, tlsCheck(addr, fmt.Sprintf("    tls_config: {ca_file: %q}\n", ca.pemFile))), Input{})
	wantOutcome(t, res, Fail, "is not valid for 127.0.0.1", "ingress.local")
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, []string{"api.example.com", ""}) {
		t.Errorf("the server saw SNI %q; want api.example.com, then none", seen)
	}
}
