package agent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// Four check incidents open at once, and Slack answers their posts 200
// {"ok":false,"error":"ratelimited"} with Retry-After: 1 six times, as it does to a burst:
// with max_attempts 2, each page is posted once and none is dead-lettered. (The answer
// was a plain retry: the lane went on posting into the limit and pages were dead-lettered
// after two refusals.)
func TestASlackRateLimitedBurstLosesNoPage(t *testing.T) {
	tg := newTarget(t)
	slack := loopback.NewSlack(t)
	slack.Fail("chat.postMessage", loopback.Fault{SlackError: "ratelimited", RetryAfter: "1", Times: 6})
	var cfg strings.Builder
	cfg.WriteString("checks:\n")
	for i := range 4 {
		fmt.Fprintf(&cfg, "  - {name: c%d, kind: http, every: 1s, timeout: 2s, retries: 0, failure_threshold: 1, notify: [slack], request: {url: %q}}\n",
			i, tg.srv.URL+"/")
	}
	cfg.WriteString("notifiers:" + slackNotifier(slack) + "\n    max_attempts: 2\n")
	h := startAgent(t, "", cfg.String())
	tg.set("broken")
	settled := func() (roots, dead int) {
		entries, err := h.a.store.Outbox(t.Context(), store.OutboxDead, 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(slack.Roots()), len(entries)
	}
	eventually(t, 60*time.Second, "the four pages through Slack's rate limit, or one dead-lettered", func() bool {
		roots, dead := settled()
		return roots+dead >= 4
	})
	if roots, _ := settled(); roots != 4 {
		entries, _ := h.a.store.Outbox(t.Context(), store.OutboxDead, 100)
		t.Errorf("%d threads, want 4; dead-lettered: %s", roots, describeOutbox(entries))
	}
}
