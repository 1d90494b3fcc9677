package agent

import (
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// startedDeploy is a deploy of web whose deploy_started reached every kind of receiver a
// deploy's notifications go to, on loopback: Slack (the thread that says "verifying"),
// PagerDuty (a change event, nothing paged), the deploy tracker's webhook, and the rollback
// webhook (which hears of a failure only). The tests of what a deploy ended before its
// verdict (cancelled, superseded) closes start from it.
type startedDeploy struct {
	t                 *testing.T
	h                 *harness
	id                string
	sl                *loopback.Slack
	pd                *loopback.PagerDuty
	tracker, rollback *loopback.Webhook
	thread            string // the timestamp of the root deploy_started posted
	updates           int    // the root's updates once the closing event was delivered
}

// startDeploy registers web version and waits for its deploy_started to be delivered.
func startDeploy(t *testing.T, version string) *startedDeploy {
	t.Helper()
	tg := newTarget(t)
	d := &startedDeploy{t: t, sl: loopback.NewSlack(t), pd: loopback.NewPagerDuty(t), tracker: loopback.NewWebhook(t), rollback: loopback.NewWebhook(t)}
	d.h = startAgent(t, "", webConfig{url: tg.srv.URL, verify: "initial_delay: 1m, interval: 1s, count: 2",
		service: "on_failure: [slack, pager, tracker, rollback]",
		top: "notifiers:" + slackNotifier(d.sl) + "\n    events: [deploy_started, deploy_failed]" + pagerDutyNotifier(d.pd) +
			webhookNotifier("tracker", "", d.tracker) + "\n    events: [deploy_started, deploy_failed]" +
			webhookNotifier("rollback", "rollback", d.rollback)}.String())
	d.id = d.h.deploy("web", version)
	d.h.outboxSettled(d.id+":deploy_started", map[string]string{"slack": store.OutboxDelivered, "pager": store.OutboxDelivered,
		"tracker": store.OutboxDelivered})
	roots := d.sl.Roots()
	if len(roots) != 1 || !strings.Contains(roots[0].Text, "Verifying the deploy of web "+version) {
		t.Fatalf("Slack roots after deploy_started: %+v; want one, verifying web %s", roots, version)
	}
	d.thread = roots[0].TS
	return d
}

// closing is what the event that ends a started deploy before its verdict must have sent.
type closing struct {
	event   string // deploy_cancelled, deploy_superseded
	summary string // the tracker's payload summary, and in the thread's reply
	reply   string // in the reply's blocks
	// root are in the root's blocks once updated, notRoot is not; updates is how many
	// times it was updated (0: at least once).
	root    []string
	notRoot string
	updates int
	// payload says what else is wrong with the tracker's payload ("": nothing).
	payload func(map[string]any) string
}

// key is the closing event's outbox key.
func (d *startedDeploy) key(c closing) string { return d.id + ":" + c.event }

// closed waits for the closing event to be delivered, and checks it: one reply in the
// deploy's thread, its root updated to say so, the tracker's webhook called once under its
// Idempotency-Key; the rollback webhook never called, PagerDuty sent nothing.
func (d *startedDeploy) closed(c closing) {
	t := d.t
	t.Helper()
	key := d.key(c)
	d.h.outboxSettled(key, map[string]string{"slack": store.OutboxDelivered, "tracker": store.OutboxDelivered})

	replies := d.sl.Replies(d.thread)
	if len(replies) != 1 || !strings.Contains(replies[0].Text, c.summary) || !strings.Contains(string(replies[0].Blocks), c.reply) {
		t.Errorf("the thread's replies: %d, the first %q; want one saying %q (%s)", len(replies), firstText(replies), c.reply, c.summary)
	}
	root := d.sl.Roots()[0]
	d.updates = root.Updates
	ok := root.Updates == c.updates || c.updates == 0 && root.Updates > 0
	for _, s := range c.root {
		ok = ok && strings.Contains(string(root.Blocks), s)
	}
	if !ok || c.notRoot != "" && strings.Contains(string(root.Blocks), c.notRoot) {
		t.Errorf("the root after %s (%d updates): %s %s; want it updated to say %q", c.event, root.Updates, root.Text, root.Blocks, c.root)
	}

	if n := d.tracker.Count(key); n != 1 {
		t.Errorf("the tracker got %s %d times; want once", key, n)
	}
	for _, dl := range d.tracker.Deliveries() {
		if dl.Key != key {
			continue
		}
		wrong := ""
		if c.payload != nil {
			wrong = c.payload(dl.Payload)
		}
		if dl.Event != c.event || dl.Payload["event"] != c.event || dl.Payload["summary"] != c.summary || dl.Payload["incident"] != d.id || wrong != "" {
			t.Errorf("the tracker's %s: event %q, payload %v %s", c.event, dl.Event, dl.Payload, wrong)
		}
	}
	if n := d.rollback.AllAttempts(); n != 0 {
		t.Errorf("the rollback webhook was called %d times for %s; want never: %v", n, c.event, d.rollback.Counts())
	}
	if evs := d.pd.Events(); len(evs) != 0 {
		t.Errorf("PagerDuty got %d Events v2 events for a deploy that started and was ended by %s; want none: %+v", len(evs), c.event, evs)
	}
}

// closedOnce checks, after what closed the deploy was sent again, that nothing more went
// out: the tracker still has it once, the thread one reply, the root no other update.
func (d *startedDeploy) closedOnce(c closing) {
	t := d.t
	t.Helper()
	key := d.key(c)
	d.h.outboxSettled(key, map[string]string{"slack": store.OutboxDelivered, "tracker": store.OutboxDelivered})
	d.h.deliverNow()
	if n, r, u := d.tracker.Count(key), len(d.sl.Replies(d.thread)), d.sl.Roots()[0].Updates; n != 1 || r != 1 || u != d.updates {
		t.Errorf("sent again: the tracker got %s %d times, the thread has %d replies and its root %d updates; want 1, 1 and %d",
			key, n, r, u, d.updates)
	}
}

// firstText is the text and blocks of the first message, "" when there is none.
func firstText(msgs []loopback.SlackMessage) string {
	if len(msgs) == 0 {
		return ""
	}
	return msgs[0].Text + " " + string(msgs[0].Blocks)
}
