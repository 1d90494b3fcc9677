package checks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vigil-monitor/vigil/configs"
)

// HTTPClient is the HTTP machinery every HTTP-based kind shares: one tuned transport per
// TLS setup and protocol, so a thousand checks a second against a few targets hold a few dozen kept-alive
// connections instead of thousands in TIME_WAIT.
type HTTPClient struct {
	// UserAgent is sent with every request.
	UserAgent string
	// Wrap, when set, wraps each transport (tracing injects traceparent here).
	Wrap func(http.RoundTripper) http.RoundTripper
	// Resolver looks up target host names; nil is the system's. Set it before the first
	// request.
	Resolver *net.Resolver

	mu         sync.Mutex
	transports map[transportKey]http.RoundTripper
	// parent is the shared client a session was made from; nil for a shared client.
	parent *HTTPClient
}

// transportKey tells transports apart: a TLS setup and a protocol ("" or h2c).
type transportKey struct {
	insecure   bool
	caFile     string
	serverName string
	protocol   string
}

// NewHTTPClient returns a client with no transports built yet.
func NewHTTPClient(userAgent string) *HTTPClient {
	return &HTTPClient{UserAgent: userAgent, transports: map[transportKey]http.RoundTripper{}}
}

// NewSession returns a client with the same settings and none of h's connections. A
// deploy's verification runs in a session of its own (see WithSession): the new version is
// judged only through connections opened after the deploy was registered. A load balancer
// draining the old pods keeps routing established connections to them, so a kept-alive
// connection from before the deploy would judge the new version by the old one's answers.
// Go's resolver keeps no DNS cache and TLS sessions are not resumed (no ClientSessionCache),
// so new transports are the whole of it. Close the session's connections with CloseIdle
// when it ends.
func (h *HTTPClient) NewSession() *HTTPClient {
	root := h
	if h.parent != nil {
		root = h.parent
	}
	return &HTTPClient{UserAgent: root.UserAgent, Wrap: root.Wrap, Resolver: root.Resolver, transports: map[transportKey]http.RoundTripper{}, parent: root}
}

type sessionKey struct{}

// WithSession makes every request under ctx that would go through s's parent go through s
// instead. A kind needs no code for it: HTTPClient.Do looks the session up.
func WithSession(ctx context.Context, s *HTTPClient) context.Context {
	if s == nil {
		return ctx
	}
	return context.WithValue(ctx, sessionKey{}, s)
}

// perRun gives one run of a deploy's verification connections of its own: when ctx carries
// a session made from h (WithSession), the ctx returned carries a new one, and done closes
// its connections at the run's end; otherwise ctx is returned as it is (scheduled runs keep
// the shared client's kept-alive connections). A verification's rounds each stand for a new
// visitor: behind a connection-level balancer (kube-proxy, a cloud network load balancer) a
// kept-alive connection stays on the pod it was given, also once that pod has left the
// rotation and drains, for 30 s or more. Rounds that shared the verification's session were
// all carried to the pod the first round reached: an old one, while the rollout went on,
// so a broken new version passed on the old one's answers, and with served_version a good
// one was "answered by version v1" round after round (not ready, under ready_within).
func (h *HTTPClient) perRun(ctx context.Context) (_ context.Context, done func()) {
	if s, ok := ctx.Value(sessionKey{}).(*HTTPClient); !ok || s.parent != h {
		return ctx, func() {}
	}
	run := h.NewSession()
	return context.WithValue(ctx, sessionKey{}, run), run.CloseIdle
}

// forContext is the client a request under ctx uses: ctx's session when it was made from h.
func (h *HTTPClient) forContext(ctx context.Context) *HTTPClient {
	if s, ok := ctx.Value(sessionKey{}).(*HTTPClient); ok && s.parent == h {
		return s
	}
	return h
}

