package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/configs"
)

// The outbox on both drivers: claims, leases, keys.

// A claim and NextDue leave out the notifiers an agent is busy delivering to (or whose
// receiver asked it to wait): their lanes take their own entries in turn. Times are the
// host's: PostgreSQL judges due times by its own clock.
func TestOutboxClaimSkipsNotifiers(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		s := drv.fresh(t)
		now := time.Now()
		e := func(notifier, key string) *OutboxEntry { // due when written
			return &OutboxEntry{Notifier: notifier, Event: "check_failed", Key: key, Incident: key, Payload: []byte("{}"), CreatedAt: now}
		}
		if err := s.Enqueue(ctx, []*OutboxEntry{e("slack", "a"), e("slack", "b"), e("rollback", "c"), e("pd", "d")}); err != nil {
			t.Fatal(err)
		}
		// pd's entry failed: it is retried in an hour.
		pd, err := s.ClaimOutbox(ctx, "a", now, time.Minute, 10, []string{"slack", "rollback"})
		if err != nil || len(pd) != 1 {
			t.Fatalf("claimed %s, %v; want pd's entry", describe(pd), err)
		}
		if err := s.RecordAttempt(ctx, OutboxAttempt{ID: pd[0].ID, Agent: "a", Status: OutboxPending, Attempts: 1, Wait: time.Hour, At: now}); err != nil {
			t.Fatal(err)
		}
		if next, err := s.NextDue(ctx, now, []string{"slack"}); err != nil || next.IsZero() || next.After(now) {
			t.Errorf("NextDue skipping slack: %v %v, want the rollback's, due now", next, err)
		}
		if next, err := s.NextDue(ctx, now, []string{"slack", "rollback"}); err != nil || next.Before(now.Add(59*time.Minute)) || next.After(now.Add(time.Hour)) {
			t.Errorf("NextDue skipping slack and the rollback: %v %v, want pd's, in an hour", next, err)
		}
		if next, err := s.NextDue(ctx, now, []string{"slack", "rollback", "pd"}); err != nil || !next.IsZero() {
			t.Errorf("NextDue skipping every notifier: %v %v, want none", next, err)
		}
		got, err := s.ClaimOutbox(ctx, "a", time.Now(), time.Minute, 10, []string{"slack"})
		if err != nil || len(got) != 1 || got[0].Notifier != "rollback" {
			t.Fatalf("claim skipping slack: %v %v, want the rollback alone", got, err)
		}
		if got, _ := s.ClaimOutbox(ctx, "a", time.Now(), time.Minute, 10, nil); len(got) != 2 {
			t.Errorf("claim skipping nothing: %d entries, want slack's two", len(got))
		}
	})
}

// NextDue leaves out a thread's reply waiting behind its opener: the reply cannot be
// claimed before the opener is done, so the earliest time is the opener's (its retry, or
// the end of the lease another agent holds it by), not the reply's own, long past. Once
// the opener is delivered, the reply is due at once. Times are the host's: PostgreSQL
// judges due times by its own clock.
func TestOutboxNextDueWaitsForTheOpener(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		s := drv.fresh(t)
		e := func(notifier, key string) *OutboxEntry {
			return &OutboxEntry{Notifier: notifier, Event: "deploy_failed", Key: key, Incident: "d1", Payload: []byte("{}"), CreatedAt: time.Now()}
		}
		if err := s.Enqueue(ctx, []*OutboxEntry{e("slack", "d1:deploy_failed"), e("slack", "d1:deploy_passed"), e("pd", "d1:deploy_failed")}); err != nil {
			t.Fatal(err)
		}
		queued := time.Now()
		opener, err := s.ClaimOutbox(ctx, "a", queued, time.Minute, 10, []string{"pd"})
		if err != nil || len(opener) != 1 || opener[0].Key != "d1:deploy_failed" {
			t.Fatalf("claimed %s, %v; want slack's opener alone", describe(opener), err)
		}
		// The opener failed: it is retried in 2 s.
		const wait = 2 * time.Second
		failed := time.Now()
		if err := s.RecordAttempt(ctx, OutboxAttempt{ID: opener[0].ID, Agent: "a", Status: OutboxPending, Attempts: 1,
			Wait: wait, LastError: "503", At: failed}); err != nil {
			t.Fatal(err)
		}
		if next, err := s.NextDue(ctx, failed, []string{"pd"}); err != nil || !next.After(queued) || next.After(failed.Add(wait)) {
			t.Errorf("NextDue with the opener retried in %s: %v, %v; want the opener's retry, %v", wait, next, err, failed.Add(wait))
		}
		time.Sleep(wait)
		// Another agent holds it, for 30 s.
		at := time.Now()
		if held, err := s.ClaimOutbox(ctx, "b", at, 30*time.Second, 10, []string{"pd"}); err != nil || len(held) != 1 || held[0].ID != opener[0].ID {
			t.Fatalf("b claimed %s, %v; want the opener alone", describe(held), err)
		}
		if next, err := s.NextDue(ctx, at, []string{"pd"}); err != nil || next.Before(at.Add(25*time.Second)) || next.After(at.Add(30*time.Second)) {
			t.Errorf("NextDue with the opener held by b for 30 s: %v, %v; want the lease's end, within 5 s before %v", next, err, at.Add(30*time.Second))
		}
		if err := s.RecordAttempt(ctx, OutboxAttempt{ID: opener[0].ID, Agent: "b", Status: OutboxDelivered, Attempts: 2, At: at}); err != nil {
			t.Fatal(err)
		}
		if next, err := s.NextDue(ctx, at, []string{"pd"}); err != nil || next.IsZero() || next.After(queued) {
			t.Errorf("NextDue with the opener delivered: %v, %v; want the reply's, due since it was queued at %v", next, err, queued)
		}
	})
}

