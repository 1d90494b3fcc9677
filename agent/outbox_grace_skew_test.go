package agent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/pgtest"
	"github.com/vigil-monitor/vigil/store"
)

// The hour a notification waits for its notifier to come back into the config is counted
// by the database's clock, from when the entry was queued by it, as its due times are:
// neither the queuing agent's clock nor the sending one's, two hours apart, dead-letters a
// rollback queued a moment ago at once (by the agents' clocks, it was: "dead-lettered 1h0m0s
// after it was queued"). An agent whose clock is two hours behind still dead-letters an
// entry the database queued two hours ago.
func TestOutboxGraceIsKeptByTheDatabasesClock(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Options{})
	for _, tc := range []struct {
		name          string
		queuer, agent time.Duration // the clocks of the agent that queued the rollback, and of the one that claims it
		queuedAgo     time.Duration // how long before now, by the database's clock, it was queued
		dead          bool
	}{
		{name: "queued by an agent 2h behind", queuer: -2 * time.Hour},
		{name: "claimed by an agent 2h ahead", agent: 2 * time.Hour},
		{name: "queued 2h ago, claimed by an agent 2h behind", agent: -2 * time.Hour, queuedAgo: 2 * time.Hour, dead: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := srv.Database(t)
			st := openPostgres(t, dsn)
			key := queueRollback(t, st, time.Now().Add(tc.queuer-tc.queuedAgo))
			if tc.queuedAgo > 0 {
				conn, err := pgx.Connect(t.Context(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(t.Context())
				if _, err := conn.Exec(t.Context(), `UPDATE outbox SET queued_at = queued_at - $1`, int64(tc.queuedAgo)); err != nil {
					t.Fatal(err)
				}
			}
			slack := loopback.NewSlack(t)
			// The rollback's notifier is not in this agent's config (a reload renamed it).
			l := launch(t, t.TempDir(), fmt.Sprintf(`
agent: {location: eu, name: eu-2, heartbeat: 1s}
store: {driver: postgres, dsn: %q}
checks: [{name: home, kind: http, every: 1h, request: {url: "http://127.0.0.1:9/"}}]
services:
  web: {checks: [home], on_failure: [slack]}
notifiers:%s`, dsn, slackNotifier(slack)), Options{Store: st, Clock: skewed{by: tc.agent}})
			t.Cleanup(func() { _ = l.stop() })
			var e *store.OutboxEntry
			eventually(t, 20*time.Second, "the rollback's first attempt", func() bool {
				l.a.signalOutbox()
				es, err := st.OutboxByKey(t.Context(), key)
				if err != nil || len(es) != 1 || es[0].LastError == "" {
					return false
				}
				e = es[0]
				return true
			})
			if dead := e.Status == store.OutboxDead; dead != tc.dead || !strings.Contains(e.LastError, `notifier "rollback" is not in the config`) {
				t.Errorf("the rollback is %s (%s); want dead-lettered: %v", e.Status, e.LastError, tc.dead)
			}
		})
	}
}
