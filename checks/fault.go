package checks

// Answers that are wrong for every client. An error outcome means vigil could not measure:
// it is retried, and it never fails a deploy on its own. Some transport failures are not
// that. A server that presents a TLS certificate for other names (the ingress controller's
// default certificate after a deploy lost its TLS secret) or out of date, or that redirects
// in a loop (an HTTPS redirect behind a proxy that terminates TLS), has answered, and every
// visitor's browser refuses the answer: production is broken, and a deploy that did it is
// failed like one that answers 503.
//
// Others are the target not answering at all: nothing listens (connection refused), the
// connection is dropped before an answer, or a request was sent and no answer came in
// time. Such a run is still an error, retried, since one of them says little (a cold
// start, a restart between two rounds); it is marked (noAnswerError) so that a deploy's
// verification can tell a service that answered before the deploy and stopped answering
// after it from vigil failing to measure (agent/verdict.go).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
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

// noAnswerError is a Prober's error when the service under test gave no answer: the run
// is an error, and its result says NoAnswer.
type noAnswerError struct{ err error }

func (e *noAnswerError) Error() string { return e.err.Error() }
func (e *noAnswerError) Unwrap() error { return e.err }

// gaveNoAnswer says whether err, unmarked, is one in which the service gave no answer.
func gaveNoAnswer(err error) bool { return isNoAnswer(noAnswer(err)) }

// isNoAnswer says whether err is marked as the service giving no answer.
func isNoAnswer(err error) bool {
	var n *noAnswerError
	return err != nil && errors.As(err, &n)
}

// errNoAnswerInTime is in the chain of a request's error when it had no complete answer
// before its deadline.
var errNoAnswerInTime = errors.New("no complete answer")

// noAnswer marks err when it says the service gave no answer: refused (nothing listens:
// the process died or never started), reset or closed before an answer (it crashed
// mid-request), no answer in time (it hangs; or the path to it drops packets), an address
// whose host is gone, or a name that no longer resolves. What stays unmarked is vigil's
// own trouble: a network vigil has no route to, a resolver that fails, a proxy it cannot
// reach, a certificate vigil cannot verify, a browser that crashed.
func noAnswer(err error) error {
	var dns *net.DNSError
	var ne net.Error
	var op *net.OpError
	switch {
	case err == nil || isNoAnswer(err):
		return err
	case errors.As(err, &op) && op.Op == "proxyconnect":
		return err // the proxy vigil goes through (HTTPS_PROXY) is vigil's path, not the service
	case errors.As(err, &dns):
		// Before the timeouts: a resolver's timeout unwraps to a deadline, and the resolver
		// is vigil's. A name that does not exist is the service's.
		if dns.IsNotFound {
			return &noAnswerError{err}
		}
		return err
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, errNoAnswerInTime), errors.Is(err, context.DeadlineExceeded):
		return &noAnswerError{err}
	case errors.As(err, &ne) && ne.Timeout():
		return &noAnswerError{err}
	case h2Abort(err.Error()):
		return &noAnswerError{err}
	}
	return err
}