// A dead entry after which an all-clear of its notifier and incident was delivered (a page
// whose all-clear went out), or skipped (the all-clear of that lost page, not sent), is not
// retried: it would open the incident again, for good. What else came after it (the
// rollback's result, a reminder) leaves the incident open: the page is still owed.
func TestOutboxRetryRefusesWhatALaterEntrySuperseded(t *testing.T) {
	if fmt.Sprint(allClears) != fmt.Sprint([]string{configs.EventDeployPassed, configs.EventCheckRecovered}) {
		t.Fatalf("the store's all-clears %v are not the events that close an incident", allClears)
	}
	for _, closed := range []string{OutboxDelivered, OutboxSkipped} {
		t.Run(closed, func(t *testing.T) {
			forEachDriver(t, func(t *testing.T, drv driver) {
				ctx := context.Background()
				s := drv.fresh(t)
				e := func(event, key string) *OutboxEntry {
					return &OutboxEntry{Notifier: "pd", Event: event, Key: "check:home:2:" + key, Incident: "check:home:2", Payload: []byte("{}"), CreatedAt: t0}
				}
				if err := s.Enqueue(ctx, []*OutboxEntry{e(configs.EventCheckFailed, "failed"), e("action_result", "rollback"),
					e(configs.EventCheckFailed, "reminder:1"), e(configs.EventCheckRecovered, "recovered")}); err != nil {
					t.Fatal(err)
				}
				open, _ := s.ClaimOutbox(ctx, "a", t0, time.Minute, 1, nil)
				_ = s.RecordAttempt(ctx, OutboxAttempt{ID: open[0].ID, Agent: "a", Status: OutboxDead, Attempts: 1, LastError: "400", At: t0})
				if err := s.Retry(ctx, open[0].ID, t0); err != nil {
					t.Fatalf("retrying the opener before its all-clear was done: %v", err)
				}
				open, _ = s.ClaimOutbox(ctx, "a", t0, time.Minute, 1, nil)
				_ = s.RecordAttempt(ctx, OutboxAttempt{ID: open[0].ID, Agent: "a", Status: OutboxDead, Attempts: 2, LastError: "400", At: t0})
				// The rollback's result and a reminder, done after the lost page.
				for _, event := range []string{"action_result", "check_failed"} {
					next, _ := s.ClaimOutbox(ctx, "a", t0, time.Minute, 1, nil)
					if len(next) != 1 || next[0].Event != event {
						t.Fatalf("claimed %s, want the %s", describe(next), event)
					}
					_ = s.RecordAttempt(ctx, OutboxAttempt{ID: next[0].ID, Agent: "a", Status: closed, Attempts: 1, At: t0})
				}
				if err := s.Retry(ctx, open[0].ID, t0); err != nil {
					t.Fatalf("retrying the opener after the rollback's result and a reminder were %s (the incident still open): %v", closed, err)
				}
				open, _ = s.ClaimOutbox(ctx, "a", t0, time.Minute, 1, nil)
				_ = s.RecordAttempt(ctx, OutboxAttempt{ID: open[0].ID, Agent: "a", Status: OutboxDead, Attempts: 2, LastError: "400", At: t0})
				closing, _ := s.ClaimOutbox(ctx, "a", t0, time.Minute, 1, nil)
				if len(closing) != 1 || closing[0].Event != "check_recovered" {
					t.Fatalf("the all-clear: %v", closing)
				}
				_ = s.RecordAttempt(ctx, OutboxAttempt{ID: closing[0].ID, Agent: "a", Status: closed, Attempts: 1, At: t0})
				if err := s.Retry(ctx, open[0].ID, t0); !errors.Is(err, ErrSuperseded) {
					t.Errorf("retrying the opener after its all-clear was %s: %v, want ErrSuperseded", closed, err)
				}
				if err := s.Retry(ctx, 99999, t0); !errors.Is(err, ErrNotFound) {
					t.Errorf("retrying nothing: %v", err)
				}
			})
		})
	}
}

