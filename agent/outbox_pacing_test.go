package agent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// A receiver down for maintenance says so with a 503 and Retry-After: like a 429's, that
// pauses its lane and spends none of the entries' attempts (a 503's Retry-After was not
// read: each 503 spent an attempt, and with max_attempts 2 every page was dead-lettered).
func TestAReceiverInMaintenanceLosesNoPage(t *testing.T) {
	tg := newTarget(t)
	hook := loopback.NewWebhook(t)
	hook.Fail(loopback.Fault{Status: 503, RetryAfter: "1", Times: 8})
	var cfg strings.Builder
	cfg.WriteString("checks:\n")
	for i := range 4 {
		fmt.Fprintf(&cfg, "  - {name: c%d, kind: http, every: 1s, timeout: 2s, retries: 0, failure_threshold: 1, notify: [paced], request: {url: %q}}\n", i, tg.srv.URL+"/")
	}
	fmt.Fprintf(&cfg, "notifiers:\n  paced: {type: webhook, url: %q, secret: %s, max_attempts: 2}\n", hook.URL(), loopback.WebhookSecret)
	h := startAgent(t, "", cfg.String())
	tg.set("broken")
	eventually(t, 60*time.Second, "the four pages after the receiver's maintenance", func() bool { return len(hook.Counts()) == 4 })
	for key, n := range hook.Counts() {
		if n != 1 {
			t.Errorf("%s accepted %d times", key, n)
		}
		h.outboxSettled(key, map[string]string{"paced": store.OutboxDelivered})
	}
}