func (h *HTTPClient) transport(opts configs.TLS, protocol string) (http.RoundTripper, error) {
	key := transportKey{opts.InsecureSkipVerify, opts.CAFile, opts.ServerName, protocol}
	h.mu.Lock()
	defer h.mu.Unlock()
	if t, ok := h.transports[key]; ok {
		return t, nil
	}
	tc := &tls.Config{InsecureSkipVerify: opts.InsecureSkipVerify, ServerName: opts.ServerName} //nolint:gosec // opt-in per check
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificates", opts.CAFile)
		}
		tc.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Resolver: h.Resolver}).DialContext,
		TLSClientConfig:        tc,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxHeaderBytes,
	}
	if protocol == configs.ProtocolH2C {
		// HTTP/2 alone: with prior knowledge over plain http (HTTP/1.1 left out, or Go
		// would speak it), and by ALPN over TLS, should a redirect lead there.
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		p.SetHTTP2(true)
		tr.Protocols = &p
	}
	var rt http.RoundTripper = tr
	if h.Wrap != nil {
		rt = h.Wrap(rt)
	}
	h.transports[key] = rt
	return rt, nil
}

// resendable lets Go's transport send req again on a new connection when the kept-alive
// connection it went out on closes before any answer, whatever its method, as browsers do
// (Chromium resends any request that got nothing back on a reused connection). Go resends
// only what it may repeat: GET, HEAD, OPTIONS, TRACE, and a request with an Idempotency-Key.
// A draining backend, or a balancer's idle timeout, that resets a kept-alive connection as
// the next request arrives made a POST no answer that no visitor sees: an sla burst of
// POSTs behind a rollout failed on error_rate, an http check erred in a verification's
// second round. An Idempotency-Key with a nil value marks it, and is not sent. A request
// dropped on a new connection is not sent again (the service gave no answer), and one sent
// again is counted (Response.Retried: an sla check's retried).
func resendable(req *http.Request) {
	if _, ok := req.Header["Idempotency-Key"]; ok {
		return
	}
	if _, ok := req.Header["X-Idempotency-Key"]; ok {
		return
	}
	req.Header["Idempotency-Key"] = nil
}

// maxHeaderBytes caps an answer's headers, and those of the 1xx answers before it.
const maxHeaderBytes = 256 << 10

// CloseIdle closes kept-alive connections (tests, shutdown, the end of a session).
func (h *HTTPClient) CloseIdle() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range h.transports {
		if c, ok := t.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
}

// redirectPolicy follows up to maxRedirects redirects. One that leaves the first request's host (for
// another name, not one of its subdomains, as Go judges Authorization) takes none of the
// request's credentials along: Go drops Authorization and Cookie; this drops the Referer
// (the previous URL, query tokens and all) and every header the config set that is not
// clearly harmless (X-Auth-Token, X-Api-Key, ...).
func redirectPolicy(follow bool) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if !follow {
			return http.ErrUseLastResponse
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects (%s): %w", maxRedirects, redirectTrail(via, req), errTooManyRedirects)
		}
		if !sameSite(via[0].URL, req.URL) {
			for k := range req.Header {
				if !configs.PlainHeader(k) {
					req.Header.Del(k)
				}
			}
		}
		return nil
	}
}

// maxRedirects is where browsers give up following redirects (Chromium and Firefox: 20).
// A longer chain, or a loop, is an answer no visitor gets past.
const maxRedirects = 20

// redirectTrail shows the last few addresses of a chain of redirects, enough to see a loop:
// "… → http://a/login → http://a/ → http://a/login".
func redirectTrail(via []*http.Request, next *http.Request) string {
	urls := make([]string, 0, 5)
	for _, r := range via[max(0, len(via)-4):] {
		urls = append(urls, Trim(r.URL.String(), 200)) // a Location may be as long as a header
	}
	return "… → " + strings.Join(append(urls, Trim(next.URL.String(), 200)), " → ")
}

// sameSite: dest is initial's host or one of its subdomains.
func sameSite(initial, dest *url.URL) bool {
	ih, dh := strings.ToLower(initial.Hostname()), strings.ToLower(dest.Hostname())
	return ih == dh || strings.HasSuffix(dh, "."+ih)
}
