package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// A receiver down for maintenance says so with a 503 and Retry-After: like a 429's, that
// pauses its lane and spends none of the entries' attempts (a 503's Retry-After was not
// read: each 503 spent an attempt, and with max_attempts 2 every page was dead-lettered).
func TestAReceiverInMaintenanceLosesNoPage(t *testing.T) {
	pacedReceiverLosesNoPage(t, loopback.Fault{Status: 503, RetryAfter: "1", Times: 8}, "the four pages after the receiver's maintenance")
}

// A receiver that asks for a day's wait (a proxy's rate limit, a misread header) holds
// its lane, and every page behind it, at most outboxMaxBackoff, as a retry never waits
// longer: the page is tried again within 5 minutes, not tomorrow. (The lane paused, and
// the entry was due again, a whole day later.)
func TestARetryAfterOfADayWaitsAtMostTheBackoffCap(t *testing.T) {
	for _, status := range []int{429, 503} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			tg := newTarget(t)
			hook := loopback.NewWebhook(t)
			hook.Fail(loopback.Fault{Status: status, RetryAfter: "86400", Times: 100})
			cfg := fmt.Sprintf(`checks:
  - {name: home, kind: http, every: 1s, timeout: 2s, retries: 0, failure_threshold: 1, notify: [paced], request: {url: %q}}
notifiers:
  paced: {type: webhook, url: %q, secret: %s}
`, tg.srv.URL+"/", hook.URL(), loopback.WebhookSecret)
			h := startAgent(t, "", cfg)
			tg.set("broken")
			eventually(t, 30*time.Second, "the page refused with a day's Retry-After", func() bool { return hook.AllAttempts() >= 1 })
			key := hook.Deliveries()[0].Key
			var entries []*store.OutboxEntry
			eventually(t, 10*time.Second, "the refusal recorded", func() bool {
				entries, _ = h.a.store.OutboxByKey(t.Context(), key)
				return len(entries) == 1 && entries[0].LastError != ""
			})
			limit := time.Now().Add(outboxMaxBackoff + time.Minute)
			if e := entries[0]; e.Status != store.OutboxPending || e.NextAttempt.After(limit) {
				t.Errorf("entry %s, next attempt %s; want pending, due within %s", e.Status, e.NextAttempt.Format(time.RFC3339), outboxMaxBackoff)
			}
			if until := h.a.lanes.pausedUntil("paced"); until.After(limit) {
				t.Errorf("the lane is paused until %s; want at most %s", until.Format(time.RFC3339), outboxMaxBackoff)
			}
		})
	}
}
