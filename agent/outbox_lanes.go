package agent

import (
	"context"
	"sync"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// Lanes: each notifier's entries go out in a lane of their own, one at a time in the order
// they were written, while the other notifiers' lanes go on: a Slack that hangs for its
// whole timeout on each of a hundred pages does not hold up a rollback webhook written
// after them. A lane that is busy is not claimed from again until it is done; one that its
// receiver asked to wait (Retry-After) pauses, and its other entries wait with it instead
// of each being refused in turn.

const (
	outboxBatch      = 100
	outboxMaxBackoff = 5 * time.Minute
	// outboxClaimRetry bounds the wait after the outbox could not be claimed (a full disk,
	// a locked store): from 1 s, doubled each time, up to this.
	outboxClaimRetry = 30 * time.Second
)

// outboxLanes are the notifiers being delivered to now, and their pauses.
type outboxLanes struct {
	mu     sync.Mutex
	busy   map[string]bool
	paused map[string]time.Time // until when a receiver asked to wait
	wg     sync.WaitGroup
}

func newOutboxLanes() *outboxLanes {
	return &outboxLanes{busy: map[string]bool{}, paused: map[string]time.Time{}}
}

// skip is the notifiers not to claim for now: busy, or paused until after now.
func (l *outboxLanes) skip(now time.Time) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for n := range l.busy {
		out = append(out, n)
	}
	for n, until := range l.paused {
		switch {
		case !until.After(now):
			delete(l.paused, n)
		case !l.busy[n]:
			out = append(out, n)
		}
	}
	return out
}

func (l *outboxLanes) pausedUntil(notifier string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.paused[notifier]
}

func (a *Agent) signalOutbox() {
	select {
	case a.outboxSig <- struct{}{}:
	default:
	}
}

// pauseLane pauses notifier's lane until until (its receiver asked to wait).
func (a *Agent) pauseLane(notifier string, until time.Time) {
	l := a.lanes
	l.mu.Lock()
	defer l.mu.Unlock()
	if until.After(l.paused[notifier]) {
		l.paused[notifier] = until
	}
}

func (a *Agent) outboxLoop(ctx context.Context) {
	defer a.lanes.wg.Wait()   // deliveries in flight end (their context is done) before the store closes
	var failing time.Duration // the wait after a failed claim; 0 while claims work
	for ctx.Err() == nil {
		wait := time.Minute
		if err := a.dispatch(ctx); err != nil {
			// A claim is a write: on a full disk it fails while NextDue, a read, still
			// answers an entry due now, and the loop would spin on it.
			failing = min(max(2*failing, time.Second), outboxClaimRetry)
			wait = failing
			if ctx.Err() == nil {
				a.log.Error("reading the outbox failed; trying again", "error", err, "in", wait)
			}
		} else {
			if failing > 0 {
				a.log.Info("the outbox can be read again")
			}
			failing = 0
			now := a.clock.Now()
			if next, err := a.store.NextDue(ctx, now, a.lanes.skip(now)); err == nil && !next.IsZero() {
				wait = min(max(next.Sub(now), 0), time.Minute)
			}
			for _, n := range a.lanes.skip(now) { // a paused lane wakes the loop when its pause ends
				if until := a.lanes.pausedUntil(n); !until.IsZero() {
					wait = min(wait, max(until.Sub(now), 0))
				}
			}
		}
		t := a.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-a.outboxSig:
			t.Stop()
		case <-t.C():
		}
	}
}

// dispatch claims the entries due now of the notifiers whose lanes are free, and starts a
// lane for each notifier among them; the error is a claim that failed.
func (a *Agent) dispatch(ctx context.Context) error {
	for ctx.Err() == nil {
		due, err := a.store.ClaimOutbox(ctx, a.name, a.clock.Now(), a.outboxLease(), outboxBatch, a.lanes.skip(a.clock.Now()))
		if err != nil {
			return err
		}
		byNotifier := map[string][]*store.OutboxEntry{}
		for _, e := range due {
			byNotifier[e.Notifier] = append(byNotifier[e.Notifier], e)
		}
		for notifier, list := range byNotifier {
			a.lanes.mu.Lock()
			a.lanes.busy[notifier] = true
			a.lanes.mu.Unlock()
			a.lanes.wg.Add(1)
			go func() {
				defer a.lanes.wg.Done()
				a.deliverLane(ctx, list)
				a.lanes.mu.Lock()
				delete(a.lanes.busy, notifier)
				a.lanes.mu.Unlock()
				a.signalOutbox() // its next entries may be due
			}()
		}
		if len(due) < outboxBatch {
			return nil
		}
	}
	return nil
}

// deliverLane delivers one notifier's claimed entries in order. An incident whose earlier
// entry is still pending gets nothing more now; a pause its receiver asked for defers the
// rest, unattempted, to its end.
func (a *Agent) deliverLane(ctx context.Context, list []*store.OutboxEntry) {
	blocked := map[string]bool{} // incidents whose earlier entry is still pending
	for _, e := range list {
		if ctx.Err() != nil {
			return
		}
		if until := a.lanes.pausedUntil(e.Notifier); until.After(a.clock.Now()) {
			a.defer_(ctx, e, until)
			continue
		}
		if blocked[e.Incident] {
			continue
		}
		if !a.deliverClaimed(ctx, e) {
			blocked[e.Incident] = true
		}
	}
}

// defer_ puts e back, unattempted and unclaimed, due at until.
func (a *Agent) defer_(ctx context.Context, e *store.OutboxEntry, until time.Time) {
	now := a.clock.Now()
	if err := a.store.RecordAttempt(context.WithoutCancel(ctx), store.OutboxAttempt{ID: e.ID, Agent: a.name, Status: store.OutboxPending,
		Attempts: e.Attempts, Wait: until.Sub(now), LastError: e.LastError, At: now}); err != nil {
		a.log.Warn("putting back a notification its receiver's pause defers failed; its claim runs out instead", "notifier", e.Notifier,
			"idempotency_key", e.Key, "error", err)
	}
}

// deliverDue dispatches what is due now and waits for every lane to finish: a caller that
// must see the deliveries done (a test, a manual flush).
func (a *Agent) deliverDue(ctx context.Context) error {
	err := a.dispatch(ctx)
	a.lanes.wg.Wait()
	return err
}
