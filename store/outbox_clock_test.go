package store

import (
	"context"
	"testing"
	"time"
)

// When an entry is due, with agents' clocks an hour apart. On PostgreSQL a due time is
// stamped and judged by the database's clock, as leases are: an entry written, retried
// after a Retry-After, or put back from the dead letters by an agent whose clock is off
// is due for every agent when the database's clock says so, and each is told when by its
// own clock. (By the agents' clocks, an agent ahead sent a retry at once, whatever the
// receiver's Retry-After; an entry written by an agent ahead waited for the others.) On
// SQLite, one host and one clock, the caller's times are used.
func TestOutboxDueTimesByTheDatabasesClock(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		s := drv.fresh(t)
		pg := drv.name == "postgres"
		ahead, behind := time.Now().Add(time.Hour), time.Now().Add(-time.Hour)
		claim := func(agent string, now time.Time) []*OutboxEntry {
			t.Helper()
			got, err := s.ClaimOutbox(ctx, agent, now, time.Minute, 10, nil)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}

		// Written by an agent an hour ahead: due at once for one whose clock is right.
		if err := s.Enqueue(ctx, []*OutboxEntry{{Notifier: "hook", Event: "deploy_failed", Key: "d1:deploy_failed", Incident: "d1",
			Payload: []byte("{}"), CreatedAt: ahead}}); err != nil {
			t.Fatal(err)
		}
		got := claim("right", time.Now())
		if pg && len(got) != 1 {
			t.Errorf("an entry written by an agent an hour ahead, claimed by one whose clock is right: %s; want it", describe(got))
		}
		if len(got) == 0 {
			got = claim("right", ahead) // SQLite: the one clock is the writer's
		}
		if len(got) != 1 {
			t.Fatalf("claimed %s; want the entry", describe(got))
		}
		id := got[0].ID

		// The receiver asked for 2 s (Retry-After): recorded by an agent whose clock is right,
		// the entry is due 2 s later, not at once for an agent an hour ahead.
		const wait = 2 * time.Second
		recorded := time.Now()
		if err := s.RecordAttempt(ctx, OutboxAttempt{ID: id, Agent: "right", Status: OutboxPending, Attempts: 1, Wait: wait,
			LastError: "429", At: recorded}); err != nil {
			t.Fatal(err)
		}
		if pg {
			if got := claim("ahead", ahead); len(got) != 0 {
				t.Fatalf("an agent an hour ahead claimed %s within the 2 s the receiver asked for", describe(got))
			}
			for _, now := range []time.Time{ahead, behind} {
				if next, err := s.NextDue(ctx, now, nil); err != nil || next.Before(now) || next.After(now.Add(wait)) {
					t.Errorf("NextDue to a clock %s off: %v, %v; want the retry by that clock, within %s of %v",
						now.Sub(recorded).Round(time.Hour), next, err, wait, now)
				}
			}
			time.Sleep(wait)
			if got := claim("behind", behind); len(got) != 1 {
				t.Fatalf("an agent an hour behind claimed %s once the 2 s were over; want the entry", describe(got))
			}
		} else {
			if got := claim("right", recorded.Add(wait-time.Millisecond)); len(got) != 0 {
				t.Fatalf("claimed %s before the 2 s were over", describe(got))
			}
			if next, err := s.NextDue(ctx, recorded, nil); err != nil || !next.Equal(recorded.Add(wait)) {
				t.Errorf("NextDue: %v, %v; want %v", next, err, recorded.Add(wait))
			}
			if got := claim("right", recorded.Add(wait)); len(got) != 1 {
				t.Fatalf("claimed %s once the 2 s were over; want the entry", describe(got))
			}
		}

		// Dead, then put back by an agent an hour ahead: due at once for the others.
		holder, right := "right", ahead // SQLite: the one clock is the retrier's
		if pg {
			holder, right = "behind", time.Now()
		}
		if err := s.RecordAttempt(ctx, OutboxAttempt{ID: id, Agent: holder, Status: OutboxDead, Attempts: 2, LastError: "400", At: recorded}); err != nil {
			t.Fatal(err)
		}
		if err := s.Retry(ctx, id, ahead); err != nil {
			t.Fatal(err)
		}
		if got := claim("right", right); len(got) != 1 {
			t.Errorf("an entry put back by an agent an hour ahead, claimed by one whose clock is right: %s; want it", describe(got))
		}
	})
}