// notHTTP says whether a request's error is an answer that is not HTTP, or HTTP that no
// client reads: a TLS port asked in plain HTTP answers a TLS alert, another protocol's
// banner, headers past every client's limit, a redirect without a usable Location, plain
// HTTP on an https URL. net/http keeps these errors unexported, so only their text tells.
// (A TLS answer to plain HTTP is a tls.RecordHeaderError, matched by type.)
func notHTTP(msg string) bool {
	for _, s := range []string{"malformed HTTP response", "malformed HTTP status code", "malformed HTTP version",
		"malformed MIME header", "server response headers exceeded", "failed to parse Location header",
		"server gave HTTP response to HTTPS client", "unsupported transfer encoding", "too many transfer encodings",
		"unsupported protocol scheme"} { // a redirect to file:, data: or ftp: (a check's own URL is http(s), validated)
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// h2Abort says whether an HTTP/2 request's error is the server ending it without an
// answer: a stream it reset (a handler that panicked: what HTTP/1.1 shows as a closed
// connection) or a GOAWAY before the answer. net/http keeps these types unexported, so
// only their text tells.
func h2Abort(msg string) bool {
	return strings.Contains(msg, "stream error: ") && strings.Contains(msg, "; received from peer") ||
		strings.Contains(msg, "http2: server sent GOAWAY and closed the connection")
}

// targetFault marks err as the target's fault when it is a server certificate that every
// client refuses, whatever it trusts (one for other names, or out of date), or redirects
// past where browsers stop; and as no answer when it is one (noAnswer). A certificate
// signed by an authority vigil does not know stays an error, with a hint: that may be
// vigil's trust store (a private CA without tls.ca_file), not the service. Only the kinds
// whose request goes to the service under test use this: a Prometheus or Loki with a bad
// certificate is vigil's problem, not the deploy's.
func targetFault(err error) error {
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	var record tls.RecordHeaderError
	var op *net.OpError
	switch {
	case err == nil || errors.As(err, &op) && op.Op == "proxyconnect":
		return err // the proxy vigil goes through (HTTPS_PROXY) is vigil's path, not the service
	case errors.As(err, &host) || errors.As(err, &invalid) && invalid.Reason == x509.Expired || errors.Is(err, errTooManyRedirects):
		return &faultError{err}
	case errors.As(err, &record) || notHTTP(err.Error()):
		return &faultError{fmt.Errorf("%w (the service answered, and no HTTP client can read the answer)", err)}
	case isRemoteAlert(err):
		return &faultError{fmt.Errorf("%w (the service refused the TLS handshake, as it refuses every client like this one)", err)}
	case errors.As(err, &unknown):
		return fmt.Errorf("%w (a private CA? give its certificate in the check's tls.ca_file)", err)
	}
	return noAnswer(err)
}

// navigationFault is targetFault for a browser visit's error: a redirect loop, a page
// served as a download (visitors get a file, not the page) or answered 204 (nothing to
// show), and a certificate Chromium
// refused whose names or dates are wrong (certificateFault); no answer to the page's
// request (Chromium's network errors for it, or none in time).
func navigationFault(ctx context.Context, err error) error {
	var nav *browser.NavigationError
	var download *browser.DownloadError
	var noPage *browser.NoPageError
	if errors.As(err, &download) || errors.As(err, &noPage) {
		return &faultError{err}
	}
	if !errors.As(err, &nav) {
		if errors.Is(err, browser.ErrNoResponse) {
			return &noAnswerError{err}
		}
		return err
	}
	switch {
	case noAnswerCodes[nav.Code]:
		return &noAnswerError{err}
	case nav.Code == "net::ERR_TOO_MANY_REDIRECTS" || unusableAnswerCodes[nav.Code]:
		return &faultError{err}
	case strings.HasPrefix(nav.Code, "net::ERR_CERT_"):
		if fault := certificateFault(ctx, nav.URL); fault != nil {
			return &faultError{fmt.Errorf("%w; %w", err, fault)}
		}
	}
	return err
}

// unusableAnswerCodes are Chromium's network errors for an answer no visitor gets past: a
// redirect to file:, data: or javascript: (unsafe), one without a usable Location, an
// answer that is not HTTP or has headers past the limit.
var unusableAnswerCodes = map[string]bool{
	"net::ERR_UNSAFE_REDIRECT": true, "net::ERR_INVALID_REDIRECT": true, "net::ERR_INVALID_HTTP_RESPONSE": true,
	"net::ERR_RESPONSE_HEADERS_TOO_BIG": true, "net::ERR_INVALID_RESPONSE": true,
}

// noAnswerCodes are Chromium's network errors for a page's request that mean the server
// gave no answer (net/base/net_error_list.h).
var noAnswerCodes = map[string]bool{
	"net::ERR_CONNECTION_REFUSED": true, "net::ERR_CONNECTION_RESET": true, "net::ERR_CONNECTION_CLOSED": true,
	"net::ERR_CONNECTION_ABORTED": true, "net::ERR_EMPTY_RESPONSE": true, "net::ERR_CONNECTION_TIMED_OUT": true,
	"net::ERR_TIMED_OUT": true, "net::ERR_ADDRESS_UNREACHABLE": true, "net::ERR_NAME_NOT_RESOLVED": true,
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
