package agent

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/clock"
	"github.com/vigil-monitor/vigil/store"
)

// outboxEvents decodes the events the agent wrote for a notifier, oldest first.
func outboxEvents(t *testing.T, a *Agent, notifier string) []alerting.Event {
	t.Helper()
	entries, err := a.store.Outbox(t.Context(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []alerting.Event
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Notifier != notifier {
			continue
		}
		var ev alerting.Event
		if err := json.Unmarshal(entries[i].Payload, &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// A check incident links to the run that opened it, and while it stays open a failing run
// after repeat_interval re-sends it as a numbered reminder (once per interval, not once per
// run) on the same PagerDuty dedup_key; the recovery resolves it. The agent runs on a fake
// clock: each step advances it by the check's interval and waits for the run.
func TestIncidentRunLinkAndReminders(t *testing.T) {
	fc := clock.NewFake(time.Now())
	tg := newTarget(t)
	tg.set("broken")
	pd := loopback.NewPagerDuty(t)
	l := launch(t, t.TempDir(), fmt.Sprintf(`
checks:
  - {name: home, kind: http, every: 10m, timeout: 2s, retries: 0, failure_threshold: 1, repeat_interval: 1h,
     notify: [pager], request: {url: %q}}
notifiers:%s
`, tg.srv.URL+"/", pagerDutyNotifier(pd)), Options{Clock: fc, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	t.Cleanup(func() { _ = l.stop() })
	a := l.a
	runs := func() int64 { return tg.hits.Load() }
	step := func() {
		t.Helper()
		before := runs()
		fc.Advance(10 * time.Minute)
		eventually(t, 20*time.Second, fmt.Sprintf("the scheduled run after %d hits", before), func() bool {
			a.incMu.Lock()
			opened := a.incidents["home"] != nil
			a.incMu.Unlock()
			// The run must be over, not only have reached the target: a tick that finds
			// the previous run still going is skipped.
			a.sched.mu.Lock()
			idle := len(a.sched.running) == 0
			a.sched.mu.Unlock()
			return runs() > before && opened && idle
		})
		a.writer.flush(t.Context())
	}
	// Run sets the schedule just after it starts: advancing the clock before that would
	// move nothing.
	eventually(t, 10*time.Second, "the check to be scheduled", func() bool {
		a.sched.mu.Lock()
		defer a.sched.mu.Unlock()
		return len(a.sched.entries) == 1
	})
	for range 13 { // the first run opens the incident; runs 7 and 13 are 60 and 120 minutes later
		step()
	}
	tg.set("good")
	step()

	evs := outboxEvents(t, a, "pager")
	var got []string
	for _, ev := range evs {
		got = append(got, fmt.Sprintf("%s:%d", ev.Name, ev.Reminder))
	}
	want := "check_failed:0 check_failed:1 check_failed:2 check_recovered:0"
	if strings.Join(got, " ") != want {
		t.Fatalf("events %v; want %s", got, want)
	}
	if u := evs[0].FailedChecks[0].RunURL; !strings.HasPrefix(u, l.url+"/runs/") || u == l.url+"/runs/0" {
		t.Errorf("the incident's run link is %q; want the run that opened it", u)
	}
	if evs[1].Key == evs[0].Key || evs[1].Key == evs[2].Key || evs[1].Incident != evs[0].Incident {
		t.Errorf("reminders need their own idempotency keys in the same incident: %q %q %q", evs[0].Key, evs[1].Key, evs[2].Key)
	}
	eventually(t, 30*time.Second, "three triggers and a resolve", func() bool { return len(pd.Events()) == 4 })
	sent := pd.Events()
	for i, e := range sent {
		if e.DedupKey != sent[0].DedupKey {
			t.Errorf("event %d has dedup_key %q; want %q", i, e.DedupKey, sent[0].DedupKey)
		}
	}
	if !strings.Contains(sent[1].Payload.Summary, "still failing (reminder 1)") || sent[3].Action != "resolve" {
		t.Errorf("PagerDuty got %q then %s", sent[1].Payload.Summary, sent[3].Action)
	}
}

// A check removed from the config while its incident is open: the incident closes, in the
// same Slack thread and on the same PagerDuty dedup_key, saying the check left the config.
// Added back under the same name, a new failure opens a new incident.
func TestRemovingACheckClosesItsIncident(t *testing.T) {
	tg := newTarget(t)
	tg.set("broken")
	slack := loopback.NewSlack(t)
	pd := loopback.NewPagerDuty(t)
	cfg := func(withHome bool) string {
		home := ""
		if withHome {
			home = fmt.Sprintf(`  - {name: home, kind: http, every: 1s, timeout: 2s, retries: 0, failure_threshold: 1, notify: [slack, pager], request: {url: %q}}
`, tg.srv.URL+"/")
		}
		return fmt.Sprintf(`
checks:
%s  - {name: other, kind: http, every: 1h, request: {url: %q}}
notifiers:%s%s
`, home, tg.srv.URL+"/", slackNotifier(slack), pagerDutyNotifier(pd))
	}
	h := startAgent(t, "", cfg(true))
	eventually(t, 30*time.Second, "the incident's Slack thread and page", func() bool {
		return len(slack.Roots()) == 1 && len(pd.Events()) == 1
	})
	dedup := pd.Events()[0].DedupKey
	if err := os.WriteFile(h.cfgPath, []byte(cfg(false)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.a.Reload(); err != nil {
		t.Fatal(err)
	}
	root := slack.Roots()[0]
	eventually(t, 30*time.Second, "the closing reply and the resolve", func() bool {
		return len(slack.Replies(root.TS)) == 1 && !pd.Open(dedup)
	})
	if r := slack.Replies(root.TS)[0]; !strings.Contains(r.Text+r.BlocksText(), "left the config") {
		t.Errorf("the thread reply should say the check left the config: %s %s", r.Text, r.BlocksText())
	}
	in := h.a.incidents["home"]
	if in == nil || in.Open || in.Seq != 1 {
		t.Fatalf("incident state after removal: %+v", in)
	}

	if err := os.WriteFile(h.cfgPath, []byte(cfg(true)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.a.Reload(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "a new incident in a new thread", func() bool { return len(slack.Roots()) == 2 })
	if got := outboxEvents(t, h.a, "slack"); got[len(got)-1].Incident != "check:home:2" {
		t.Errorf("the check added back opened %q; want check:home:2", got[len(got)-1].Incident)
	}
	entries, _ := h.a.store.Outbox(t.Context(), store.OutboxDead, 100)
	if len(entries) != 0 {
		t.Errorf("dead letters: %v", entries[0].LastError)
	}
}

// A check's notify list changes while its incident is open (the check moves to another
// team's PagerDuty service, by a reload): its all-clear still reaches the notifier that
// was paged, or that page would stay open for ever, and the new one hears of it too.
func TestARecoveryReachesWhoWasPagedAfterNotifyChanged(t *testing.T) {
	tg := newTarget(t)
	oldPD, newPD := loopback.NewPagerDuty(t), loopback.NewPagerDuty(t)
	cfg := func(notify string) string {
		return fmt.Sprintf(`
checks:
  - {name: home, kind: http, every: 1s, timeout: 2s, retries: 0, failure_threshold: 1, notify: [%s], request: {url: %q}}
notifiers:
  old-team: {type: pagerduty, routing_key: %s, url: %s}
  new-team: {type: pagerduty, routing_key: %s, url: %s}
`, notify, tg.srv.URL+"/", loopback.PagerDutyRoutingKey, oldPD.URL(), loopback.PagerDutyRoutingKey, newPD.URL())
	}
	h := startAgent(t, "", cfg("old-team"))
	tg.set("broken")
	eventually(t, 30*time.Second, "the old team's page", func() bool { return len(oldPD.Events()) == 1 })
	page := oldPD.Events()[0]
	if err := os.WriteFile(h.cfgPath, []byte(cfg("new-team")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.a.Reload(); err != nil {
		t.Fatal(err)
	}
	tg.set("good")
	h.outboxSettled("check:home:1:check_recovered", map[string]string{"old-team": store.OutboxDelivered, "new-team": store.OutboxDelivered})
	if oldPD.Open(page.DedupKey) {
		t.Errorf("the old team's page %s is still open after the check recovered", page.DedupKey)
	}
}

// The same for a deploy's incident: on_failure changed between the failed deploy and the
// one that passes after it, and the pass still resolves the page the failure sent.
func TestAPassResolvesWhoWasPagedAfterOnFailureChanged(t *testing.T) {
	tg := newTarget(t)
	oldPD, newPD := loopback.NewPagerDuty(t), loopback.NewPagerDuty(t)
	cfg := func(route string) string {
		return webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2", service: "on_failure: [" + route + "]",
			top: fmt.Sprintf(`notifiers:
  old-team: {type: pagerduty, routing_key: %s, url: %s}
  new-team: {type: pagerduty, routing_key: %s, url: %s}`, loopback.PagerDutyRoutingKey, oldPD.URL(), loopback.PagerDutyRoutingKey, newPD.URL())}.String()
	}
	h := startAgent(t, "", cfg("old-team"))
	tg.set("broken")
	bad := h.deploy("web", "v2")
	if v := h.verdict(bad, 30*time.Second); v["status"] != store.StatusFailed {
		t.Fatalf("the broken deploy: %v", v["status"])
	}
	eventually(t, 30*time.Second, "the old team's page", func() bool { return len(oldPD.Events()) == 1 })
	page := oldPD.Events()[0]
	if err := os.WriteFile(h.cfgPath, []byte(cfg("new-team")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.a.Reload(); err != nil {
		t.Fatal(err)
	}
	tg.set("good")
	good := h.deploy("web", "v3")
	if v := h.verdict(good, 30*time.Second); v["status"] != store.StatusPassed {
		t.Fatalf("the fix: %v", v["status"])
	}
	// new-team triggered nothing for the incident: PagerDuty's notifier skips its resolve.
	h.outboxSettled(good+":deploy_passed", map[string]string{"old-team": store.OutboxDelivered, "new-team": store.OutboxSkipped})
	if oldPD.Open(page.DedupKey) {
		t.Errorf("the old team's page %s is still open after a deploy passed", page.DedupKey)
	}
}
