package checks

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/vigil-monitor/vigil/configs"
)

// HTTPClient is the HTTP machinery every HTTP-based kind shares: one tuned transport per
// TLS setup, so a thousand checks a second against a few targets hold a few dozen kept-alive
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
	transports map[tlsKey]http.RoundTripper
	// parent is the shared client a session was made from; nil for a shared client.
	parent *HTTPClient
}

type tlsKey struct {
	insecure   bool
	caFile     string
	serverName string
}

// NewHTTPClient returns a client with no transports built yet.
func NewHTTPClient(userAgent string) *HTTPClient {
	return &HTTPClient{UserAgent: userAgent, transports: map[tlsKey]http.RoundTripper{}}
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
	return &HTTPClient{UserAgent: root.UserAgent, Wrap: root.Wrap, transports: map[tlsKey]http.RoundTripper{}, parent: root}
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

// forContext is the client a request under ctx uses: ctx's session when it was made from h.
func (h *HTTPClient) forContext(ctx context.Context) *HTTPClient {
	if s, ok := ctx.Value(sessionKey{}).(*HTTPClient); ok && s.parent == h {
		return s
	}
	return h
}

func (h *HTTPClient) transport(opts configs.TLS) (http.RoundTripper, error) {
	key := tlsKey{opts.InsecureSkipVerify, opts.CAFile, opts.ServerName}
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
	var rt http.RoundTripper = &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Resolver: h.Resolver}).DialContext,
		TLSClientConfig:        tc,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 256 << 10,
	}
	if h.Wrap != nil {
		rt = h.Wrap(rt)
	}
	h.transports[key] = rt
	return rt, nil
}

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

// Request is a rendered request, ready to send.
type Request struct {
	Method          string
	URL             string
	Header          http.Header
	Body            string
	Timeout         time.Duration
	FollowRedirects bool
	TLS             configs.TLS
	Auth            configs.Auth
	MaxBodyBytes    int64
}

// Timings are a request's phases. Connection phases are zero when a kept-alive connection
// was reused.
type Timings struct {
	DNS, Connect, TLS, TTFB, Total time.Duration
}

// Response is what came back, with the body read up to the request's cap.
type Response struct {
	Status    int
	Proto     string
	Header    http.Header
	Body      []byte
	BodyBytes int64
	Truncated bool
	// JSON is the parsed body, nil when it is not JSON (or was truncated).
	JSON     any
	FinalURL string
	Timings  Timings
	Reused   bool
	// CertExpiry is the leaf certificate's NotAfter; zero without TLS.
	CertExpiry time.Time
}