// Claims: an entry is delivered by one agent at a time; another takes it over only when
// the lease runs out, and the first can then no longer record an attempt on it. A
// restarted agent gives back what it held. Agents claiming at once share the work
// without overlap. The leases run on real time: PostgreSQL judges them by its own clock,
// whatever time the claimer says it is.
func TestOutboxClaimsAndLeases(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		s := drv.fresh(t)
		e := func(notifier, key, incident string) *OutboxEntry {
			return &OutboxEntry{Notifier: notifier, Event: "deploy_failed", Key: key, Incident: incident, Payload: []byte("{}"), CreatedAt: t0}
		}
		if err := s.Enqueue(ctx, []*OutboxEntry{e("slack", "d1:deploy_failed", "d1"), e("slack", "d1:deploy_failed:rollback", "d1"), e("rollback", "d1:deploy_failed", "d1")}); err != nil {
			t.Fatal(err)
		}
		const lease = 2 * time.Second
		a, _ := s.ClaimOutbox(ctx, "a", time.Now(), lease, 10, nil)
		// The thread's reply waits for the message that opens it, even claimed by nobody.
		if len(a) != 2 || a[0].Key != "d1:deploy_failed" || a[1].Notifier != "rollback" {
			t.Fatalf("a claimed %s; want slack's first message and the rollback", describe(a))
		}
		if b, _ := s.ClaimOutbox(ctx, "b", time.Now(), lease, 10, nil); len(b) != 0 {
			t.Fatalf("b claimed %s while a's lease runs", describe(b))
		}
		if drv.name == "postgres" {
			// b's clock is an hour ahead: the database's clock says a's leases run on, and
			// b is told when the rollback's ends by its own clock.
			ahead := time.Now().Add(time.Hour)
			if b, _ := s.ClaimOutbox(ctx, "b", ahead, lease, 10, nil); len(b) != 0 {
				t.Fatalf("b, its clock an hour ahead, claimed %s while a's lease runs", describe(b))
			}
			if next, err := s.NextDue(ctx, ahead, []string{"slack"}); err != nil || next.Before(ahead) || next.After(ahead.Add(lease)) {
				t.Errorf("NextDue to a clock an hour ahead: %v, %v; want the lease's end by that clock, within %s of %v", next, err, lease, ahead)
			}
		}
		if ok, _ := s.RenewClaim(ctx, a[0].ID, "a", time.Now(), time.Hour); !ok {
			t.Fatal("a could not renew its claim")
		}
		time.Sleep(lease + 100*time.Millisecond) // a was killed: its claim on the rollback runs out, b takes it over
		b, _ := s.ClaimOutbox(ctx, "b", time.Now(), lease, 10, nil)
		if len(b) != 1 || b[0].ID != a[1].ID || b[0].ClaimedBy != "b" {
			t.Fatalf("b claimed %s; want the rollback whose lease ran out", describe(b))
		}
		if !b[0].Interrupted || a[0].Interrupted || a[1].Interrupted {
			t.Errorf("interrupted: b's claim %v, a's first claims %v %v; want a's claim that ran out without a result told to b only",
				b[0].Interrupted, a[0].Interrupted, a[1].Interrupted)
		}
		if ok, _ := s.RenewClaim(ctx, a[1].ID, "a", time.Now(), lease); ok {
			t.Error("a renewed a claim b holds")
		}
		if err := s.RecordAttempt(ctx, OutboxAttempt{ID: a[1].ID, Agent: "a", Status: OutboxDelivered, Attempts: 1, At: t0}); !errors.Is(err, ErrLostClaim) {
			t.Errorf("a recorded an attempt on b's claim: %v", err)
		}
		if err := s.RecordAttempt(ctx, OutboxAttempt{ID: b[0].ID, Agent: "b", Status: OutboxDelivered, Attempts: 1, At: t0}); err != nil {
			t.Fatal(err)
		}
		// a restarts: what it held is free again at once.
		if n, err := s.ReleaseClaims(ctx, "a"); n != 1 || err != nil {
			t.Fatalf("released %d, %v; want slack's first message", n, err)
		}
		if n, err := s.ReleaseClaims(ctx, "a"); n != 0 || err != nil {
			t.Errorf("a second release took back %d, %v; want none (the first did)", n, err)
		}
		a, _ = s.ClaimOutbox(ctx, "a", time.Now(), lease, 10, nil)
		if len(a) != 1 || a[0].Key != "d1:deploy_failed" || a[0].Notifier != "slack" {
			t.Fatalf("after the restart a claimed %s", describe(a))
		}
		if !a[0].Interrupted {
			t.Error("after the restart, the message a was sending when it stopped is not told interrupted: its retry cannot know it may have gone out")
		}
		_ = s.RecordAttempt(ctx, OutboxAttempt{ID: a[0].ID, Agent: "a", Status: OutboxDelivered, Attempts: 1, At: t0})
		if a, _ = s.ClaimOutbox(ctx, "a", time.Now(), lease, 10, nil); len(a) != 1 || a[0].Key != "d1:deploy_failed:rollback" {
			t.Fatalf("the reply after its thread's first message: %s", describe(a))
		}
		if a[0].Interrupted {
			t.Error("an entry never claimed before is told interrupted")
		}
		_ = s.RecordAttempt(ctx, OutboxAttempt{ID: a[0].ID, Agent: "a", Status: OutboxDelivered, Attempts: 1, At: t0})

		// Four agents claim 200 entries at once, in batches: each entry once.
		var batch []*OutboxEntry
		for i := range 200 {
			batch = append(batch, e("hook", fmt.Sprintf("k%d", i), fmt.Sprintf("i%d", i)))
		}
		if err := s.Enqueue(ctx, batch); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		claimedBy := map[int64]string{}
		var wg sync.WaitGroup
		for _, agent := range []string{"w1", "w2", "w3", "w4"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					got, err := s.ClaimOutbox(ctx, agent, t0.Add(time.Minute), time.Hour, 7, nil)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, g := range got {
						if prev, dup := claimedBy[g.ID]; dup {
							t.Errorf("entry %d claimed by %s and %s", g.ID, prev, agent)
						}
						claimedBy[g.ID] = agent
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(claimedBy) != 200 {
			t.Errorf("%d of 200 entries claimed", len(claimedBy))
		}
	})
}

