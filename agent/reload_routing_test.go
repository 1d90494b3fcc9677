package agent

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/clock"
	"github.com/vigil-monitor/vigil/store"
)

// A verification keeps the checks and verify settings it started with, but where its
// verdict goes (`on_failure`, `dry_run`) is read when the verdict is reached: an operator
// who turns dry_run on in the middle of an incident ("stop rolling things back, we are on
// it") is obeyed by the deploy already verifying, and one who turns it off is too.
func TestReloadMidVerificationRoutesTheVerdictByTheConfigInForce(t *testing.T) {
	for _, tc := range []struct {
		name          string
		before, after string
		sent          bool
	}{
		{"dry_run turned on", "on_failure: [rollback]", "on_failure: [rollback]\ndry_run: true", false},
		{"dry_run turned off", "on_failure: [rollback]\ndry_run: true", "on_failure: [rollback]", true},
		{"rollback added", "", "on_failure: [rollback]", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTarget(t)
			hook := loopback.NewWebhook(t)
			fc := clock.NewFake(time.Now().Truncate(time.Second))
			cfg := webConfig{url: tg.srv.URL, verify: "interval: 10s, count: 3", service: tc.before,
				top: "notifiers:" + webhookNotifier("rollback", "rollback", hook)}
			h := startAgentWith(t, t.TempDir(), cfg.String(), Options{Clock: fc,
				Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
			id := h.deploy("web", "v2")
			eventually(t, 10*time.Second, "round 1", func() bool {
				runs, err := h.a.store.DeployRuns(t.Context(), id)
				return err == nil && len(runs) == 1
			})
			cfg.service = tc.after
			if err := reloadWith(t, h, cfg.String()); err != nil {
				t.Fatal(err)
			}
			tg.set("broken")
			fc.Advance(10 * time.Second)
			if d := h.verdict(id, 30*time.Second); d["status"] != store.StatusFailed {
				t.Fatalf("status %v (%v); want failed in round 2", d["status"], d["reason"])
			}
			want := store.OutboxDryRun
			if tc.sent {
				want = store.OutboxDelivered
			}
			entries := h.outboxSettled(id+":deploy_failed", map[string]string{"rollback": want})
			h.deliverNow()
			if got := len(hook.Deliveries()); (got == 1) != tc.sent || got > 1 {
				t.Errorf("the rollback webhook was called %d times (outbox: %s); want %s", got, describeOutbox(entries),
					map[bool]string{true: "once, by the config in force", false: "never: dry_run is on"}[tc.sent])
			}
		})
	}
}
