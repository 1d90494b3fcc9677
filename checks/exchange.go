package checks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/configs"
)

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
	// Protocol is configs.Request's: "" or h2c.
	Protocol string
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
	// JSONError is why a body that looks like JSON did not parse ("" when it did, or does
	// not look like JSON): nested past 10,000 levels, cut, not one value.
	JSONError string
	// Retried counts the times Go's transport sent the request again on a new connection
	// after a kept-alive one closed without an answer (it does so for requests it may
	// repeat): the service dropped it, unseen in the outcome.
	Retried int
	// CertExpiry is when the earliest-expiring certificate of the chain the server sent
	// expires (blackbox_exporter's probe_ssl_earliest_cert_expiry); zero without TLS.
	CertExpiry time.Time
	// Redirects counts the redirects followed; ContentLength is the Content-Length header's
	// value, -1 without one.
	Redirects     int
	ContentLength int64
}

// Do sends r and reads the answer. An error means no complete answer: connection refused,
// a timeout before the response, a broken body. A response with any status is not an error.
func (h *HTTPClient) Do(ctx context.Context, r *Request, t *Transcript) (*Response, error) {
	h = h.forContext(ctx)
	rt, err := h.transport(r.TLS, r.Protocol)
	if err != nil {
		return nil, err
	}
	// The request's own timeout, unless the run's deadline comes first (a scheduled run's
	// does: the context it would make is only a cancel hooked under the run's, an
	// allocation and a map entry per request).
	if dl, ok := ctx.Deadline(); r.Timeout > 0 && (!ok || time.Until(dl) > r.Timeout) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Timeout)
		defer cancel()
	}
	rec := &timingRecorder{}
	start := time.Now()
	trace := rec.trace(start)
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
	askRevalidation(ctx, req.Header) // in a verification (http_cache.go)
	resendable(req)
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
		// req.Header is not copied: nothing changes it once it is sent (a RoundTripper
		// must not; http.Client copies a request before it adds a header, for a redirect
		// or the URL's user info; the tracing transport sends a clone).
		method, target, sent, body := r.Method, r.URL, req.Header, r.Body
		t.Later(len(method)+len(target)+3+headerBytes(sent)+min(len(body), 300), func(red *configs.Redactor) []string {
			lines := append([]string{"> " + method + " " + target}, prefixed("> ", headerLines(sent, true))...)
			if body != "" {
				lines = append(lines, "> "+excerpt(red, body, 300))
			}
			return lines
		})
	}
	client := &http.Client{Transport: rt, CheckRedirect: redirectPolicy(r.FollowRedirects), Jar: jarFor(ctx, r.FollowRedirects)}
	resp, err := client.Do(req)
	if err != nil {
		var dnsErr *net.DNSError
		switch {
		case errors.As(err, &dnsErr):
			err = fmt.Errorf("%s %s: %w", r.Method, r.URL, dnsErr) // the resolver's own words, its timeout included
		case rec.resolving() && errors.Is(ctx.Err(), context.DeadlineExceeded):
			// The time ran out in vigil's resolver: no request reached the service.
			err = fmt.Errorf("%s %s: timed out resolving the host name (the resolver vigil uses did not answer)", r.Method, r.URL)
		default:
			err = describeHTTPError(ctx, r, err)
		}
		if t != nil {
			t.Printf("! %v", err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	rec.gotFinal(start)

	limit := r.MaxBodyBytes
	if limit <= 0 {
		limit = configs.DefaultMaxBodyBytes
	}
	body, length, readErr := decodedBody(resp, t)
	var data []byte
	if readErr == nil {
		data, readErr = readBody(body, length, limit)
	}
	if badCoding(readErr) { // at its start or further in: an answer no client reads
		if t != nil {
			t.Printf("< %s; %v", resp.Status, readErr)
		}
		return nil, &faultError{fmt.Errorf("%s, but %w", resp.Status, readErr)}
	}
	out := &Response{Status: resp.StatusCode, Proto: resp.Proto, Header: resp.Header, FinalURL: resp.Request.URL.String(),
		ContentLength: resp.ContentLength}
	for prev := resp.Request.Response; prev != nil; prev = prev.Request.Response {
		out.Redirects++
	}
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
	out.BodyBytes, out.Timings, out.Reused = int64(len(data)), tm, reused
	data = textOf(resp, data, t)
	out.Body = data
	rec.mu.Lock()
	out.Retried = rec.retried
	rec.mu.Unlock()
	if out.Retried > 0 && t != nil {
		t.Printf("the request was sent again on a new connection: the kept-alive one it went out on closed without an answer " +
			"(as a browser does, whatever the method; a service that drops requests shows as retried in an sla check)")
	}
	if resp.TLS != nil {
		for _, c := range resp.TLS.PeerCertificates {
			if out.CertExpiry.IsZero() || c.NotAfter.Before(out.CertExpiry) {
				out.CertExpiry = c.NotAfter
			}
		}
	}
	if !out.Truncated && looksJSON(resp.Header.Get("Content-Type"), data) {
		var v any
		if err := json.Unmarshal(data, &v); err == nil { // one value, nothing but space after it
			out.JSON = v
		} else {
			out.JSONError = err.Error()
		}
	}
	if t != nil {
		t.Mask(responseSecrets(resp.Header, out.JSON)...)
		// One function makes every line of the answer when the transcript is read (a
		// passing scheduled run's never is): the run allocates it alone.
		proto, status, truncated, got := resp.Proto, resp.Status, out.Truncated, resp.Header
		t.Later(len(proto)+len(status)+80+headerBytes(got)+min(len(data), 400)+32, func(red *configs.Redactor) []string {
			note := ""
			if truncated {
				note = fmt.Sprintf(", cut at the %d-byte cap", limit)
			}
			return append(append([]string{fmt.Sprintf("< %s %s in %s (dns %s, connect %s, tls %s, ttfb %s)", proto, status,
				round(tm.Total), round(tm.DNS), round(tm.Connect), round(tm.TLS), round(tm.TTFB))},
				prefixed("< ", headerLines(got, false))...),
				fmt.Sprintf("< body: %d bytes%s: %s", len(data), note, excerpt(red, string(data), 400)))
		})
	}
	return out, nil
}

// readBody reads up to limit+1 bytes of a body (one more than the cap shows it was cut).
// A body that announced its length starts in a buffer of that size: io.ReadAll starts at
// 512 bytes and doubles, so a 2-byte body took 512 and a 10 KB one about 30 KB. No more
// than maxUpfront is taken before the bytes arrive: a server may announce more than it
// sends, and a check's max_body_bytes may be large.
func readBody(body io.Reader, length, limit int64) ([]byte, error) {
	if length < 0 || length > limit {
		return io.ReadAll(io.LimitReader(body, limit+1))
	}
	b := make([]byte, 0, min(length, maxUpfront)+1) // the one more byte: room to see the end without growing
	for {
		if len(b) == cap(b) { // longer than announced, or than maxUpfront
			b = append(b, 0)[:len(b)]
		}
		room := b[len(b):cap(b)]
		if left := limit + 1 - int64(len(b)); int64(len(room)) > left {
			room = room[:left]
		}
		n, err := body.Read(room)
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil || int64(len(b)) > limit {
			return b, err
		}
	}
}

// maxUpfront bounds the buffer readBody takes for a body's announced length.
const maxUpfront = 64 << 10

// describeHTTPError turns transport errors into a sentence that says what happened.
func describeHTTPError(ctx context.Context, r *Request, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: timed out: %w within %s", r.Method, r.URL, errNoAnswerInTime, r.Timeout)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s %s: cancelled", r.Method, r.URL)
	}
	return fmt.Errorf("%s %s: %w", r.Method, r.URL, err)
}

// prefixed puts p before each line.
func prefixed(p string, lines []string) []string {
	for i, l := range lines {
		lines[i] = p + l
	}
	return lines
}

// headerBytes is about how many bytes headerLines makes of h.
func headerBytes(h http.Header) int {
	n := 0
	for k, vs := range h {
		n += len(k) + 4
		for _, v := range vs {
			n += len(v) + 2
		}
	}
	return n
}

// headerLines shows headers, one a line. A header whose name holds a credential is masked;
// so is every request header that is not clearly harmless (configs.PlainHeader): a config's
// X-Auth-Token or X-Scope-OrgID is a credential until proven otherwise.
func headerLines(h http.Header, request bool) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(h)) {
		if h[k] == nil {
			continue // never sent (resendable's mark)
		}
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

// headerOf is a configured header map as an http.Header.
func headerOf(m map[string]string) http.Header {
	h := make(http.Header, len(m))
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}

func looksJSON(contentType string, body []byte) bool {
	if strings.Contains(contentType, "json") {
		return true
	}
	b := bytes.TrimSpace(body)
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}
