package checks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/expr-lang/expr/types"
	"github.com/vigil-monitor/vigil/configs"
)

// tlsVars are the variables of a TLS handshake: the tls kind's, and the tcp kind's when
// its connection speaks TLS.
var tlsVars = types.Map{
	"handshake_ms":          types.Float64,
	"verified":              types.Bool,
	"verify_error":          types.String,
	"cert_expiry_days":      types.Float64,
	"cert_expiry_timestamp": types.Float64,
	"leaf_expiry_days":      types.Float64,
	"issuer":                types.String,
	"subject":               types.String,
	"sans":                  types.Array(types.String),
	"tls_version":           types.String,
	"cipher":                types.String,
	"ocsp_stapled":          types.Bool,
	"chain_length":          types.Int,
	"fingerprint_sha256":    types.String,
}

// tlsKindVars are the tls kind's variables.
var tlsKindVars = withVars(types.Map{"connect_ms": types.Float64}, tlsVars)

// defaultTLSAssert judges a tls check that has no assertions of its own.
var defaultTLSAssert = []string{"cert_expiry_days >= 14"}

// TLS is the tls kind: connect, upgrade with STARTTLS when configured, shake hands and
// read the chain the server presents. Each run opens its own connection with no session
// cache, so a deploy's verification always sees the certificate served now.
type TLS struct {
	address  string
	startTLS string
	tls      tlsDialer
}

// tlsDialer holds a check's TLS settings, its CA pool read once when the check is built.
type tlsDialer struct {
	serverName string
	insecure   bool
	roots      *x509.CertPool // nil: the system's
}

func newTLSDialer(opts configs.TLS, address string) (tlsDialer, error) {
	d := tlsDialer{serverName: opts.ServerName, insecure: opts.InsecureSkipVerify}
	if d.serverName == "" {
		d.serverName, _, _ = net.SplitHostPort(address)
	}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return d, fmt.Errorf("reading CA file: %w", err)
		}
		d.roots = x509.NewCertPool()
		if !d.roots.AppendCertsFromPEM(pem) {
			return d, fmt.Errorf("CA file %s holds no PEM certificates", opts.CAFile)
		}
	}
	return d, nil
}

// handshake runs a TLS client handshake on conn. It accepts any chain and verifies it
// afterwards, so that a bad certificate is reported with what it holds (issuer, expiry)
// rather than only "handshake failed". An error means no TLS session was set up; a chain
// that does not verify is a run failure, unless insecure_skip_verify says to only report it.
func (d tlsDialer) handshake(ctx context.Context, conn net.Conn, run *Run) (*tls.Conn, error) {
	start := time.Now()
	tc := tls.Client(conn, &tls.Config{ServerName: d.serverName, InsecureSkipVerify: true}) //nolint:gosec // verified below
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, handshakeErr(ctx, conn.RemoteAddr(), err)
	}
	run.Vars["handshake_ms"] = ms(time.Since(start))
	st := tc.ConnectionState()
	verr := d.verify(st.PeerCertificates, time.Now())
	setTLSVars(run, st, verr, time.Now())
	run.Transcript.Printf("TLS: %s, %s, %d certificates, leaf %q issued by %q", run.Vars["tls_version"], run.Vars["cipher"],
		len(st.PeerCertificates), run.Vars["subject"], run.Vars["issuer"])
	if verr != nil {
		run.Transcript.Printf("the chain does not verify for %s: %v", d.serverName, verr)
		run.Explain("verified", verr.Error())
		if !d.insecure {
			run.Failf("the certificate %s presents is not valid for %s: %v", conn.RemoteAddr(), d.serverName, verr)
		}
	}
	return tc, nil
}

// handshakeErr says why a TLS handshake with addr failed. A server that closes or resets
// the connection, or never finishes the handshake (a load balancer with no backend, a TLS
// terminator that hangs), gave no answer, as it is for the http kind. One that answers
// with an alert (a certificate its key does not match, only protocols or ciphers no
// current client speaks), or with something that is not TLS, did answer, and fails the
// run: every client is refused as this one was. The chain is verified apart, after the
// handshake, so no certificate problem of the client's own making ends up here.
func handshakeErr(ctx context.Context, addr net.Addr, err error) error {
	var record tls.RecordHeaderError
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil:
		// The connection's deadline is the run's: it may fire a moment before ctx says so.
		return &noAnswerError{fmt.Errorf("TLS handshake with %s: timed out: the server did not finish it before the check's timeout", addr)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return noAnswer(fmt.Errorf("TLS handshake with %s: %s before finishing it: %w", addr, readErr(err), err))
	case errors.As(err, &record):
		return &faultError{fmt.Errorf("TLS handshake with %s: %w (the server answered, not in TLS: no TLS client can connect)", addr, err)}
	case isRemoteAlert(err):
		return &faultError{fmt.Errorf("TLS handshake with %s: the server refused it: %w", addr, err)}
	}
	return &faultError{fmt.Errorf("TLS handshake with %s: %w (the server's side of the handshake, which no TLS client completes)", addr, err)}
}

