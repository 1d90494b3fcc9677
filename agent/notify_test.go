package agent

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

func slackNotifier(s *loopback.Slack) string {
	return fmt.Sprintf(`
  slack:
    type: slack
    token: %s
    channel: "#deploys"
    api_url: %s`, loopback.SlackToken, s.APIURL())
}

func pagerDutyNotifier(p *loopback.PagerDuty) string {
	return fmt.Sprintf(`
  pager:
    type: pagerduty
    routing_key: %s
    url: %s
    severity: critical`, loopback.PagerDutyRoutingKey, p.URL())
}

// A failed deploy reaches people with evidence and the rollback webhook once; the rollback's
// result lands in the Slack thread; the next good deploy resolves the incident in Slack and
// PagerDuty. Slack's first answer is a 429, which is honoured.
func TestFailedDeployNotifiesEveryoneAndResolves(t *testing.T) {
	tg := newTarget(t)
	slack := loopback.NewSlack(t)
	pd := loopback.NewPagerDuty(t)
	hook := loopback.NewWebhook(t)
	slack.Fail("chat.postMessage", loopback.Fault{Status: 429, RetryAfter: "1"})
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2",
		service: "on_failure: [slack, pager, rollback]",
		top:     "notifiers:" + slackNotifier(slack) + pagerDutyNotifier(pd) + webhookNotifier("rollback", "rollback", hook)}.String())

	tg.set("broken")
	bad := h.deploy("web", "v2")
	if d := h.verdict(bad, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("status %v", d["status"])
	}
	eventually(t, 30*time.Second, "the webhook, a Slack root with the rollback's result, a PagerDuty trigger", func() bool {
		roots := slack.Roots()
		return hook.Count(bad+":deploy_failed") >= 1 && len(roots) == 1 && len(slack.Replies(roots[0].TS)) >= 1 && len(pd.Events()) >= 1
	})
	// Every notifier has the failure once and delivered, and nothing is pending for it: the
	// rollback is not sent again (the receiver's count, read now, is final).
	h.outboxSettled(bad+":deploy_failed", map[string]string{"slack": store.OutboxDelivered, "pager": store.OutboxDelivered, "rollback": store.OutboxDelivered})
	if n := hook.Count(bad + ":deploy_failed"); n != 1 {
		t.Errorf("the rollback webhook accepted %d deliveries of %s; want 1", n, bad+":deploy_failed")
	}
	root := slack.Roots()[0]
	for _, want := range []string{"web", "v2", "home", "status == 200"} {
		if !strings.Contains(string(root.Blocks)+root.Text, want) {
			t.Errorf("the Slack message lacks %q:\n%s\n%s", want, root.Text, root.Blocks)
		}
	}
	if got := slack.CallsTo("chat.postMessage"); len(got) < 2 {
		t.Errorf("the 429 should have been retried: %d postMessage calls", len(got))
	}
	reply := slack.Replies(root.TS)[0]
	if !strings.Contains(reply.Text+string(reply.Blocks), "rollback") {
		t.Errorf("the thread reply should report the rollback: %s %s", reply.Text, reply.Blocks)
	}
	if ch := pd.Changes(); len(ch) != 1 || !strings.Contains(ch[0].Payload.Summary, "v2") {
		t.Errorf("PagerDuty should get one change event for the deploy: %+v", ch)
	}
	trig := pd.Events()[0]
	if trig.Action != "trigger" || trig.Payload == nil || trig.Payload.Severity != "critical" {
		t.Fatalf("PagerDuty got %+v", trig)
	}

	tg.set("good")
	good := h.deploy("web", "v3")
	if d := h.verdict(good, 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("status %v", d["status"])
	}
	eventually(t, 30*time.Second, "PagerDuty resolved and the thread told", func() bool {
		return !pd.Open(trig.DedupKey) && len(slack.Replies(root.TS)) >= 2
	})
	if n := len(slack.Roots()); n != 1 {
		t.Errorf("the resolution opened a new Slack message instead of answering the thread: %d roots", n)
	}
	// The passing deploy's event has no entry for the rollback webhook at all.
	h.outboxSettled(good+":deploy_passed", map[string]string{"slack": store.OutboxDelivered, "pager": store.OutboxDelivered})
	if n := len(hook.Deliveries()); n != 1 {
		t.Errorf("the rollback webhook got %d requests; want only the failed deploy's", n)
	}
}

