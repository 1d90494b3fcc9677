package agent

import (
	"fmt"
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
	d := startDeploy(t, "v2")
	register := `{"service":"web","version":"v3","environment":"test"}`
	status, out := d.h.request("POST", "/api/v1/deploys", register, "Idempotency-Key", "ci-run-3")
	if status != 202 {
		t.Fatalf("registering v3: %d %v", status, out)
	}
	v3, _ := out["id"].(string)
	if dp, err := d.h.a.store.Deploy(t.Context(), d.id); err != nil || dp.Status != store.StatusSuperseded || dp.SupersededBy != v3 {
		t.Fatalf("v2 after v3's registration: %+v %v; want superseded by %s", dp, err, v3)
	}
	by := "web v3 (deploy " + v3 + ")"
	superseded := closing{event: "deploy_superseded", summary: "superseded by " + by, reply: "Superseded by v3",
		root: []string{"*Status:* Superseded by v3", `*Superseded by*\n` + by}, notRoot: "Cancelled", updates: 1,
		payload: func(p map[string]any) string {
			newer, _ := p["superseded_by"].(map[string]any)
			old, _ := p["deploy"].(map[string]any)
			if old["id"] != d.id || newer["id"] != v3 || newer["version"] != "v3" || newer["service"] != "web" {
				return fmt.Sprintf("(want deploy %s, superseded_by web v3 %s)", d.id, v3)
			}
			return ""
		}}
	d.closed(superseded)

	// v3's registration sent again (its answer lost) supersedes nothing, so it writes and
	// sends nothing more.
	if status, again := d.h.request("POST", "/api/v1/deploys", register, "Idempotency-Key", "ci-run-3"); status != 202 || again["id"] != v3 {
		t.Fatalf("v3's registration again: %d %v", status, again)
	}
	d.closedOnce(superseded)
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
