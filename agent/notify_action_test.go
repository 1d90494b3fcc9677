package agent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// A rollback webhook that refuses the rollback (a 401 from a rotated token, a 404 from a
// moved endpoint, a redirect) is dead-lettered at once, and the people in the incident's
// thread hear that nothing was rolled back; a receiver that never answered, up to its last
// attempt, is reported as one that may have acted. (A refusal was dead-lettered silently:
// the thread kept saying "calling rollback" for good; and a timeout was reported as
// "nothing was rolled back", which vigil cannot know.)
func TestARefusedRollbackIsToldInTheThread(t *testing.T) {
	tests := []struct {
		name  string
		fault loopback.Fault
		want  []string
	}{
		{"refused", loopback.Fault{Status: 401, Body: []byte("bad token"), Times: 100},
			[]string{"FAILED", "401", "bad token", "nothing was rolled back"}},
		{"redirected", loopback.Fault{Status: 302, Times: 100},
			[]string{"FAILED", "302", "nothing was rolled back"}},
		{"never answered", loopback.Fault{Hang: true, Times: 100},
			[]string{"FAILED", "after 2 attempts", "never answered", "may have acted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := newTarget(t)
			slack := loopback.NewSlack(t)
			hook := loopback.NewWebhook(t)
			hook.Fail(tt.fault)
			rollback := fmt.Sprintf(`
  rollback:
    type: webhook
    url: %s
    secret: %s
    action: rollback
    timeout: 300ms
    max_attempts: 2`, hook.URL(), loopback.WebhookSecret)
			h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2",
				service: "on_failure: [slack, rollback]", top: "notifiers:" + slackNotifier(slack) + rollback}.String())
			tg.set("broken")
			bad := h.deploy("web", "v2")
			if d := h.verdict(bad, 30*time.Second); d["status"] != store.StatusFailed {
				t.Fatalf("status %v", d["status"])
			}
			h.outboxSettled(bad+":deploy_failed", map[string]string{"slack": store.OutboxDelivered, "rollback": store.OutboxDead})
			eventually(t, 30*time.Second, "the rollback's failure in the Slack thread", func() bool {
				roots := slack.Roots()
				return len(roots) == 1 && len(slack.Replies(roots[0].TS)) >= 1
			})
			reply := slack.Replies(slack.Roots()[0].TS)[0]
			got := reply.Text + reply.BlocksText()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("the thread's reply lacks %q:\n%s", w, got)
				}
			}
			if hook.Count(bad+":deploy_failed") != 0 {
				t.Errorf("the receiver accepted the rollback")
			}
		})
	}
}
