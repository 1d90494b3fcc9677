package agent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// Each notifier's entries go out in a lane of their own: a receiver that hangs for its
// notifier's whole timeout on each of several pages does not hold up a rollback written
// after them (the outbox waited for every notifier of a batch before it claimed again, so
// the rollback waited for the hanging pages in flight).
func TestAHangingReceiverDoesNotDelayARollback(t *testing.T) {
	tg := newTarget(t)
	slow, fast := loopback.NewWebhook(t), loopback.NewWebhook(t)
	slow.Fail(loopback.Fault{Hang: true, Times: 1000})
	var cfg strings.Builder
	cfg.WriteString("checks:\n")
	for i := range 5 {
		fmt.Fprintf(&cfg, "  - {name: c%d, kind: http, every: 1s, timeout: 2s, retries: 0, failure_threshold: 1, notify: [slow], request: {url: %q}}\n", i, tg.srv.URL+"/")
	}
	fmt.Fprintf(&cfg, "  - {name: home, kind: http, every: 1h, timeout: 2s, retries: 0, request: {url: %q}}\n", tg.srv.URL+"/")
	fmt.Fprintf(&cfg, `services:
  web: {checks: [home], verify: {interval: 200ms, count: 2}, on_failure: [rollback]}
notifiers:
  slow: {type: webhook, url: %q, secret: %s, timeout: 40s, max_attempts: 20}
  rollback: {type: webhook, url: %q, secret: %s, action: rollback, max_attempts: 20}
`, slow.URL(), loopback.WebhookSecret, fast.URL(), loopback.WebhookSecret)
	h := startAgent(t, "", cfg.String())
	tg.set("broken")
	eventually(t, 20*time.Second, "the slow receiver hanging on the checks' pages", func() bool { return slow.AllAttempts() >= 1 })
	id := h.deploy("web", "v2")
	if d := h.verdict(id, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("status %v", d["status"])
	}
	decided := time.Now()
	key := id + ":deploy_failed"
	eventually(t, 90*time.Second, "the rollback", func() bool { return fast.Count(key) == 1 })
	took := time.Since(decided)
	t.Logf("reliability: the rollback went out %s after the verdict while another receiver hung for 40s on each of its pages (tried %d times)",
		took.Round(time.Millisecond), slow.AllAttempts())
	// Not a speed: waiting out the page in flight would take its 40 s timeout; the margin
	// below it is for a loaded machine under -race.
	if took > 20*time.Second {
		t.Errorf("the rollback went out %s after the verdict: it waited for the hanging receiver", took)
	}
}

// A receiver that paces vigil (429 with Retry-After, Slack's rate limit under a burst of
// pages) pauses its lane, and the attempts it refuses so do not count toward max_attempts:
// every page of the burst goes out, once, none dead-lettered (most of a burst of 100 were,
// each 429 spending one of the entry's attempts while its siblings hit the limit too).
func TestAPacingReceiverLosesNoPage(t *testing.T) {
	pacedReceiverLosesNoPage(t, loopback.Fault{Status: 429, RetryAfter: "1", Times: 6}, "the four pages through the receiver's pacing")
	t.Logf("reliability: 4 pages through a receiver that answered 429 (Retry-After: 1) six times, with max_attempts 2: all delivered once, none dead")
}

// pacedReceiverLosesNoPage fails four checks whose pages go to a webhook that first answers
// with fault (a 429 or 503 with Retry-After), max_attempts 2: every page must be delivered
// once, none dead-lettered.
func pacedReceiverLosesNoPage(t *testing.T, fault loopback.Fault, what string) {
	t.Helper()
	tg := newTarget(t)
	hook := loopback.NewWebhook(t)
	hook.Fail(fault)
	var cfg strings.Builder
	cfg.WriteString("checks:\n")
	for i := range 4 {
		fmt.Fprintf(&cfg, "  - {name: c%d, kind: http, every: 1s, timeout: 2s, retries: 0, failure_threshold: 1, notify: [paced], request: {url: %q}}\n", i, tg.srv.URL+"/")
	}
	fmt.Fprintf(&cfg, "notifiers:\n  paced: {type: webhook, url: %q, secret: %s, max_attempts: 2}\n", hook.URL(), loopback.WebhookSecret)
	h := startAgent(t, "", cfg.String())
	tg.set("broken")
	eventually(t, 60*time.Second, what, func() bool { return len(hook.Counts()) == 4 })
	for key, n := range hook.Counts() {
		if n != 1 {
			t.Errorf("%s accepted %d times", key, n)
		}
		h.outboxSettled(key, map[string]string{"paced": store.OutboxDelivered})
	}
}
