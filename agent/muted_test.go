package agent

import (
	"fmt"
	"html"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/clock"
	"github.com/vigil-monitor/vigil/store"
)

// A check incident that opens in a maintenance window is told to no one. When the window
// ends and the check still fails, its next failing run announces it (as Alertmanager sends
// an alert still firing when its silence expires, and Gatus one still failing after
// maintenance): one page, one Slack thread, and the recovery later on the same dedup_key
// and thread. An incident that closes before it was ever announced is not announced by its
// closing either. The agent runs on a fake clock, a run of both checks every 10 minutes.
func TestAnIncidentOpenedMutedIsAnnouncedWhenTheMuteEnds(t *testing.T) {
	db, cache := newTarget(t), newTarget(t)
	slack := loopback.NewSlack(t)
	pd := loopback.NewPagerDuty(t)
	fc := clock.NewFake(time.Now().Truncate(time.Second))
	t0 := fc.Now()
	l := launch(t, t.TempDir(), fmt.Sprintf(`
checks:
  - {name: db, kind: http, every: 10m, timeout: 2s, retries: 0, failure_threshold: 1, notify: [slack, pager], request: {url: %q}}
  - {name: cache, kind: http, every: 10m, timeout: 2s, retries: 0, failure_threshold: 1, notify: [slack, pager], request: {url: %q}}
notifiers:%s%s
maintenance:
  - {name: nightly, checks: [db, cache], start: %q, end: %q, reason: vacuum}
`, db.srv.URL+"/", cache.srv.URL+"/", slackNotifier(slack), pagerDutyNotifier(pd),
		t0.Add(-time.Minute).UTC().Format(time.RFC3339), t0.Add(25*time.Minute).UTC().Format(time.RFC3339)),
		Options{Clock: fc, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	t.Cleanup(func() { _ = l.stop() })
	a := l.a
	step := stepper(t, a, fc, db, cache)
	entries := func() map[string]*store.OutboxEntry { // by key, of the pager
		t.Helper()
		list, err := a.store.Outbox(t.Context(), "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*store.OutboxEntry{}
		for _, e := range list {
			if e.Notifier == "pager" {
				out[e.Key] = e
			}
		}
		return out
	}
	mutedOf := func(check string) string {
		t.Helper()
		_, out := (&harness{t: t, url: l.url}).request("GET", "/api/v1/checks", "")
		for _, c := range out["checks"].([]any) {
			if c := c.(map[string]any); c["name"] == check {
				m, _ := c["incident_muted"].(string)
				return m
			}
		}
		t.Fatalf("no check %s in the API", check)
		return ""
	}

	step("broken", "broken") // +10m, in the window: both open, muted
	step("broken", "broken") // +20m
	const window = "maintenance window nightly (vacuum)"
	if got := mutedOf("db"); got != window {
		t.Errorf("the API says db's incident is muted by %q; want %q", got, window)
	}
	if page := getPage(t, l.url+"/checks/db"); !strings.Contains(page, "The incident opened during "+window+" and nobody has been told of it") {
		t.Errorf("db's page does not say its incident is untold:\n%s", page)
	}
	for _, key := range []string{"check:db:1:check_failed", "check:cache:1:check_failed"} {
		if e := entries()[key]; e == nil || e.Status != store.OutboxSilenced {
			t.Fatalf("%s: %v; want it written as silenced", key, describeEntry(e))
		}
	}
	a.deliverDue(t.Context())
	if n := len(pd.Events()) + len(slack.Messages()); n != 0 {
		t.Fatalf("%d notifications sent during the window", n)
	}

	step("broken", "good") // +30m, the window is over: db announced; cache closes untold
	es := entries()
	announce := es["check:db:1:check_failed:after-mute"]
	if announce == nil {
		t.Fatalf("no announcement of db's incident after the window; the pager's entries: %v", keysOf(es))
	}
	if closed := es["check:cache:1:check_recovered"]; closed == nil || closed.Status != store.OutboxSilenced ||
		!strings.Contains(closed.LastError, "never announced") {
		t.Fatalf("cache's closing: %v; want it muted, its opening never announced", describeEntry(closed))
	}
	if got := mutedOf("db"); got != "" {
		t.Errorf("after the announcement the API still says muted by %q", got)
	}
	if page := getPage(t, l.url+"/checks/db"); strings.Contains(page, `id="untold"`) {
		t.Errorf("after the announcement db's page still says its incident is untold")
	}
	eventually(t, 30*time.Second, "the page and the Slack thread", func() bool {
		return len(pd.Events()) == 1 && len(slack.Roots()) == 1
	})
	page := pd.Events()[0]
	if page.Action != "trigger" || !strings.Contains(page.Payload.Summary, "still failing after "+window+" ended; failing since ") {
		t.Errorf("the page: %s %q; want a trigger saying the check still fails after the window", page.Action, page.Payload.Summary)
	}

	step("broken", "good") // +40m: still failing, announced once; no reminders are set
	step("good", "good")   // +50m: recovers
	eventually(t, 30*time.Second, "the resolve and the reply in the thread", func() bool {
		return len(pd.Events()) == 2 && len(slack.Replies(slack.Roots()[0].TS)) == 1
	})
	if sent := pd.Events(); sent[1].Action != "resolve" || sent[1].DedupKey != page.DedupKey {
		t.Errorf("then %s on %q; want a resolve on the page's dedup_key %q", sent[1].Action, sent[1].DedupKey, page.DedupKey)
	}
	if n := len(slack.Roots()); n != 1 {
		t.Errorf("%d Slack threads; want db's alone (cache's incident was never announced)", n)
	}
	// the receivers have it; the store records the deliveries just after
	(&harness{t: t, a: a}).outboxSettled("check:db:1:check_recovered", map[string]string{"slack": store.OutboxDelivered, "pager": store.OutboxDelivered})
}

func keysOf(m map[string]*store.OutboxEntry) []string {
	var out []string
	for k, e := range m {
		out = append(out, k+" "+e.Status)
	}
	return out
}

func describeEntry(e *store.OutboxEntry) string {
	if e == nil {
		return "no entry"
	}
	return describeOutbox([]*store.OutboxEntry{e})
}

// A check silenced through the API and removed from the config while its incident, opened
// under the silence, was never told: the incident closes, and its closing is not told
// either (a check's closing on removal is otherwise sent whatever mutes the check, to the
// notifiers that heard of the incident).
func TestAnUntoldIncidentOfARemovedCheckClosesUntold(t *testing.T) {
	tg := newTarget(t)
	slack := loopback.NewSlack(t)
	cfg := func(withHome bool) string {
		home := ""
		if withHome {
			home = fmt.Sprintf(`  - {name: home, kind: http, every: 1s, timeout: 2s, retries: 0, failure_threshold: 1, notify: [slack], request: {url: %q}}
`, tg.srv.URL+"/")
		}
		return fmt.Sprintf(`
checks:
%s  - {name: other, kind: http, every: 1h, request: {url: %q}}
notifiers:%s
`, home, tg.srv.URL+"/", slackNotifier(slack))
	}
	h := startAgent(t, "", cfg(true))
	if status, out := h.request("POST", "/api/v1/silences", `{"check":"home","duration":"1h","reason":"load test"}`); status != 201 {
		t.Fatalf("silence: %d %v", status, out)
	}
	tg.set("broken")
	eventually(t, 20*time.Second, "the incident, opened muted", func() bool {
		h.a.incMu.Lock()
		defer h.a.incMu.Unlock()
		in := h.a.incidents["home"]
		return in != nil && in.Open && strings.HasPrefix(in.Muted, "silence ")
	})
	if err := os.WriteFile(h.cfgPath, []byte(cfg(false)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.a.Reload(); err != nil {
		t.Fatal(err)
	}
	entries := h.outboxSettled("check:home:1:check_recovered", map[string]string{"slack": store.OutboxSilenced})
	if len(entries) != 1 || !strings.Contains(entries[0].LastError, "never announced") {
		t.Errorf("the closing: %s; want it muted as never announced", describeOutbox(entries))
	}
	h.deliverNow()
	if n := len(slack.Messages()); n != 0 {
		t.Errorf("%d Slack messages for an incident nobody was told of", n)
	}
}

// inhibit_checks: after a deploy of web fails, and until a later one passes or the time is
// up, an incident of one of web's checks is muted, as an Alertmanager inhibit rule mutes
// an alert's symptoms: the on-call has the deploy's page for the same outage. Once the
// inhibition is over (here: a reload shortens it), the incident still open is sent; its
// all-clear later is sent though a silence mutes the check by then.
func TestAFailedDeployInhibitsItsChecksIncidents(t *testing.T) {
	home, api := newTarget(t), newTarget(t)
	slack := loopback.NewSlack(t)
	pd := loopback.NewPagerDuty(t)
	cfg := func(inhibit string) string {
		return fmt.Sprintf(`
checks:
  - {name: home, kind: http, every: 1h, timeout: 2s, retries: 0, request: {url: %q}}
  - {name: api, kind: http, every: 1s, timeout: 2s, retries: 0, failure_threshold: 1, notify: [slack, pager], request: {url: %q}}
services:
  web:
    checks: [home, api]
    verify: {interval: 100ms, count: 2}
    on_failure: [slack, pager]
    inhibit_checks: %s
notifiers:%s%s
`, home.srv.URL+"/", api.srv.URL+"/", inhibit, slackNotifier(slack), pagerDutyNotifier(pd))
	}
	h := startAgent(t, "", cfg("1h"))
	eventually(t, 20*time.Second, "api's first run", func() bool { return api.hits.Load() > 0 })

	home.set("broken")
	id := h.deploy("web", "v2")
	if v := h.verdict(id, 30*time.Second); v["status"] != store.StatusFailed {
		t.Fatalf("the deploy with home broken: %v", v["status"])
	}
	api.set("broken") // the same outage, seen by the schedule
	inhibition := fmt.Sprintf("the inhibition by deploy web v2's failure (%s, inhibit_checks 1h0m0s)", id)
	eventually(t, 20*time.Second, "api's incident, opened muted", func() bool {
		h.a.incMu.Lock()
		defer h.a.incMu.Unlock()
		in := h.a.incidents["api"]
		return in != nil && in.Open && in.Muted == inhibition
	})
	h.outboxSettled("check:api:1:check_failed", map[string]string{"slack": store.OutboxSilenced, "pager": store.OutboxSilenced})
	eventually(t, 30*time.Second, "the deploy's page", func() bool { return len(pd.Events()) == 1 })
	if page := getPage(t, h.url+"/"); !strings.Contains(page, "Inhibited") || !strings.Contains(page, "checks of service web until ") ||
		!strings.Contains(page, "or until a deploy of it passes: deploy v2 ("+id+") failed at ") {
		t.Errorf("the status page has no banner for the inhibition:\n%s", page)
	}
	if m := getPage(t, h.url+"/metrics"); !strings.Contains(m, "\nvigil_check_incidents_open 1\n") || !strings.Contains(m, "\nvigil_check_incidents_untold 1\n") {
		t.Errorf("the metrics do not count api's incident as open and untold")
	}
	if page := getPage(t, h.url+"/checks/api"); !strings.Contains(page, "The incident opened during "+html.EscapeString(inhibition)) ||
		!strings.Contains(page, `title="inhibited until `) {
		t.Errorf("api's page does not say its incident is inhibited:\n%s", page)
	}

	if err := os.WriteFile(h.cfgPath, []byte(cfg("1ms")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.a.Reload(); err != nil {
		t.Fatal(err)
	}
	h.outboxSettled("check:api:1:check_failed:after-mute", map[string]string{"slack": store.OutboxDelivered, "pager": store.OutboxDelivered})
	eventually(t, 30*time.Second, "api's page and thread", func() bool { return len(pd.Events()) == 2 && len(slack.Roots()) == 2 })
	if m := getPage(t, h.url+"/metrics"); !strings.Contains(m, "\nvigil_check_incidents_open 1\n") || !strings.Contains(m, "\nvigil_check_incidents_untold 0\n") {
		t.Errorf("the metrics do not count api's incident as open and told")
	}
	page := pd.Events()[1]
	if !strings.Contains(page.Payload.Summary, "still failing after the inhibition by deploy web v2's failure ("+id+", inhibit_checks 1h0m0s) ended") {
		t.Errorf("api's page says %q; want that it outlived the inhibition", page.Payload.Summary)
	}

	if status, out := h.request("POST", "/api/v1/silences", `{"check":"api","duration":"1h","reason":"someone silenced it late"}`); status != 201 {
		t.Fatalf("silence: %d %v", status, out)
	}
	api.set("good")
	h.outboxSettled("check:api:1:check_recovered", map[string]string{"slack": store.OutboxDelivered, "pager": store.OutboxDelivered})
	eventually(t, 30*time.Second, "the resolve of api's page", func() bool { return !pd.Open(page.DedupKey) })
}

func TestFailedBefore(t *testing.T) {
	now := time.Now()
	d := func(id, status string, ago time.Duration) *store.Deploy {
		return &store.Deploy{ID: id, Status: status, CreatedAt: now.Add(-ago)}
	}
	for _, tc := range []struct {
		name string
		list []*store.Deploy // newest first
		want string
	}{
		{"none", nil, ""},
		{"the newest passed", []*store.Deploy{d("b", store.StatusPassed, time.Minute), d("a", store.StatusFailed, time.Hour)}, ""},
		{"the newest failed", []*store.Deploy{d("b", store.StatusFailed, time.Minute), d("a", store.StatusPassed, time.Hour)}, "b"},
		{"its rollback verifying", []*store.Deploy{d("c", store.StatusVerifying, 0), d("b", store.StatusFailed, time.Minute)}, "b"},
		{"an inconclusive one after it", []*store.Deploy{d("c", store.StatusInconclusive, 0), d("b", store.StatusFailed, time.Minute)}, "b"},
		{"a superseded one after it", []*store.Deploy{d("c", store.StatusSuperseded, 0), d("b", store.StatusFailed, time.Minute)}, "b"},
		{"a passed one registered after now", []*store.Deploy{d("c", store.StatusPassed, -time.Minute), d("b", store.StatusFailed, time.Minute)}, "b"},
		{"only inconclusive", []*store.Deploy{d("a", store.StatusInconclusive, time.Minute)}, ""},
	} {
		got := ""
		if f := failedBefore(tc.list, now); f != nil {
			got = f.ID
		}
		if got != tc.want {
			t.Errorf("%s: %q; want %q", tc.name, got, tc.want)
		}
	}
}

// stepper waits until the agent schedules its two checks, and returns a step of 10 minutes
// on the fake clock: x and y answer as their modes say, and step returns once both checks
// ran and their runs are stored.
func stepper(t *testing.T, a *Agent, fc *clock.Fake, x, y *target) func(xMode, yMode string) {
	t.Helper()
	eventually(t, 10*time.Second, "both checks to be scheduled", func() bool {
		a.sched.mu.Lock()
		defer a.sched.mu.Unlock()
		return len(a.sched.entries) == 2
	})
	return func(xMode, yMode string) {
		t.Helper()
		x.set(xMode)
		y.set(yMode)
		hx, hy := x.hits.Load(), y.hits.Load()
		fc.Advance(10 * time.Minute)
		eventually(t, 20*time.Second, "both checks' runs", func() bool {
			a.sched.mu.Lock()
			idle := len(a.sched.running) == 0
			a.sched.mu.Unlock()
			return x.hits.Load() > hx && y.hits.Load() > hy && idle
		})
		a.writer.flush(t.Context())
	}
}
