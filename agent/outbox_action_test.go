package agent

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// What the incident's thread says of a rollback webhook depends on what its receiver may
// have done, over all of its attempts, not on the last one alone:
//   - a receiver that took the request and whose answer never came (it was acting), then
//     answered the retry 503: it may have rolled back (it was told "nothing was rolled
//     back" while the receiver had the rollback);
//   - a receiver that could not be reached at all (connection refused): nothing was sent,
//     so nothing was rolled back (it was told "it never answered, so it may have acted",
//     and the on-call waited to check a receiver that never heard of it);
//   - a receiver keyed by Idempotency-Key that takes longer to roll back than an attempt
//     waits (the 40 s rollback), answering a retry meanwhile 409: it is asked again until it
//     answers, once, and the thread says the rollback was accepted (the 409 was a refusal,
//     dead-lettered: "FAILED ... nothing was rolled back" while it rolled back).
func TestARollbacksOutcomeWeighsEveryAttempt(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := "http://" + closed.Addr().String() + "/hook"
	closed.Close()

	tests := []struct {
		name     string
		setup    func(*loopback.Webhook)
		url      string
		attempts int
		outcome  string
		want     []string
		acted    int
	}{
		{"acted, then answered 503", func(h *loopback.Webhook) {
			h.Fail(loopback.Fault{AcceptThenHang: true})
			h.Fail(loopback.Fault{Status: 503, Times: 100})
		}, "", 2, store.OutboxDead, []string{"FAILED", "after 2 attempts", "503", "an earlier attempt got no answer", "may have acted"}, 1},
		{"never reached", func(*loopback.Webhook) {}, unreachable, 2, store.OutboxDead,
			[]string{"FAILED", "after 2 attempts", "not sent", "nothing was rolled back"}, 0},
		{"slow, keyed by Idempotency-Key", func(h *loopback.Webhook) { h.Idempotent, h.Work = true, 3*time.Second },
			"", 8, store.OutboxDelivered, []string{"accepted the rollback", "production goes back to"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := newTarget(t)
			slack := loopback.NewSlack(t)
			hook := loopback.NewWebhook(t)
			tt.setup(hook)
			url := tt.url
			if url == "" {
				url = hook.URL()
			}
			rollback := fmt.Sprintf(`
  rollback:
    type: webhook
    url: %s
    secret: %s
    action: rollback
    timeout: 300ms
    max_attempts: %d`, url, loopback.WebhookSecret, tt.attempts)
			h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2",
				service: "on_failure: [slack, rollback]", top: "notifiers:" + slackNotifier(slack) + rollback}.String())
			tg.set("good")
			good := h.deploy("web", "v1")
			if d := h.verdict(good, 30*time.Second); d["status"] != store.StatusPassed {
				t.Fatalf("v1: status %v", d["status"])
			}
			tg.set("broken")
			bad := h.deploy("web", "v2")
			if d := h.verdict(bad, 30*time.Second); d["status"] != store.StatusFailed {
				t.Fatalf("v2: status %v", d["status"])
			}
			h.outboxSettled(bad+":deploy_failed", map[string]string{"slack": store.OutboxDelivered, "rollback": tt.outcome})
			eventually(t, 30*time.Second, "the rollback's outcome in the Slack thread", func() bool {
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
			if n := hook.Count(bad + ":deploy_failed"); n != tt.acted {
				t.Errorf("the receiver acted %d times, want %d", n, tt.acted)
			}
		})
	}
}