// isRemoteAlert says whether err is a TLS alert the server sent ("remote error: tls:
// internal error"): crypto/tls gives it as a net.OpError whose Op says so.
func isRemoteAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// verify checks the presented chain against the roots for the server name.
func (d tlsDialer) verify(certs []*x509.Certificate, now time.Time) error {
	if len(certs) == 0 {
		return errors.New("the server presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: d.roots, Intermediates: inter, DNSName: d.serverName, CurrentTime: now})
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	switch {
	case errors.As(err, &host) && net.ParseIP(d.serverName) != nil && len(certs[0].IPAddresses) == 0:
		// x509 says only "doesn't contain any IP SANs": what was served, and why, is the news.
		return fmt.Errorf("%w: it is for %s (with no server_name the check sends no SNI, and a server that picks "+
			"its certificate by name serves its default one)", err, strings.Join(certs[0].DNSNames, ", "))
	case errors.As(err, &unknown) && len(certs) == 1 && !bytes.Equal(certs[0].RawIssuer, certs[0].RawSubject):
		// Browsers fetch a missing intermediate from the leaf's AIA URL; Go clients and
		// curl do not, so "unknown authority" is often a chain served incomplete.
		return fmt.Errorf("%w: the server sent only its own certificate, issued by %q: a server whose certificate an "+
			"intermediate issued must send that intermediate too (Go clients and curl do not fetch it, as browsers may); "+
			"a private CA's certificate goes in tls_config.ca_file", err, certs[0].Issuer.String())
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired && invalid.Cert != nil:
		// x509 does not say which certificate: an intermediate's expiry reads as the leaf's.
		return fmt.Errorf("%w (the certificate of %q, valid until %s)", err, invalid.Cert.Subject.String(),
			invalid.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return err
}

// setTLSVars records what a handshake showed.
func setTLSVars(run *Run, st tls.ConnectionState, verr error, now time.Time) {
	run.Vars["verified"] = verr == nil
	run.Vars["verify_error"] = ""
	if verr != nil {
		run.Vars["verify_error"] = verr.Error()
	}
	run.Vars["tls_version"] = tls.VersionName(st.Version)
	run.Vars["cipher"] = tls.CipherSuiteName(st.CipherSuite)
	run.Vars["ocsp_stapled"] = len(st.OCSPResponse) > 0
	run.Vars["chain_length"] = len(st.PeerCertificates)
	if len(st.PeerCertificates) == 0 {
		return
	}
	leaf := st.PeerCertificates[0]
	first := leaf
	for _, c := range st.PeerCertificates[1:] {
		if c.NotAfter.Before(first.NotAfter) {
			first = c
		}
	}
	earliest := first.NotAfter
	run.Vars["cert_expiry_days"] = days(earliest.Sub(now))
	run.Vars["cert_expiry_timestamp"] = float64(earliest.Unix())
	run.Vars["leaf_expiry_days"] = days(leaf.NotAfter.Sub(now))
	run.Vars["issuer"] = leaf.Issuer.String()
	run.Vars["subject"] = leaf.Subject.String()
	sans := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		sans = append(sans, ip.String())
	}
	sans = append(sans, leaf.EmailAddresses...)
	for _, u := range leaf.URIs {
		sans = append(sans, u.String())
	}
	run.Vars["sans"] = sans
	sum := sha256.Sum256(leaf.Raw)
	run.Vars["fingerprint_sha256"] = hex.EncodeToString(sum[:])
	if d := run.Vars["cert_expiry_days"].(float64); d < 30 {
		run.Explain("cert_expiry_days", fmt.Sprintf("a certificate in the chain expires %s: %q", earliest.UTC().Format(time.RFC3339), first.Subject.String()))
	}
}

func days(d time.Duration) float64 { return d.Hours() / 24 }

// Probe implements Prober.
func (t *TLS) Probe(ctx context.Context, run *Run) error {
	conn, err := dialTCP(ctx, t.address, run)
	if err != nil {
		return err
	}
	defer conn.Close()
	if t.startTLS != "" {
		if err := startTLS(conn, t.startTLS, run); err != nil {
			run.Failf("%v", err) // the server answered, and no client gets TLS from it: as the tcp kind has it
			return nil
		}
	}
	tc, err := t.tls.handshake(ctx, conn, run)
	if err != nil {
		return err
	}
	_ = tc.Close()
	return nil
}

// withVars merges variable sets into a new one.
func withVars(sets ...types.Map) types.Map {
	out := types.Map{}
	for _, s := range sets {
		maps.Copy(out, s)
	}
	return out
}

// tlsKind registers the tls kind (kinds.go).
type tlsKind struct{}

func (tlsKind) vars() types.Map { return tlsKindVars }

// Instrument implements Instrumented: blackbox_exporter's certificate expiry.
func (tlsKind) Instrument(in Instruments) *Recorder { return instrumentTLS(in) }

func (tlsKind) build(b *builder, c *configs.Check) Prober {
	s := c.Spec.(*configs.TLSSpec)
	d, err := newTLSDialer(s.TLSConfig, s.Address)
	if err != nil {
		b.errf(c.Path()+".tls_config.ca_file", "point it at a PEM file of CA certificates", "%v", err)
		return nil
	}
	return &TLS{address: s.Address, startTLS: s.StartTLS, tls: d}
}

// DefaultAssert implements DefaultAsserter: a certificate with two weeks or more to live.
func (t *TLS) DefaultAssert() []string { return defaultTLSAssert }

// instrumentTLS records the chain's earliest expiry in probe_ssl_earliest_cert_expiry,
// which the http, tls and tcp kinds share; a run with no certificate clears it.
func instrumentTLS(in Instruments) *Recorder {
	shared := in.shared
	return &Recorder{Observe: func(r *Result) {
		at, _ := r.Vars["cert_expiry_timestamp"].(float64)
		shared.update(r.Check, r.Location, func(row *gaugeRow) { shared.setCertExpiry(row, at) })
	}}
}

var (
	_ Instrumented = tlsKind{}
	_ Instrumented = tcpKind{}
	_ Instrumented = dnsKind{}
	_ Instrumented = heartbeatKind{}
	_ Instrumented = grpcKind{}
)
