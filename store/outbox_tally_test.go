package store

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"
)

// The outbox's count by state is what COUNT(*) says, after agents queued, claimed,
// delivered, dead-lettered, retried and purged entries at once while others read the count
// (and so folded its rows of changes) throughout; and the read does not go through the
// outbox's entries at all.
func TestOutboxCountsUnderConcurrentChanges(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		st := drv.fresh(t)
		s, pg := st.self(), drv.name == "postgres"
		fillFinishedOutbox(t, s, pg, 2000)
		if plan := explainPlan(t, s, pg, outboxCountsQuery); strings.Contains(strings.ReplaceAll(plan, "outbox_tally", ""), "outbox") {
			t.Errorf("the count reads the outbox:\n%s", plan)
		}
		counted := func() map[string]int {
			t.Helper()
			rows, err := s.db.QueryContext(ctx, `SELECT status, COUNT(*) FROM outbox GROUP BY status`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			out := map[string]int{}
			for rows.Next() {
				var st string
				var n int
				if err := rows.Scan(&st, &n); err != nil {
					t.Fatal(err)
				}
				out[st] = n
			}
			return out
		}
		if got, err := st.OutboxCounts(ctx); err != nil || !maps.Equal(got, counted()) {
			t.Fatalf("counts after the fill: %v, %v; COUNT(*) says %v", got, err, counted())
		}

		now := t0.Add(8 * 24 * time.Hour)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for w := range 4 {
			wg.Go(func() {
				agent := fmt.Sprintf("eu-%d", w)
				for i := range 30 {
					e := &OutboxEntry{Notifier: "hook", Event: "check_failed", Key: fmt.Sprintf("%s-%d", agent, i), Payload: []byte(`{}`), CreatedAt: now}
					if err := st.Enqueue(ctx, []*OutboxEntry{e}); err != nil {
						errs <- err
						return
					}
					claimed, err := st.ClaimOutbox(ctx, agent, now, time.Minute, 3, nil)
					if err != nil {
						errs <- err
						return
					}
					for j, c := range claimed {
						status := []string{OutboxDelivered, OutboxDead, OutboxPending}[(i+j)%3]
						err := st.RecordAttempt(ctx, OutboxAttempt{ID: c.ID, Agent: agent, Status: status, Attempts: 1, At: now})
						if err == nil && status == OutboxDead {
							err = st.Retry(ctx, c.ID, now)
						}
						if err != nil && err != ErrLostClaim && err != ErrSuperseded {
							errs <- err
							return
						}
					}
				}
			})
		}
		wg.Go(func() {
			for d := range 6 {
				if _, err := st.Purge(ctx, t0.Add(time.Duration(d+1)*24*time.Hour)); err != nil {
					errs <- err
				}
			}
		})
		for range 2 {
			wg.Go(func() {
				for range 40 {
					if _, err := st.OutboxCounts(ctx); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		want := counted()
		if got, err := st.OutboxCounts(ctx); err != nil || !maps.Equal(got, want) {
			t.Errorf("counts: %v, %v; COUNT(*) says %v", got, err, want)
		}
		if err := s.foldTally(ctx); err != nil {
			t.Fatal(err)
		}
		if got, err := st.OutboxCounts(ctx); err != nil || !maps.Equal(got, want) {
			t.Errorf("counts once folded: %v, %v; COUNT(*) says %v", got, err, want)
		}
	})
}

// BenchmarkOutboxCounts reads the outbox's count by state with a hundred thousand
// entries, nearly all finished (docs: the figures, before and after migration 18).
func BenchmarkOutboxCounts(b *testing.B) {
	for _, drv := range drivers {
		b.Run(drv.name, func(b *testing.B) {
			st := drv.fresh(b)
			fillFinishedOutbox(b, st.self(), drv.name == "postgres", 100_000)
			for b.Loop() {
				if _, err := st.OutboxCounts(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