// Do sends r and reads the answer. An error means no complete answer: connection refused,
// a timeout before the response, a broken body. A response with any status is not an error.
func (h *HTTPClient) Do(ctx context.Context, r *Request, t *Transcript) (*Response, error) {
	h = h.forContext(ctx)
	rt, err := h.transport(r.TLS)
	if err != nil {
		return nil, err
	}
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Timeout)
		defer cancel()
	}
	// Trace callbacks run on the transport's dial goroutines, which can outlive the
	// request's choice of connection (a dial racing an idle connection), so they lock.
	rec := &timingRecorder{}
	start := time.Now()
	trace := &httptrace.ClientTrace{
		DNSStart:          func(httptrace.DNSStartInfo) { rec.mark(&rec.dnsStart) },
		DNSDone:           func(httptrace.DNSDoneInfo) { rec.phase(&rec.tm.DNS, &rec.dnsStart) },
		ConnectStart:      func(string, string) { rec.mark(&rec.connStart) },
		ConnectDone:       func(string, string, error) { rec.phase(&rec.tm.Connect, &rec.connStart) },
		TLSHandshakeStart: func() { rec.mark(&rec.tlsStart) },
		TLSHandshakeDone:  func(tls.ConnectionState, error) { rec.phase(&rec.tm.TLS, &rec.tlsStart) },
		GotConn:           rec.gotConn,
		GotFirstResponseByte: func() {
			rec.mu.Lock()
			rec.tm.TTFB = time.Since(start)
			rec.mu.Unlock()
		},
	}
	var body io.Reader
	if r.Body != "" {
		body = strings.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), r.Method, r.URL, body)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	for k, vs := range r.Header {
		req.Header[k] = vs
	}
	if req.Header.Get("User-Agent") == "" && h.UserAgent != "" {
		req.Header.Set("User-Agent", h.UserAgent)
	}
	switch {
	case r.Auth.Bearer.IsSet():
		req.Header.Set("Authorization", "Bearer "+r.Auth.Bearer.Value())
	case r.Auth.Username != "":
		req.SetBasicAuth(r.Auth.Username, r.Auth.Password.Value())
	}
	if t != nil {
		t.Mask(requestSecrets(r, req.Header)...)
		t.Printf("> %s %s", r.Method, r.URL)
		for _, line := range headerLines(req.Header, true) {
			t.Printf("> %s", line)
		}
		if r.Body != "" {
			t.Printf("> %s", t.Excerpt(r.Body, 300))
		}
	}
	client := &http.Client{Transport: rt, CheckRedirect: redirectPolicy(r.FollowRedirects)}
	resp, err := client.Do(req)
	if err != nil {
		err = describeHTTPError(ctx, r, err)
		if t != nil {
			t.Printf("! %v", err)
		}
		return nil, err
	}
	defer resp.Body.Close()

	limit := r.MaxBodyBytes
	if limit <= 0 {
		limit = configs.DefaultMaxBodyBytes
	}
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	out := &Response{Status: resp.StatusCode, Proto: resp.Proto, Header: resp.Header, FinalURL: resp.Request.URL.String()}
	if int64(len(data)) > limit {
		// Closing without draining drops the connection: cheaper than reading a huge body.
		data, out.Truncated = data[:limit], true
	}
	if readErr != nil {
		err := describeHTTPError(ctx, r, readErr)
		if t != nil {
			t.Printf("< %s after %d body bytes; the body broke off: %v", resp.Status, len(data), err)
		}
		return nil, fmt.Errorf("%s, but the body broke off after %d bytes: %w", resp.Status, len(data), err)
	}
	tm, reused := rec.result()
	tm.Total = time.Since(start)
	out.Body, out.BodyBytes, out.Timings, out.Reused = data, int64(len(data)), tm, reused
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		out.CertExpiry = resp.TLS.PeerCertificates[0].NotAfter
	}
	if !out.Truncated && looksJSON(resp.Header.Get("Content-Type"), data) {
		var v any
		dec := json.NewDecoder(bytes.NewReader(data))
		if dec.Decode(&v) == nil && !dec.More() {
			out.JSON = v
		}
	}
	if t != nil {
		t.Mask(responseSecrets(resp.Header, out.JSON)...)
		t.Printf("< %s %s in %s (dns %s, connect %s, tls %s, ttfb %s)", resp.Proto, resp.Status, round(tm.Total),
			round(tm.DNS), round(tm.Connect), round(tm.TLS), round(tm.TTFB))
		for _, line := range headerLines(resp.Header, false) {
			t.Printf("< %s", line)
		}
		note := ""
		if out.Truncated {
			note = fmt.Sprintf(", cut at the %d-byte cap", limit)
		}
		t.Printf("< body: %d bytes%s: %s", len(data), note, t.Excerpt(string(data), 400))
	}
	return out, nil
}

type timingRecorder struct {
	mu                            sync.Mutex
	tm                            Timings
	dnsStart, connStart, tlsStart time.Time
	reused                        bool
}

func (r *timingRecorder) mark(t *time.Time) {
	r.mu.Lock()
	*t = time.Now()
	r.mu.Unlock()
}

func (r *timingRecorder) phase(d *time.Duration, start *time.Time) {
	r.mu.Lock()
	if !start.IsZero() && !r.reused { // after a reused conn, phases belong to a background dial
		*d = time.Since(*start)
	}
	r.mu.Unlock()
}

func (r *timingRecorder) gotConn(info httptrace.GotConnInfo) {
	r.mu.Lock()
	r.reused = info.Reused
	if info.Reused {
		r.tm.DNS, r.tm.Connect, r.tm.TLS = 0, 0, 0
	}
	r.mu.Unlock()
}

func (r *timingRecorder) result() (Timings, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tm, r.reused
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}

// redirectPolicy follows up to 10 redirects. One that leaves the first request's host (for
// another name, not one of its subdomains, as Go judges Authorization) takes none of the
// request's credentials along: Go drops Authorization and Cookie; this drops the Referer
// (the previous URL, query tokens and all) and every header the config set that is not
// clearly harmless (X-Auth-Token, X-Api-Key, ...).
func redirectPolicy(follow bool) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if !follow {
			return http.ErrUseLastResponse
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
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

// sameSite: dest is initial's host or one of its subdomains.
func sameSite(initial, dest *url.URL) bool {
	ih, dh := strings.ToLower(initial.Hostname()), strings.ToLower(dest.Hostname())
	return ih == dh || strings.HasSuffix(dh, "."+ih)
}

// describeHTTPError turns transport errors into a sentence that says what happened.
func describeHTTPError(ctx context.Context, r *Request, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: timed out: no complete answer within %s", r.Method, r.URL, r.Timeout)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s %s: cancelled", r.Method, r.URL)
	}
	return fmt.Errorf("%s %s: %w", r.Method, r.URL, err)
}