// Scheduled monitoring pages after failure_threshold failures in a row, not at one blip,
// and resolves after success_threshold passes.
func TestCheckThresholds(t *testing.T) {
	tg := newTarget(t)
	slack := loopback.NewSlack(t)
	cfg := fmt.Sprintf(`
checks:
  - name: home
    kind: http
    every: 1s
    timeout: 2s
    retries: 0
    failure_threshold: 2
    success_threshold: 2
    notify: [slack]
    request: {url: %q}
notifiers:%s
`, tg.srv.URL+"/", slackNotifier(slack))
	h := startAgent(t, "", cfg)
	failing := func() int {
		runs, _ := h.a.store.RecentRuns(t.Context(), "home", time.Now().Add(time.Hour), 100)
		n := 0
		for _, r := range runs {
			if r.Outcome == "fail" {
				n++
			}
		}
		return n
	}
	eventually(t, 20*time.Second, "a first passing run", func() bool { return h.a.lastResult("home") != nil })
	tg.set("broken")
	eventually(t, 20*time.Second, "the first failing run", func() bool { return failing() >= 1 })
	if n := len(slack.Roots()); n != 0 {
		t.Fatalf("one failing run paged: %d messages", n)
	}
	eventually(t, 20*time.Second, "check_failed in Slack", func() bool { return len(slack.Roots()) == 1 })
	h.a.writer.flush(t.Context())
	if n := failing(); n < 2 {
		t.Errorf("paged after %d failing runs; failure_threshold is 2", n)
	}
	root := slack.Roots()[0]
	tg.set("good")
	eventually(t, 20*time.Second, "check_recovered in the thread", func() bool { return len(slack.Replies(root.TS)) == 1 })
	if n := len(slack.Roots()); n != 1 {
		t.Errorf("%d root messages; the recovery belongs in the thread", n)
	}
	_, out := h.request("GET", "/api/v1/checks", "")
	if out["checks"].([]any)[0].(map[string]any)["incident_open"] != false {
		t.Errorf("the incident should be closed: %v", out)
	}
}

// A silenced service's failures are recorded, not sent; dry run announces without calling.
func TestSilenceAndDryRun(t *testing.T) {
	tg := newTarget(t)
	hook := loopback.NewWebhook(t)
	slack := loopback.NewSlack(t)
	cfg := webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2", service: "on_failure: [slack, rollback]",
		top: "notifiers:" + slackNotifier(slack) + webhookNotifier("rollback", "rollback", hook)}
	h := startAgent(t, "", cfg.String())
	if status, out := h.request("POST", "/api/v1/silences", `{"service":"web","duration":"1h","reason":"planned failover"}`); status != 201 {
		t.Fatalf("silence: %d %v", status, out)
	}
	tg.set("broken")
	muted := h.deploy("web", "v2")
	h.verdict(muted, 30*time.Second)
	_, out := h.request("GET", "/api/v1/outbox?state=silenced", "")
	if entries := out["entries"].([]any); len(entries) != 2 {
		t.Fatalf("want the slack and rollback entries recorded as silenced: %v", out)
	}
	// Recorded as silenced, each once, nothing pending: the outbox has nothing to send, and
	// a pass of it run here sends nothing.
	h.outboxSettled(muted+":deploy_failed", map[string]string{"slack": store.OutboxSilenced, "rollback": store.OutboxSilenced})
	h.deliverNow()
	if n := len(hook.Deliveries()) + len(hook.Rejected()) + len(slack.Messages()); n != 0 {
		t.Fatalf("a silenced failure was sent: %d requests", n)
	}
	h.stop()

	// Dry run: the webhook is announced in Slack, never called.
	hook2 := loopback.NewWebhook(t)
	cfg.service = "on_failure: [slack, rollback]\ndry_run: true"
	cfg.top = "notifiers:" + slackNotifier(slack) + webhookNotifier("rollback", "rollback", hook2)
	h2 := startAgent(t, "", cfg.String())
	d := h2.deploy("web", "v2")
	h2.verdict(d, 30*time.Second)
	eventually(t, 20*time.Second, "the dry-run entry", func() bool {
		_, out := h2.request("GET", "/api/v1/outbox?state=dry_run", "")
		return len(out["entries"].([]any)) == 1
	})
	eventually(t, 20*time.Second, "the Slack thread saying what would have been called", func() bool {
		roots := slack.Roots()
		return len(roots) == 1 && len(slack.Replies(roots[0].TS)) == 1
	})
	r := slack.Replies(slack.Roots()[0].TS)[0]
	if !strings.Contains(strings.ToLower(r.Text+string(r.Blocks)), "dry run") {
		t.Errorf("the reply should say dry run: %s %s", r.Text, r.Blocks)
	}
	h2.outboxSettled(d+":deploy_failed", map[string]string{"slack": store.OutboxDelivered, "rollback": store.OutboxDryRun})
	h2.outboxSettled(d+":deploy_failed:rollback", map[string]string{"slack": store.OutboxDelivered})
	if n := len(hook2.Deliveries()) + len(hook2.Rejected()); n != 0 {
		t.Errorf("dry run called the webhook %d times", n)
	}
}

