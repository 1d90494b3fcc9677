package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// A silence on the service changes nothing of who hears a deploy end: the end of a start
// that was told is never muted (a Slack thread left saying "Verifying" for ever, a deploy
// tracker's entry open), as a check incident's all-clear is not; the end of a start told
// to no one is told to no one. v2 starts before a silence and is superseded during it: its
// deploy_superseded is delivered. v3, started during the silence, is cancelled during it:
// muted as its start was. v4, started during the silence, is cancelled after it: muted
// still, as its start was (a reply under no thread, a tracker told of an end it never
// heard begin).
func TestAnEndOfAStartThatWasToldIsNeverMuted(t *testing.T) {
	tg := newTarget(t)
	sl := loopback.NewSlack(t)
	tracker := loopback.NewWebhook(t)
	yaml := webConfig{url: tg.srv.URL, verify: "initial_delay: 1m, interval: 1s, count: 2",
		service: "on_failure: [slack, tracker]",
		top: "notifiers:" + slackNotifier(sl) + "\n    events: [deploy_started, deploy_failed]" +
			webhookNotifier("tracker", "", tracker) + "\n    events: [deploy_started, deploy_failed]"}.String()
	h := startAgent(t, "", yaml)
	told := map[string]string{"slack": store.OutboxDelivered, "tracker": store.OutboxDelivered}
	muted := map[string]string{"slack": store.OutboxSilenced, "tracker": store.OutboxSilenced}

	v2 := h.deploy("web", "v2")
	h.outboxSettled(v2+":deploy_started", told)
	status, sil := h.request("POST", "/api/v1/silences", `{"service":"web","duration":"2h","reason":"load test"}`)
	if status != 201 && status != 200 {
		t.Fatalf("creating the silence: %d %v", status, sil)
	}
	v3 := h.deploy("web", "v3")
	h.outboxSettled(v3+":deploy_started", muted)
	h.outboxSettled(v2+":deploy_superseded", told)
	if n := tracker.Count(v2 + ":deploy_superseded"); n != 1 {
		t.Errorf("the tracker heard v2 start before the silence and got its deploy_superseded %d times; want once", n)
	}
	if roots := sl.Roots(); len(roots) != 1 || !strings.Contains(string(roots[0].Blocks), "Superseded by v3") {
		t.Errorf("Slack roots: %+v; want v2's only, superseded by v3", roots)
	}

	if status, out := h.request("POST", "/api/v1/deploys/"+v3+"/cancel", `{"reason":"rollout aborted"}`); status != 200 {
		t.Fatalf("cancelling v3: %d %v", status, out)
	}
	h.outboxSettled(v3+":deploy_cancelled", muted)

	v4 := h.deploy("web", "v4")
	h.outboxSettled(v4+":deploy_started", muted)
	id, _ := sil["id"].(string)
	if status, out := h.request("DELETE", "/api/v1/silences/"+id, ""); status >= 300 {
		t.Fatalf("deleting the silence %q: %d %v", id, status, out)
	}
	if status, out := h.request("POST", "/api/v1/deploys/"+v4+"/cancel", `{"reason":"rollout aborted"}`); status != 200 {
		t.Fatalf("cancelling v4: %d %v", status, out)
	}
	h.outboxSettled(v4+":deploy_cancelled", muted)
	h.deliverNow()
	if n, roots := len(tracker.Deliveries()), sl.Roots(); n != 2 || len(roots) != 1 || len(sl.Replies(roots[0].TS)) != 1 {
		t.Errorf("the tracker got %d deliveries (want v2's start and end), Slack has %d roots and v2's thread %d replies (want 1 and 1): %v",
			n, len(roots), len(sl.Replies(roots[0].TS)), tracker.Counts())
	}
}

// The pass that resolves a failed deploy's page is its all-clear, and a silence does not
// hold it back: v2 fails and pages, the service is silenced (people are on it), and the
// fix v3 passes during the silence: PagerDuty gets the resolve and v2's Slack thread says
// resolved (it stayed triggered for ever: the next pass resolves nothing, v3 having
// passed). A failure told to no one is not resolved for anyone either: v4 fails during
// the silence, the silence ends, and v5's pass is muted, not a resolve of a page PagerDuty
// never had.
func TestAPassResolvesAPageToldBeforeTheSilence(t *testing.T) {
	tg := newTarget(t)
	pd := loopback.NewPagerDuty(t)
	sl := loopback.NewSlack(t)
	yaml := webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2", service: "on_failure: [pager, slack]",
		top: "notifiers:" + pagerDutyNotifier(pd) + slackNotifier(sl)}.String()
	h := startAgent(t, "", yaml)
	told := map[string]string{"pager": store.OutboxDelivered, "slack": store.OutboxDelivered}
	muted := map[string]string{"pager": store.OutboxSilenced, "slack": store.OutboxSilenced}
	decide := func(version, want string) string {
		t.Helper()
		id := h.deploy("web", version)
		if d := h.verdict(id, 30*time.Second); d["status"] != want {
			t.Fatalf("%s: %v %v; want %s", version, d["status"], d["reason"], want)
		}
		return id
	}

	tg.set("broken")
	v2 := decide("v2", store.StatusFailed)
	h.outboxSettled(v2+":deploy_failed", told)
	status, sil := h.request("POST", "/api/v1/silences", `{"service":"web","duration":"2h","reason":"on it"}`)
	if status >= 300 {
		t.Fatalf("creating the silence: %d %v", status, sil)
	}
	tg.set("good")
	v3 := decide("v3", store.StatusPassed)
	h.outboxSettled(v3+":deploy_passed", told)
	h.deliverNow()
	if root := sl.Roots(); len(root) != 1 || !strings.Contains(string(root[0].Blocks), "Resolved") {
		t.Errorf("Slack after v3 passed: %+v; want v2's thread, resolved", root)
	}

	tg.set("broken")
	v4 := decide("v4", store.StatusFailed)
	h.outboxSettled(v4+":deploy_failed", muted)
	id, _ := sil["id"].(string)
	if status, out := h.request("DELETE", "/api/v1/silences/"+id, ""); status >= 300 {
		t.Fatalf("deleting the silence: %d %v", status, out)
	}
	tg.set("good")
	v5 := decide("v5", store.StatusPassed)
	h.outboxSettled(v5+":deploy_passed", muted)
	h.deliverNow()

	var got []string
	for _, e := range pd.Events() {
		got = append(got, e.Action+" "+e.DedupKey)
	}
	if want := []string{"trigger vigil:" + v2, "resolve vigil:" + v2}; strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("PagerDuty events: %v; want %v", got, want)
	}
}