// OutboxByKey returns every entry with the key, of every notifier and status, in write order.
func TestOutboxByKey(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		s := drv.fresh(t)
		entry := func(notifier, key, status string) *OutboxEntry {
			return &OutboxEntry{Notifier: notifier, Event: "deploy_failed", Key: key, Incident: "d1", Payload: []byte(`{"n":"` + notifier + `"}`),
				CreatedAt: t0, Status: status}
		}
		if err := s.Enqueue(ctx, []*OutboxEntry{entry("slack", "d1:deploy_failed", OutboxSilenced), entry("rollback", "d1:deploy_failed", ""),
			entry("rollback", "d2:deploy_failed", ""), entry("slack", "d1:deploy_failed:rollback", "")}); err != nil {
			t.Fatal(err)
		}
		got, err := s.OutboxByKey(ctx, "d1:deploy_failed")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Notifier != "slack" || got[0].Status != OutboxSilenced || got[1].Notifier != "rollback" ||
			got[1].Status != OutboxPending || string(got[1].Payload) != `{"n":"rollback"}` || !got[1].CreatedAt.Equal(t0) {
			t.Fatalf("OutboxByKey(d1:deploy_failed) = %s", describe(got))
		}
		if none, err := s.OutboxByKey(ctx, "d3:deploy_failed"); err != nil || len(none) != 0 {
			t.Errorf("an unknown key: %+v %v", none, err)
		}
	})
}

// describe lists entries as id:notifier:status.
func describe(entries []*OutboxEntry) string {
	var parts []string
	for _, e := range entries {
		parts = append(parts, fmt.Sprintf("%d:%s:%s:%s", e.ID, e.Notifier, e.Key, e.Status))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
