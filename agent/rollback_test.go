package agent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// v2 fails and is rolled back to v1; the cause was not v2 (a dependency every version needs
// went down), so v1, deployed again, fails too. Rolling that back would go further back, or
// back to v2: vigil records the failure, tells people (Slack says why the rollback webhook
// is not called) and calls no rollback webhook. A deploy after it that is not a rollback is
// rolled back as any.
func TestAFailedRollbackIsNotRolledBack(t *testing.T) {
	tg := newTarget(t)
	slack := loopback.NewSlack(t)
	hook := loopback.NewWebhook(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2",
		service: "on_failure: [slack, rollback]",
		top:     "notifiers:" + slackNotifier(slack) + webhookNotifier("rollback", "rollback", hook)}.String())

	if d := h.verdict(h.deploy("web", "v1"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("v1: %v %v", d["status"], d["reason"])
	}
	tg.set("broken") // the dependency goes down: every version fails from here
	v2 := h.deploy("web", "v2")
	if d := h.verdict(v2, 30*time.Second); d["status"] != store.StatusFailed || d["rollback_of"] != nil {
		t.Fatalf("v2: %v, rollback of %v; want failed, not a rollback", d["status"], d["rollback_of"])
	}
	h.outboxSettled(v2+":deploy_failed", map[string]string{"slack": store.OutboxDelivered, "rollback": store.OutboxDelivered})

	back := h.deploy("web", "v1") // the rollback webhook's receiver puts v1 back
	d := h.verdict(back, 30*time.Second)
	if d["status"] != store.StatusFailed || d["rollback_of"] != v2 {
		t.Fatalf("v1 again: %v, rollback of %v; want failed, the rollback of %s", d["status"], d["rollback_of"], v2)
	}
	h.outboxSettled(back+":deploy_failed", map[string]string{"slack": store.OutboxDelivered}) // and no rollback entry
	if n := hook.Count(back + ":deploy_failed"); n != 0 {
		t.Errorf("the rollback webhook was called %d times for the failed rollback; want never", n)
	}
	want := fmt.Sprintf("not calling rollback: this deploy rolled back web v2 (deploy %s), which failed verification, and it fails too", v2)
	found := false
	for _, m := range slack.Roots() {
		found = found || strings.Contains(string(m.Blocks)+m.Text, want)
	}
	if !found {
		t.Errorf("no Slack message says %q:\n%v", want, slack.Roots())
	}

	page := h.page("/deploys/" + back)
	if !strings.Contains(page, `the rollback of <a href="/deploys/`+v2+`">web v2</a>, which failed verification: it fails too`) {
		t.Errorf("the rollback's page does not say what it rolled back:\n%s", page)
	}

	v3 := h.deploy("web", "v3") // not a rollback: rolled back as any failed deploy
	if d := h.verdict(v3, 30*time.Second); d["status"] != store.StatusFailed || d["rollback_of"] != nil {
		t.Fatalf("v3: %v, rollback of %v", d["status"], d["rollback_of"])
	}
	h.outboxSettled(v3+":deploy_failed", map[string]string{"slack": store.OutboxDelivered, "rollback": store.OutboxDelivered})
	if n := hook.Count(v3 + ":deploy_failed"); n != 1 {
		t.Errorf("v3's rollback webhook: %d deliveries; want 1", n)
	}
}
