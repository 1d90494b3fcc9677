package checks

// Answers that are wrong for every client. An error outcome means vigil could not measure:
// it is retried, and it never fails a deploy on its own. Some transport failures are not
// that. A server that presents a TLS certificate for other names (the ingress controller's
// default certificate after a deploy lost its TLS secret) or out of date, or that redirects
// in a loop (an HTTPS redirect behind a proxy that terminates TLS), has answered, and every
// visitor's browser refuses the answer: production is broken, and a deploy that did it is
// failed like one that answers 503.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/browser"
)

// faultError is a Prober's error when the target answered and its answer is wrong for any
// client, so there is nothing else to judge: the run fails with it as its reason.
type faultError struct{ err error }

func (e *faultError) Error() string { return e.err.Error() }
func (e *faultError) Unwrap() error { return e.err }

// faultOf is the faultError in err's chain, or nil.
func faultOf(err error) *faultError {
	var f *faultError
	if err != nil && errors.As(err, &f) {
		return f
	}
	return nil
}

// errTooManyRedirects is in the chain of a request's error when its redirects went on
// past where browsers stop (maxRedirects): a loop, as a rule.
var errTooManyRedirects = errors.New("no browser follows that many")

// targetFault marks err as the target's fault when it is a server certificate that every
// client refuses, whatever it trusts (one for other names, or out of date), or redirects
// past where browsers stop. A certificate signed by an authority vigil does not know stays
// an error, with a hint: that may be vigil's trust store (a private CA without
// tls.ca_file), not the service. Only the kinds whose request goes to the service under
// test use this: a Prometheus or Loki with a bad certificate is vigil's problem, not the
// deploy's.
func targetFault(err error) error {
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &host) || errors.As(err, &invalid) && invalid.Reason == x509.Expired || errors.Is(err, errTooManyRedirects):
		return &faultError{err}
	case errors.As(err, &unknown):
		return fmt.Errorf("%w (a private CA? give its certificate in the check's tls.ca_file)", err)
	}
	return err
}

// navigationFault is targetFault for a browser visit's error: a redirect loop, and a
// certificate Chromium refused whose names or dates are wrong (certificateFault).
func navigationFault(ctx context.Context, err error) error {
	var nav *browser.NavigationError
	if !errors.As(err, &nav) {
		return err
	}
	switch {
	case nav.Code == "net::ERR_TOO_MANY_REDIRECTS":
		return &faultError{err}
	case strings.HasPrefix(nav.Code, "net::ERR_CERT_"):
		if fault := certificateFault(ctx, nav.URL); fault != nil {
			return &faultError{fmt.Errorf("%w; %w", err, fault)}
		}
	}
	return err
}

// certCheckTimeout bounds the handshake certificateFault makes.
const certCheckTimeout = 3 * time.Second

// certificateFault judges the certificate that the server of rawURL presents as the http
// kind does, whatever signed it: out of date, or for other names, is the target's fault
// (the error returned says which); nil when it is neither or could not be read. A browser
// check uses it when Chromium refused a certificate, since Chromium names one reason, and
// an unknown authority before a wrong name: an ingress's self-signed default certificate
// after a deploy lost its TLS secret is "authority invalid" to Chromium and "valid for
// ingress.local, not shop.example.com" here. Only a handshake is made, no request.
func certificateFault(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return nil
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	ctx, cancel := context.WithTimeout(ctx, certCheckTimeout)
	defer cancel()
	host := u.Hostname()
	cfg := &tls.Config{InsecureSkipVerify: true} // read, not trusted: only its names and dates are judged
	if net.ParseIP(host) == nil {
		cfg.ServerName = host
	}
	d := &tls.Dialer{Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil
	}
	leaf, now := certs[0], time.Now()
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return fmt.Errorf("the server's certificate: %w", x509.CertificateInvalidError{Cert: leaf, Reason: x509.Expired,
			Detail: fmt.Sprintf("valid from %s to %s", leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))})
	}
	if err := leaf.VerifyHostname(host); err != nil {
		return fmt.Errorf("the server's certificate: %w", err)
	}
	return nil
}
