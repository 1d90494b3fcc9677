package agent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/pgtest"
	"github.com/vigil-monitor/vigil/store"
)

// A deploy superseded before its verdict (v3 registered while v2 verifies) closes what its
// deploy_started opened: v2's Slack thread gets one reply and its root says "Superseded by
// v3", naming v3's deploy; the deploy tracker's webhook gets deploy_superseded once, under
// its Idempotency-Key, with the deploy that superseded it; the rollback webhook is never
// called, and PagerDuty (a change event at the start, nothing paged) is sent nothing. The
// registration of v3 sent again supersedes nothing and sends nothing more.
func TestASupersededDeployClosesWhatItsStartOpened(t *testing.T) {
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

	v2 := h.deploy("web", "v2")
	h.outboxSettled(v2+":deploy_started", map[string]string{"slack": store.OutboxDelivered, "pager": store.OutboxDelivered,
		"tracker": store.OutboxDelivered})
	roots := sl.Roots()
	if len(roots) != 1 || !strings.Contains(roots[0].Text, "Verifying the deploy of web v2") {
		t.Fatalf("Slack roots after deploy_started: %+v; want one, verifying web v2", roots)
	}

	register := `{"service":"web","version":"v3","environment":"test"}`
	status, out := h.request("POST", "/api/v1/deploys", register, "Idempotency-Key", "ci-run-3")
	if status != 202 {
		t.Fatalf("registering v3: %d %v", status, out)
	}
	v3, _ := out["id"].(string)
	if d, err := h.a.store.Deploy(t.Context(), v2); err != nil || d.Status != store.StatusSuperseded || d.SupersededBy != v3 {
		t.Fatalf("v2 after v3's registration: %+v %v; want superseded by %s", d, err, v3)
	}
	key := v2 + ":deploy_superseded"
	h.outboxSettled(key, map[string]string{"slack": store.OutboxDelivered, "tracker": store.OutboxDelivered})

	by := "web v3 (deploy " + v3 + ")"
	replies := sl.Replies(roots[0].TS)
	if len(replies) != 1 || !strings.Contains(replies[0].Text, "superseded by "+by) ||
		!strings.Contains(string(replies[0].Blocks), "Superseded by v3") {
		t.Errorf("v2's thread's replies: %d, the first %q; want one saying \"Superseded by v3\", by %s", len(replies), firstText(replies), by)
	}
	root := sl.Roots()[0]
	if root.Updates != 1 || !strings.Contains(string(root.Blocks), "*Status:* Superseded by v3") ||
		!strings.Contains(string(root.Blocks), `*Superseded by*\n`+by) || strings.Contains(string(root.Blocks), "Cancelled") {
		t.Errorf("v2's root after the supersede (%d updates): %s %s; want one update, superseded by %s", root.Updates, root.Text, root.Blocks, by)
	}

	if n := tracker.Count(key); n != 1 {
		t.Errorf("the tracker got %s %d times; want once", key, n)
	}
	for _, d := range tracker.Deliveries() {
		if d.Key != key {
			continue
		}
		newer, _ := d.Payload["superseded_by"].(map[string]any)
		old, _ := d.Payload["deploy"].(map[string]any)
		if d.Event != "deploy_superseded" || d.Payload["event"] != "deploy_superseded" || d.Payload["summary"] != "superseded by "+by ||
			d.Payload["incident"] != v2 || old["id"] != v2 || newer["id"] != v3 || newer["version"] != "v3" || newer["service"] != "web" {
			t.Errorf("the tracker's deploy_superseded: event %q, payload %v", d.Event, d.Payload)
		}
	}
	if n := rollback.AllAttempts(); n != 0 {
		t.Errorf("the rollback webhook was called %d times for a supersede; want never: %v", n, rollback.Counts())
	}
	if evs := pd.Events(); len(evs) != 0 {
		t.Errorf("PagerDuty got %d Events v2 events for a deploy that started and was superseded; want none: %+v", len(evs), evs)
	}

	// v3's registration sent again (its answer lost) supersedes nothing, so it writes and
	// sends nothing more.
	if status, again := h.request("POST", "/api/v1/deploys", register, "Idempotency-Key", "ci-run-3"); status != 202 || again["id"] != v3 {
		t.Fatalf("v3's registration again: %d %v", status, again)
	}
	h.outboxSettled(key, map[string]string{"slack": store.OutboxDelivered, "tracker": store.OutboxDelivered})
	h.deliverNow()
	if n, r := tracker.Count(key), sl.Replies(roots[0].TS); n != 1 || len(r) != 1 || sl.Roots()[0].Updates != 1 {
		t.Errorf("after v3's registration again: the tracker got it %d times, v2's thread has %d replies and %d root updates; want 1, 1 and 1",
			n, len(r), sl.Roots()[0].Updates)
	}
}

