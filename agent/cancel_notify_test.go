package agent

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// A cancelled deploy closes what its deploy_started opened: the Slack thread that said
// "verifying" gets a reply and its root says cancelled, with the reason; the deploy
// tracker's webhook gets deploy_cancelled once, under its Idempotency-Key; the rollback
// webhook is never called, and PagerDuty (a change event at the start, nothing paged) is
// sent nothing. A cancel sent again sends nothing again.
func TestACancelledDeployClosesWhatItsStartOpened(t *testing.T) {
	tg := newTarget(t)
	sl := loopback.NewSlack(t)
	pd := loopback.NewPagerDuty(t)
	tracker := loopback.NewWebhook(t)
	rollback := loopback.NewWebhook(t)
	yaml := webConfig{url: tg.srv.URL, verify: "initial_delay: 1m, interval: 1s, count: 2",
		service: "on_failure: [slack, pager, tracker, rollback]",
		top: "notifiers:" + slackNotifier(sl) + "\n    events: [deploy_started, deploy_failed]" + pagerDutyNotifier(pd) +
			webhookNotifier("tracker", "", tracker) + "\n    events: [deploy_started, deploy_failed]" +
			webhookNotifier("rollback", "rollback", rollback)}.String()
	h := startAgent(t, "", yaml)

	id := h.deploy("web", "v3")
	h.outboxSettled(id+":deploy_started", map[string]string{"slack": store.OutboxDelivered, "pager": store.OutboxDelivered,
		"tracker": store.OutboxDelivered})
	roots := sl.Roots()
	if len(roots) != 1 || !strings.Contains(roots[0].Text, "Verifying the deploy of web v3") {
		t.Fatalf("Slack roots after deploy_started: %+v; want one, verifying web v3", roots)
	}

	status, out := h.request("POST", "/api/v1/deploys/"+id+"/cancel", `{"reason":"Argo Rollouts aborted web"}`)
	if status != 200 || out["status"] != store.StatusCancelled {
		t.Fatalf("cancel: %d %v", status, out)
	}
	key := id + ":deploy_cancelled"
	h.outboxSettled(key, map[string]string{"slack": store.OutboxDelivered, "tracker": store.OutboxDelivered})

	replies := sl.Replies(roots[0].TS)
	if len(replies) != 1 || !strings.Contains(replies[0].Text, "cancelled: Argo Rollouts aborted web") ||
		!strings.Contains(string(replies[0].Blocks), "Cancelled: Argo Rollouts aborted web") {
		t.Errorf("the thread's replies: %d, the first %q; want one saying \"Cancelled: Argo Rollouts aborted web\"", len(replies), firstText(replies))
	}
	root := sl.Roots()[0]
	if root.Updates == 0 || !strings.Contains(string(root.Blocks), "*Status:* Cancelled: Argo Rollouts aborted web") {
		t.Errorf("the root after the cancel (%d updates): %s %s; want its status cancelled, with the reason", root.Updates, root.Text, root.Blocks)
	}

	if n := tracker.Count(key); n != 1 {
		t.Errorf("the tracker got %s %d times; want once", key, n)
	}
	for _, d := range tracker.Deliveries() {
		if d.Key != key {
			continue
		}
		if d.Event != "deploy_cancelled" || d.Payload["event"] != "deploy_cancelled" || d.Payload["summary"] != "cancelled: Argo Rollouts aborted web" ||
			d.Payload["incident"] != id || fmt.Sprint(d.Payload["deploy"]) == "<nil>" {
			t.Errorf("the tracker's deploy_cancelled: event %q, payload %v", d.Event, d.Payload)
		}
	}
	if n := rollback.AllAttempts(); n != 0 {
		t.Errorf("the rollback webhook was called %d times for a cancel; want never: %v", n, rollback.Counts())
	}
	if evs := pd.Events(); len(evs) != 0 {
		t.Errorf("PagerDuty got %d Events v2 events for a deploy that started and was cancelled; want none: %+v", len(evs), evs)
	}

	// The cancel sent again decides nothing, so it writes and sends nothing more.
	if status, _ := h.request("POST", "/api/v1/deploys/"+id+"/cancel", ""); status != 200 {
		t.Fatalf("the cancel again: %d", status)
	}
	h.outboxSettled(key, map[string]string{"slack": store.OutboxDelivered, "tracker": store.OutboxDelivered})
	h.deliverNow()
	if n := tracker.Count(key); n != 1 || len(sl.Replies(roots[0].TS)) != 1 {
		t.Errorf("after the cancel again: the tracker got it %d times, the thread has %d replies; want 1 and 1", n, len(sl.Replies(roots[0].TS)))
	}
}

// firstText is the text and blocks of the first message, "" when there is none.
func firstText(msgs []loopback.SlackMessage) string {
	if len(msgs) == 0 {
		return ""
	}
	return msgs[0].Text + " " + string(msgs[0].Blocks)
}
