package client

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/vigil-monitor/vigil/internal/backoff"
)

// maxAnswer is the most of an answer the client reads.
const maxAnswer = 8 << 20

// TooBigError is an answer longer than the client reads (8 MiB): asking again would get
// the same.
type TooBigError struct{ Method, Path string }

func (e *TooBigError) Error() string {
	return fmt.Sprintf("the agent's answer to %s %s is over 8 MiB, more than vigil reads", e.Method, e.Path)
}

// Busy says whether an answer of status is the agent (or a proxy in front of it) saying
// "not now": 502, 503 or 504. Asking again later may well be answered.
func Busy(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// RetryAfter is how long an answer's Retry-After (seconds, or an HTTP-date as some proxies
// send) asks the caller to wait, at most 30 s; 0 when it says nothing usable.
func RetryAfter(h http.Header) time.Duration {
	d, _ := backoff.RetryAfter(h.Get("Retry-After"), time.Now())
	return min(d, 30*time.Second)
}

// retrying sends a request (each within 30 s) and, while the agent gives no answer or
// answers 502, 503 or 504, sends it again until retryFor has passed, waiting 1 s, then
// twice as long each time up to 10 s, or as the answer's Retry-After says; onRetry, when
// not nil, is told of each. It returns the first other answer, or why there was none (an
// *APIError for the last 502-504, the context's error when it ended).
func (c *Client) retrying(ctx context.Context, method, path string, body any, header http.Header, retryFor time.Duration, onRetry func(err error, wait time.Duration)) (int, []byte, error) {
	until := time.Now().Add(retryFor)
	backoff := time.Second
	for {
		status, h, raw, err := c.do(ctx, method, path, body, header, 30*time.Second)
		wait := backoff
		switch {
		case err == nil && !Busy(status):
			return status, raw, nil
		case ctx.Err() != nil:
			return 0, nil, ctx.Err()
		case err != nil && Permanent(err):
			return 0, nil, err
		case err != nil:
		default:
			err = &APIError{Status: status, Message: Message(raw), RetryAfter: RetryAfter(h)}
			if d := RetryAfter(h); d > 0 {
				wait = d
			}
		}
		if time.Now().Add(wait).After(until) {
			return 0, nil, err
		}
		if onRetry != nil {
			onRetry(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, nil, ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}
