package store

import (
	"context"
	"testing"
	"time"
)

// oldEnqueue is how a vigil of schema 16 (before migration 19's queued_at) writes an
// outbox entry, word for word: during a rolling upgrade on PostgreSQL the agents not yet
// replaced keep writing so, into the schema the first new agent migrated.
const oldEnqueue = `INSERT INTO outbox(notifier, event, idem_key, incident, payload, created_at, next_attempt_at, status, done_at, last_error)
	VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(notifier, idem_key) DO NOTHING`

// An entry an older agent wrote after a newer one migrated the store has no queued_at (the
// column's default, 0). Claimed by a new agent, it must be taken as queued when it was
// created, as migration 19 takes the entries written before it: read as queued in 1970, it
// was over the hour in which a receiver's pacing (429 Retry-After) uses no attempt, so a
// page the old agent queued while Slack rate-limited was dead-lettered within a few
// attempts once a new agent took it over (and one of a notifier a reload renamed, at once).
func TestOutboxEntryOfAnOlderVigilIsQueuedWhenCreated(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		s := drv.fresh(t)
		created := time.Now().Add(-5 * time.Minute)
		if _, err := s.self().db.ExecContext(ctx, oldEnqueue, "ops", "check_failed", "check:db:1:check_failed", "check:db:1", []byte("{}"),
			nanos(created), nanos(created), OutboxPending, int64(0), ""); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		got, err := s.ClaimOutbox(ctx, "new-agent", now, time.Minute, 10, nil)
		if err != nil || len(got) != 1 {
			t.Fatalf("claimed %s, %v; want the older agent's entry", describe(got), err)
		}
		// The store's clock on PostgreSQL is the database's: allow for this host's skew
		// to it, which is none here, and for the test's own time.
		if waited := now.Sub(got[0].Queued); waited < 5*time.Minute-time.Second || waited > 5*time.Minute+30*time.Second {
			t.Errorf("the older agent's entry, created 5m ago, waited %s by its Queued (%v); want about 5m", waited.Round(time.Second), got[0].Queued)
		}
		counts, err := s.OutboxCounts(ctx)
		if err != nil || len(counts) != 1 || counts[OutboxPending] != 1 {
			t.Errorf("the outbox's tally after the older agent's entry: %v, %v; want map[pending:1]", counts, err)
		}
	})
}
