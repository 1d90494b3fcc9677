package alerting_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
)

// Slack answers a post over its rate limit with 200 {"ok":false,"error":"ratelimited"} and
// the wait in Retry-After, or with "rate_limited" (too many messages to the channel) and no
// header. Both ask to wait: the outbox pauses the lane and spends no attempt, as for a
// 429. (Both were plain retries, the Retry-After ignored: a burst of pages spent its
// max_attempts on Slack's limit, TestASlackRateLimitedBurstLosesNoPage.) A code that says
// what to fix stays permanent.
func TestSlackRateLimitedInTheBody(t *testing.T) {
	t.Parallel()
	srv, n, _ := newSlack(t)
	for _, tt := range []struct {
		fault loopback.Fault
		wait  time.Duration
	}{
		{loopback.Fault{SlackError: "ratelimited", RetryAfter: "30"}, 30 * time.Second},
		{loopback.Fault{SlackError: "rate_limited"}, time.Second},
	} {
		srv.Fail("chat.postMessage", tt.fault)
		err := n.Deliver(t.Context(), deployFailed(), alerting.State{})
		if d, ok := alerting.RetryAfter(err); !ok || d != tt.wait || alerting.Permanent(err) || !strings.Contains(err.Error(), tt.fault.SlackError) {
			t.Errorf("%s: Deliver = %v; RetryAfter %v %v, permanent %v; want a retryable error waiting %v", tt.fault.SlackError, err, d, ok,
				alerting.Permanent(err), tt.wait)
		}
	}
	srv.Fail("chat.postMessage", loopback.Fault{SlackError: "channel_not_found", RetryAfter: "30"})
	if err := n.Deliver(t.Context(), deployFailed(), alerting.State{}); !alerting.Permanent(err) {
		t.Errorf("channel_not_found: %v, want permanent", err)
	} else if _, ok := alerting.RetryAfter(err); ok {
		t.Errorf("channel_not_found asks to wait: %v", err)
	}
	if err := n.Deliver(t.Context(), deployFailed(), alerting.State{}); err != nil || len(srv.Roots()) != 1 {
		t.Errorf("after the limit: %v, %d roots; want one", err, len(srv.Roots()))
	}
}