// A deploy's failing verdict and the registration of a newer deploy at the same moment,
// over and over, on SQLite and on PostgreSQL: each deploy either failed (its rollback
// webhook called, no deploy_superseded) or was superseded (deploy_superseded to the
// tracker once, no rollback), never both and never neither.
func TestAVerdictAndASupersedeAtOnceSendOneOfThem(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			tg := newTarget(t)
			tg.set("broken")
			tracker := loopback.NewWebhook(t)
			rollback := loopback.NewWebhook(t)
			yaml := webConfig{url: tg.srv.URL, verify: "interval: 1s, count: 2", service: "on_failure: [tracker, rollback]",
				top: "notifiers:" + webhookNotifier("tracker", "", tracker) + webhookNotifier("rollback", "rollback", rollback)}.String()
			var h *harness
			if driver == "sqlite" {
				h = startAgent(t, "", yaml)
			} else {
				dsn := pgtest.Start(t, pgtest.Options{}).Database(t)
				h = startAgentWith(t, t.TempDir(), yaml+fmt.Sprintf("\nstore: {driver: postgres, dsn: %q}\n", dsn),
					Options{Store: openPostgres(t, dsn)})
			}

			const rounds = 16
			var ids []string
			for i := range rounds {
				ids = append(ids, h.deploy("web", fmt.Sprint("v", i)))
				// The next registration comes as the verdict does (its first round fails at
				// once), a little before or after it, by up to a few milliseconds.
				time.Sleep(time.Duration(i%8) * 500 * time.Microsecond)
			}
			if v := h.verdict(ids[rounds-1], 30*time.Second); v["status"] != store.StatusFailed {
				t.Fatalf("the last deploy: %v %v; want failed", v["status"], v["reason"])
			}
			ways := map[string]int{}
			for _, id := range ids {
				d, err := h.a.store.Deploy(t.Context(), id)
				if err != nil {
					t.Fatal(err)
				}
				ways[d.Status]++
				failed, superseded := id+":deploy_failed", id+":deploy_superseded"
				switch d.Status {
				case store.StatusFailed:
					h.outboxSettled(failed, map[string]string{"tracker": store.OutboxDelivered, "rollback": store.OutboxDelivered})
					h.outboxSettled(superseded, nil)
				case store.StatusSuperseded:
					h.outboxSettled(superseded, map[string]string{"tracker": store.OutboxDelivered})
					h.outboxSettled(failed, nil)
				default:
					t.Errorf("%s is %s; want failed or superseded", id, d.Status)
				}
				if d.Status == store.StatusFailed && (rollback.Count(failed) != 1 || tracker.Count(superseded) != 0) ||
					d.Status == store.StatusSuperseded && (rollback.Count(failed) != 0 || tracker.Count(superseded) != 1) {
					t.Errorf("%s is %s: the rollback webhook got %s %d times, the tracker %s %d times", id, d.Status,
						failed, rollback.Count(failed), superseded, tracker.Count(superseded))
				}
			}
			t.Logf("%d deploys: %v", rounds, ways)
		})
	}
}
