package alerting

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"
)

// defaultTransport is a notifier's own transport when main passes none: a few kept-alive
// connections to a few hosts.
func defaultTransport() http.RoundTripper {
	return &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           32,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
}

// newHTTPClient never follows redirects: a 302 turns a POST into a GET without the body,
// and the GET's 200 would pass for a delivered rollback.
func newHTTPClient(rt http.RoundTripper) *http.Client {
	return &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// errTooLarge is returned by a capped body once the answer passes its limit.
var errTooLarge = errors.New("answer body over the size limit")

// headSize is how much of every answer is read up front, to quote in errors.
const headSize = 4 << 10

// recorder is the HTTP client handed to slack-go and go-pagerduty for one attempt. Neither
// library bounds how much of an answer it reads, nor keeps the body of an error answer, nor
// (for PagerDuty) the Retry-After header: recorder caps every body, reads its head up front
// and remembers the last answer's status, header and head, so errors can say what the far
// end said.
type recorder struct {
	client    *http.Client
	userAgent string
	max       int64

	status int
	header http.Header
	head   []byte
	// cut: reading the answer's body failed after its status came (the connection died
	// mid-answer, or the attempt ran out while it trickled); never set for errTooLarge.
	cut bool
	// failed is the last request's own error when it got no answer: the libraries wrap it
	// with %v, losing what transportError tells apart (an untrusted certificate, a port
	// without TLS).
	failed error
	// wrote: the last request went out whole (httptrace's WroteRequest without an error):
	// without an answer, the far end may have acted on it.
	wrote atomic.Bool
}

// cause is what to classify for err, the library's error of an attempt: the request's own
// error when it got no answer.
func (r *recorder) cause(err error) error {
	if r != nil && r.failed != nil {
		return r.failed
	}
	return err
}

func newRecorder(client *http.Client, userAgent string, max int64) *recorder {
	return &recorder{client: client, userAgent: userAgent, max: max}
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	r.status, r.header, r.head, r.cut, r.failed = 0, nil, nil, false, nil
	r.wrote.Store(false)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { r.wrote.Store(i.Err == nil) },
	}))
	req.Header.Set("User-Agent", r.userAgent)
	resp, err := r.client.Do(req)
	if err != nil {
		r.failed = err
		return nil, err
	}
	r.status, r.header = resp.StatusCode, resp.Header
	head, err := io.ReadAll(io.LimitReader(resp.Body, headSize))
	r.head = head
	if err != nil {
		r.cut = true
		_ = resp.Body.Close()
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	resp.Body = &cappedBody{
		r:      io.MultiReader(bytes.NewReader(head), resp.Body),
		left:   r.max,
		closer: resp.Body,
		cut:    &r.cut,
	}
	return resp, nil
}

// cappedBody fails with errTooLarge once more than left bytes were read.
type cappedBody struct {
	r      io.Reader
	left   int64
	closer io.Closer
	cut    *bool // set when reading fails other than at the end or over the limit
}

func (c *cappedBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One more byte means the answer is over the limit; none means it ended there.
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if err != nil && err != io.EOF && c.cut != nil {
		*c.cut = true
	}
	return n, err
}

func (c *cappedBody) Close() error { return c.closer.Close() }