// A receiver that is down for a while gets the notification once it is back; one that
// refuses it (4xx) dead-letters it, visible in the API and the metrics.
func TestReceiverDownThenUpAndDeadLetters(t *testing.T) {
	tg := newTarget(t)
	hook := loopback.NewWebhook(t)
	refuser := loopback.NewWebhook(t)
	refuser.Fail(loopback.Fault{Status: 400, Times: 100})
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2", service: "on_failure: [rollback, audit]",
		top: "notifiers:" + webhookNotifier("rollback", "rollback", hook) + strings.Replace(webhookNotifier("audit", "rollback", refuser), "action: rollback", "events: [deploy_failed]", 1)}.String())
	hook.Down()
	tg.set("broken")
	id := h.deploy("web", "v2")
	h.verdict(id, 30*time.Second)
	eventually(t, 20*time.Second, "a failed attempt", func() bool {
		_, out := h.request("GET", "/api/v1/outbox?state=pending", "")
		for _, e := range out["entries"].([]any) {
			if e.(map[string]any)["attempts"].(float64) >= 1 {
				return true
			}
		}
		return false
	})
	if err := hook.Up(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "delivery after the receiver came back", func() bool { return hook.Count(id+":deploy_failed") >= 1 })
	h.outboxSettled(id+":deploy_failed", map[string]string{"rollback": store.OutboxDelivered, "audit": store.OutboxDead})
	if n := hook.Count(id + ":deploy_failed"); n != 1 {
		t.Errorf("the rollback was accepted %d times; want 1", n)
	}

	_, out := h.request("GET", "/api/v1/outbox?state=dead", "")
	dead := out["entries"].([]any)
	if len(dead) != 1 || dead[0].(map[string]any)["notifier"] != "audit" || !strings.Contains(fmt.Sprint(dead[0]), "400") {
		t.Fatalf("dead letters: %v", out)
	}
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`vigil_notifications_total{notifier="audit",outcome="dead"} 1`, `vigil_notifications_total{notifier="rollback",outcome="delivered"} 1`,
		`vigil_rollbacks_total{service="web"} 1`, `vigil_deploy_verdicts_total{service="web",verdict="failed"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// A maintenance window from the config mutes notifications the same way.
func TestMaintenanceWindowMutes(t *testing.T) {
	tg := newTarget(t)
	hook := loopback.NewWebhook(t)
	now := time.Now().UTC()
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2", service: "on_failure: [rollback]",
		top: "notifiers:" + webhookNotifier("rollback", "rollback", hook) + fmt.Sprintf(`
maintenance:
  - name: failover
    services: [web]
    start: %q
    end: %q
    reason: planned failover`, now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))}.String())
	tg.set("broken")
	id := h.deploy("web", "v2")
	h.verdict(id, 30*time.Second)
	entries := h.outboxSettled(id+":deploy_failed", map[string]string{"rollback": store.OutboxSilenced})
	if len(entries) != 1 || !strings.Contains(entries[0].LastError, "maintenance window failover") {
		t.Fatalf("want the rollback recorded as muted by the window: %s", describeOutbox(entries))
	}
	h.deliverNow()
	if n := len(hook.Deliveries()) + len(hook.Rejected()); n != 0 {
		t.Errorf("the webhook was called %d times during maintenance", n)
	}
}

// Alert state survives a restart: the deploy that resolves an incident opened before the
// restart answers in the same Slack thread and resolves the same PagerDuty alert.
func TestAlertStateSurvivesARestart(t *testing.T) {
	tg := newTarget(t)
	slack := loopback.NewSlack(t)
	pd := loopback.NewPagerDuty(t)
	dir := t.TempDir()
	cfg := webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2", service: "on_failure: [slack, pager]",
		top: "notifiers:" + slackNotifier(slack) + pagerDutyNotifier(pd)}.String()
	h := startAgent(t, dir, cfg)
	tg.set("broken")
	h.verdict(h.deploy("web", "v2"), 30*time.Second)
	eventually(t, 20*time.Second, "the Slack root and the PagerDuty trigger", func() bool {
		return len(slack.Roots()) == 1 && len(pd.Events()) == 1
	})
	h.stop()

	tg.set("good")
	h2 := startAgent(t, dir, cfg)
	h2.verdict(h2.deploy("web", "v3"), 30*time.Second)
	root := slack.Roots()[0]
	key := pd.Events()[0].DedupKey
	eventually(t, 20*time.Second, "the resolution in the old thread and PagerDuty", func() bool {
		return len(slack.Replies(root.TS)) == 1 && !pd.Open(key)
	})
	if n := len(slack.Roots()); n != 1 {
		t.Errorf("%d Slack roots after the restart; the resolution belongs in the first thread", n)
	}
}