// headerLines shows headers, one a line. A header whose name holds a credential is masked;
// so is every request header that is not clearly harmless (configs.PlainHeader): a config's
// X-Auth-Token or X-Scope-OrgID is a credential until proven otherwise.
func headerLines(h http.Header, request bool) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		v := strings.Join(h[k], ", ")
		if configs.SensitiveName(k) || (request && !configs.PlainHeader(k)) {
			v = configs.Masked
		}
		out = append(out, k+": "+Trim(v, 200))
	}
	return out
}

// requestSecrets are the credentials a rendered request carries beyond the config's own:
// credential header values (a token an earlier step extracted) and the passwords and
// tokens in its URL and body.
func requestSecrets(r *Request, h http.Header) []string {
	var out []string
	for k, vs := range h {
		if configs.PlainHeader(k) {
			continue
		}
		for _, v := range vs {
			out = append(out, v)
			if _, tok, ok := strings.Cut(v, " "); ok {
				out = append(out, strings.TrimSpace(tok))
			}
		}
	}
	out = append(out, configs.SecretsInText(r.URL)...)
	return append(out, configs.SecretsInText(r.Body)...)
}

// responseSecrets are what an answer hands out that must not be shown: cookies, credential
// headers and tokens in a JSON body.
func responseSecrets(h http.Header, body any) []string {
	var out []string
	for k, vs := range h {
		if !configs.SensitiveName(k) {
			continue
		}
		for _, v := range vs {
			out = append(out, v)
			if k == "Set-Cookie" {
				if c, err := http.ParseSetCookie(v); err == nil {
					out = append(out, c.Value)
				}
			}
		}
	}
	return append(out, configs.SensitiveValues(body)...)
}

func looksJSON(contentType string, body []byte) bool {
	if strings.Contains(contentType, "json") {
		return true
	}
	b := bytes.TrimSpace(body)
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

// RequestTemplate is a configured request whose URL, body and header values may use
// {{ .name }} templates, compiled once at load.
type RequestTemplate struct {
	base    configs.Request
	url     *template.Template
	body    *template.Template
	headers map[string]*template.Template
}

// CompileRequest compiles the templates in r. path names r in errors.
func CompileRequest(r *configs.Request) (*RequestTemplate, error) {
	rt := &RequestTemplate{base: *r, headers: map[string]*template.Template{}}
	var err error
	if rt.url, err = compileTemplate("url", r.URL); err != nil {
		return nil, err
	}
	if rt.body, err = compileTemplate("body", r.Body); err != nil {
		return nil, err
	}
	for k, v := range r.Headers {
		if rt.headers[k], err = compileTemplate("headers."+k, v); err != nil {
			return nil, err
		}
	}
	return rt, nil
}

// TemplateError names which field of a request has a bad template.
type TemplateError struct {
	Field string
	Err   error
}

func (e *TemplateError) Error() string { return e.Err.Error() }

func compileTemplate(field, s string) (*template.Template, error) {
	if !strings.Contains(s, "{{") {
		return nil, nil
	}
	t, err := template.New(field).Option("missingkey=error").Parse(s)
	if err != nil {
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		return nil, &TemplateError{Field: field, Err: fmt.Errorf("bad template: %s", msg)}
	}
	return t, nil
}

// Fields lists the template variables the request reads, with the field that reads each.
func (rt *RequestTemplate) Fields() map[string]string {
	out := map[string]string{}
	add := func(field string, t *template.Template) {
		if t == nil {
			return
		}
		for _, name := range templateFields(t) {
			if _, ok := out[name]; !ok {
				out[name] = field
			}
		}
	}
	add("url", rt.url)
	add("body", rt.body)
	for k, t := range rt.headers {
		add("headers."+k, t)
	}
	return out
}

// Render fills the templates from data.
func (rt *RequestTemplate) Render(data map[string]any) (*Request, error) {
	r := &Request{Method: rt.base.Method, URL: rt.base.URL, Body: rt.base.Body, Header: http.Header{},
		Timeout: rt.base.Timeout, TLS: rt.base.TLS, Auth: rt.base.Auth, MaxBodyBytes: rt.base.MaxBodyBytes,
		FollowRedirects: rt.base.FollowRedirects == nil || *rt.base.FollowRedirects}
	var err error
	if r.URL, err = execTemplate(rt.url, rt.base.URL, data); err != nil {
		return nil, err
	}
	if r.Body, err = execTemplate(rt.body, rt.base.Body, data); err != nil {
		return nil, err
	}
	for k, v := range rt.base.Headers {
		hv, err := execTemplate(rt.headers[k], v, data)
		if err != nil {
			return nil, err
		}
		r.Header.Set(k, hv)
	}
	if rt.url != nil {
		if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("the url template rendered %q, which is not an absolute http(s) URL", r.URL)
		}
	}
	return r, nil
}

func execTemplate(t *template.Template, raw string, data map[string]any) (string, error) {
	if t == nil {
		return raw, nil
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("rendering %s: %w", t.Name(), err)
	}
	return b.String(), nil
}
