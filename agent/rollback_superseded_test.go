package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// The rollback superseded: v2 fails, its rollback webhook is called and pages are sent;
// the rollback's receiver puts v1 back (a deploy with rollback_of v2), and a fix, v3, is
// registered while v1 verifies. v1's deploy_superseded closes v1's own start (its Slack
// thread, the tracker's entry, naming it the rollback of v2 and superseded by v3) and
// touches nothing of v2's: v2's thread and page stay open until v3 passes, which resolves
// them. Nothing pages for v1 or v3, and the rollback webhook is called once, for v2.
func TestARollbackSupersededByAFixLeavesTheFailureToTheFix(t *testing.T) {
	tg := newTarget(t)
	sl := loopback.NewSlack(t)
	pd := loopback.NewPagerDuty(t)
	tracker := loopback.NewWebhook(t)
	rollback := loopback.NewWebhook(t)
	yaml := webConfig{url: tg.srv.URL, verify: "interval: 1s, count: 3",
		service: "on_failure: [slack, pager, tracker, rollback]",
		top: "notifiers:" + slackNotifier(sl) + "\n    events: [deploy_started, deploy_failed]" + pagerDutyNotifier(pd) +
			webhookNotifier("tracker", "", tracker) + webhookNotifier("rollback", "rollback", rollback)}.String()
	h := startAgent(t, "", yaml)

	if d := h.verdict(h.deploy("web", "v1"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("v1: %v %v", d["status"], d["reason"])
	}
	tg.set("broken")
	v2 := h.deploy("web", "v2")
	if d := h.verdict(v2, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("v2: %v %v; want failed", d["status"], d["reason"])
	}
	h.outboxSettled(v2+":deploy_failed", map[string]string{"slack": store.OutboxDelivered, "pager": store.OutboxDelivered,
		"tracker": store.OutboxDelivered, "rollback": store.OutboxDelivered})

	tg.set("good") // the rollback webhook's receiver put v1 back
	back := h.deploy("web", "v1")
	h.outboxSettled(back+":deploy_started", map[string]string{"slack": store.OutboxDelivered, "pager": store.OutboxDelivered,
		"tracker": store.OutboxDelivered})
	v3 := h.deploy("web", "v3")
	if d := h.verdict(back, 5*time.Second); d["status"] != store.StatusSuperseded || d["rollback_of"] != v2 || d["superseded_by"] != v3 {
		t.Fatalf("the rollback after v3's registration: %v, rollback of %v, superseded by %v; want superseded by %s, the rollback of %s",
			d["status"], d["rollback_of"], d["superseded_by"], v3, v2)
	}
	h.outboxSettled(back+":deploy_superseded", map[string]string{"slack": store.OutboxDelivered, "tracker": store.OutboxDelivered})
	if d := h.verdict(v3, 30*time.Second); d["status"] != store.StatusPassed || d["rollback_of"] != nil {
		t.Fatalf("v3: %v %v, rollback of %v; want passed, not a rollback", d["status"], d["reason"], d["rollback_of"])
	}
	h.outboxSettled(v3+":deploy_passed", map[string]string{"slack": store.OutboxDelivered, "pager": store.OutboxDelivered,
		"tracker": store.OutboxDelivered})

	// The tracker knows the rollback for one, from its start to its end.
	for _, key := range []string{back + ":deploy_started", back + ":deploy_superseded"} {
		if n := tracker.Count(key); n != 1 {
			t.Errorf("the tracker got %s %d times; want once", key, n)
		}
	}
	for _, d := range tracker.Deliveries() {
		dep, _ := d.Payload["deploy"].(map[string]any)
		if dep["id"] != back {
			continue
		}
		if dep["rollback_of"] != v2 {
			t.Errorf("the tracker's %s for the rollback: its deploy has rollback_of %v; want %s: %v", d.Event, dep["rollback_of"], v2, dep)
		}
		if newer, _ := d.Payload["superseded_by"].(map[string]any); d.Event == "deploy_superseded" && (newer["id"] != v3 || newer["version"] != "v3") {
			t.Errorf("the tracker's deploy_superseded names %v as the newer deploy; want v3 (%s)", newer, v3)
		}
	}

	// Slack: v2's thread is resolved by v3, the rollback's own says superseded by v3, and
	// nothing of the supersede lands in v2's.
	var v2Root, backRoot *loopback.SlackMessage
	for _, m := range sl.Roots() {
		switch {
		case strings.Contains(m.Text, "web v2"):
			v2Root = &m
		case strings.Contains(string(m.Blocks), back):
			backRoot = &m
		}
	}
	if v2Root == nil || backRoot == nil {
		t.Fatalf("Slack roots: %+v; want v2's and the rollback's", sl.Roots())
	}
	if b := string(v2Root.Blocks); !strings.Contains(b, "Resolved") || strings.Contains(b, "Superseded") {
		t.Errorf("v2's root after v3 passed: %s; want it resolved, and nothing of the rollback's supersede", b)
	}
	for _, r := range sl.Replies(v2Root.TS) {
		if strings.Contains(r.Text, "superseded") {
			t.Errorf("v2's thread got the rollback's supersede: %q", r.Text)
		}
	}
	if b := string(backRoot.Blocks); !strings.Contains(b, "Superseded by v3") {
		t.Errorf("the rollback's root: %s; want \"Superseded by v3\"", b)
	}

	// PagerDuty: v2 triggered, then resolved by v3; nothing else paged.
	var actions []string
	for _, e := range pd.Events() {
		actions = append(actions, e.Action+" "+e.DedupKey)
	}
	if len(actions) != 2 || !strings.HasPrefix(actions[0], "trigger") || !strings.HasPrefix(actions[1], "resolve") ||
		!strings.Contains(actions[0], v2) || !strings.Contains(actions[1], v2) || pd.Open(strings.Fields(actions[0])[1]) {
		t.Errorf("PagerDuty events: %v; want v2's trigger and its resolve, and nothing else", actions)
	}
	if n := rollback.AllAttempts(); n != 1 || rollback.Count(v2+":deploy_failed") != 1 {
		t.Errorf("the rollback webhook: %v; want v2's deploy_failed once, and nothing else", rollback.Counts())
	}
}
