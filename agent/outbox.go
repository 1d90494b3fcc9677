package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/internal/backoff"
	"github.com/vigil-monitor/vigil/store"
)

// The outbox worker delivers what deployNotifications and onScheduledResult wrote. Every
// entry is delivered at least once: it stays pending until a notifier accepts it, so an
// agent killed mid-send sends it again after a restart with the same idempotency key.
// Entries of one notifier go out one at a time in the order they were written (a Slack
// thread must exist before its replies); notifiers do not wait for each other, so a slow
// Slack never delays a rollback webhook.

// outboxLease is how long a claimed notification is this agent's to deliver
// (agent.outbox_lease): an agent killed mid-delivery leaves it to another agent once the
// lease is over, and that agent sends it with the same Idempotency-Key.
func (a *Agent) outboxLease() time.Duration { return a.Runtime().Config.Agent.OutboxLease }

// deliverClaimed delivers e while holding its claim: the lease is renewed as the attempt
// starts and every third of a lease while it lasts (a webhook may take longer than a
// lease), so no other agent sends it meanwhile. An entry whose claim was lost is another
// agent's now, and is left to it.
func (a *Agent) deliverClaimed(ctx context.Context, e *store.OutboxEntry) bool {
	lease := a.outboxLease()
	if ok, err := a.store.RenewClaim(ctx, e.ID, a.name, a.clock.Now().Add(lease)); err != nil || !ok {
		if err == nil {
			a.log.Info("notification claimed by another agent meanwhile; leaving it to it", "notifier", e.Notifier, "key", e.Key)
		}
		return false
	}
	done := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		for {
			t := a.clock.NewTimer(lease / 3)
			select {
			case <-done:
				t.Stop()
				return
			case <-t.C():
			}
			if _, err := a.store.RenewClaim(context.WithoutCancel(ctx), e.ID, a.name, a.clock.Now().Add(lease)); err != nil {
				a.log.Warn("renewing the claim on a notification failed", "notifier", e.Notifier, "key", e.Key, "error", err)
			}
		}
	}()
	finished := a.deliver(ctx, e)
	close(done)
	<-renewed
	return finished
}

const (
	outboxBatch      = 100
	outboxMaxBackoff = 5 * time.Minute
)

func (a *Agent) signalOutbox() {
	select {
	case a.outboxSig <- struct{}{}:
	default:
	}
}

// outboxClaimRetry bounds the wait after the outbox could not be claimed (a full disk, a
// locked store): from 1 s, doubled each time, up to this.
const outboxClaimRetry = 30 * time.Second

func (a *Agent) outboxLoop(ctx context.Context) {
	var failing time.Duration // the wait after a failed claim; 0 while claims work
	for ctx.Err() == nil {
		wait := time.Minute
		if err := a.deliverDue(ctx); err != nil {
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
			if next, err := a.store.NextDue(ctx); err == nil && !next.IsZero() {
				wait = min(max(next.Sub(a.clock.Now()), 0), time.Minute)
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

// deliverDue makes one attempt at every entry due now; the error is a claim that failed.
func (a *Agent) deliverDue(ctx context.Context) error {
	for ctx.Err() == nil {
		due, err := a.store.ClaimOutbox(ctx, a.name, a.clock.Now(), a.outboxLease(), outboxBatch)
		if err != nil {
			return err
		}
		if len(due) == 0 {
			return nil
		}
		byNotifier := map[string][]*store.OutboxEntry{}
		for _, e := range due {
			byNotifier[e.Notifier] = append(byNotifier[e.Notifier], e)
		}
		var wg sync.WaitGroup
		for _, list := range byNotifier {
			wg.Add(1)
			go func() {
				defer wg.Done()
				blocked := map[string]bool{} // incidents whose earlier entry is still pending
				for _, e := range list {
					if ctx.Err() != nil {
						return
					}
					if blocked[e.Incident] {
						continue
					}
					if !a.deliverClaimed(ctx, e) {
						blocked[e.Incident] = true
					}
				}
			}()
		}
		wg.Wait()
		if len(due) < outboxBatch {
			return nil
		}
	}
	return nil
}

// deliver makes one attempt at e and records it; it reports whether e is finished.
func (a *Agent) deliver(ctx context.Context, e *store.OutboxEntry) bool {
	rt := a.Runtime()
	now := a.clock.Now()
	record := func(status, lastErr string, next time.Time) bool {
		err := a.store.RecordAttempt(context.WithoutCancel(ctx), store.OutboxAttempt{ID: e.ID, Agent: a.name, Status: status,
			Attempts: e.Attempts + 1, Next: next, LastError: lastErr, At: a.clock.Now()})
		if err != nil {
			a.log.Error("recording a delivery attempt failed", "notifier", e.Notifier, "key", e.Key, "error", err)
		}
		outcome := status
		if status == store.OutboxPending {
			outcome = "retry"
		}
		a.metrics.notifications.WithLabelValues(e.Notifier, outcome).Inc()
		return status != store.OutboxPending
	}
	nt := rt.Notifiers[e.Notifier]
	if nt == nil {
		return a.orphaned(ctx, e, now, record)
	}
	var ev alerting.Event
	if err := json.Unmarshal(e.Payload, &ev); err != nil {
		return record(store.OutboxDead, "the stored event is not valid JSON: "+err.Error(), time.Time{})
	}
	st, err := a.store.AlertState(ctx, e.Notifier, e.Incident)
	if err != nil {
		a.log.Warn("reading alert state failed; will retry", "notifier", e.Notifier, "error", err)
		return false
	}
	derr := nt.Deliver(ctx, &ev, alerting.State(st))
	if err := a.store.SaveAlertState(context.WithoutCancel(ctx), e.Notifier, e.Incident, st, a.clock.Now()); err != nil {
		a.log.Error("saving alert state failed", "notifier", e.Notifier, "incident", e.Incident, "error", err)
	}
	if ctx.Err() != nil && derr != nil {
		return false // shutting down: the attempt does not count
	}
	action := ""
	if w, ok := nt.(*alerting.Webhook); ok {
		action = w.Action()
	}
	switch {
	case derr == nil:
		a.log.Info("notification delivered", "notifier", e.Notifier, "event", e.Event, "key", e.Key, "attempt", e.Attempts+1)
		if action != "" {
			a.metrics.rollbacks.WithLabelValues(ev.Service).Inc()
			a.actionResult(&ev, e.Notifier, action, actionAccepted(e.Notifier, action, &ev), now)
		}
		return record(store.OutboxDelivered, "", time.Time{})
	case errors.Is(derr, alerting.ErrDryRun):
		a.log.Info("dry run: notification not sent", "notifier", e.Notifier, "event", e.Event, "would", derr.Error())
		if action != "" {
			a.actionResult(&ev, e.Notifier, action, "dry run: "+derr.Error(), now)
		}
		return record(store.OutboxDryRun, derr.Error(), time.Time{})
	case alerting.Permanent(derr):
		a.log.Error("notification dead-lettered: the receiver refused it", "notifier", e.Notifier, "event", e.Event, "key", e.Key, "error", derr)
		return record(store.OutboxDead, derr.Error(), time.Time{})
	}
	limit := rt.Config.Notifiers[e.Notifier].MaxAttempts
	if e.Attempts+1 >= limit {
		a.log.Error("notification dead-lettered: out of attempts", "notifier", e.Notifier, "event", e.Event, "key", e.Key,
			"attempts", e.Attempts+1, "error", derr)
		if action != "" {
			a.actionResult(&ev, e.Notifier, action, fmt.Sprintf("%s FAILED to %s %s after %d attempts: %v; nothing was rolled back or halted",
				e.Notifier, action, subject(&ev), e.Attempts+1, derr), now)
		}
		return record(store.OutboxDead, derr.Error(), time.Time{})
	}
	wait, ok := alerting.RetryAfter(derr)
	if !ok {
		wait = outboxBackoff.Delay(e.Attempts + 1)
	}
	a.log.Warn("notification failed; will retry", "notifier", e.Notifier, "event", e.Event, "key", e.Key,
		"attempt", e.Attempts+1, "retry_in", wait.Round(time.Millisecond), "error", derr)
	return record(store.OutboxPending, derr.Error(), a.clock.Now().Add(wait))
}

// orphanGrace is how long after it was queued an entry whose notifier left the config
// waits for it to come back (a reload that renamed it, a file caught mid-edit) before it is
// dead-lettered.
const orphanGrace = time.Hour

// orphaned handles an entry whose notifier is not in the config: it waits, without using
// an attempt, a quarter of its age (2 s to 1 min) at a time, for an hour from when it was
// queued, and is dead-lettered after that; a rollback is not lost to an edit.
func (a *Agent) orphaned(ctx context.Context, e *store.OutboxEntry, now time.Time, record func(string, string, time.Time) bool) bool {
	msg := fmt.Sprintf("notifier %q is not in the config (renamed or removed by a reload?)", e.Notifier)
	age := now.Sub(e.CreatedAt)
	if age >= orphanGrace {
		a.log.Error("notification dead-lettered: its notifier has not been in the config for an hour since it was queued",
			"notifier", e.Notifier, "event", e.Event, "key", e.Key)
		return record(store.OutboxDead, msg+"; dead-lettered "+orphanGrace.String()+" after it was queued", time.Time{})
	}
	wait := min(max(age/4, 2*time.Second), time.Minute)
	a.log.Warn("notification waits: its notifier is not in the config; put it back within an hour of the entry, or it is dead-lettered",
		"notifier", e.Notifier, "event", e.Event, "key", e.Key, "retry_in", wait)
	if err := a.store.RecordAttempt(context.WithoutCancel(ctx), store.OutboxAttempt{ID: e.ID, Agent: a.name, Status: store.OutboxPending,
		Attempts: e.Attempts, Next: now.Add(wait), LastError: msg, At: now}); err != nil {
		a.log.Error("recording a delivery attempt failed", "notifier", e.Notifier, "key", e.Key, "error", err)
	}
	return false
}

// outboxBackoff spaces a notification's retries: exponential from one second, with
// jitter, at most outboxMaxBackoff apart.
var outboxBackoff = backoff.Policy{First: time.Second, Max: outboxMaxBackoff, Jitter: true}

// actionResult tells the people who heard about an incident what a rollback or halt
// webhook did: one entry per notifier that is not itself an action webhook.
func (a *Agent) actionResult(ev *alerting.Event, webhook, action, summary string, now time.Time) {
	kind := eventRollback
	if action == alerting.ActionHalt {
		kind = eventHalt
	}
	e := &store.Event{At: now, Kind: kind, Service: ev.Service, Check: ev.Check, Incident: ev.Incident, Summary: summary}
	if ev.Deploy != nil {
		e.DeployID = ev.Deploy.ID
	}
	a.recordEvent(e)
	rt := a.Runtime()
	svc := rt.Config.Services[ev.Service]
	if svc == nil {
		return
	}
	var targets []string
	for _, n := range svc.OnFailure.For(ev.Name) {
		nt := rt.Notifiers[n]
		if w, ok := nt.(*alerting.Webhook); nt == nil || (ok && w.Action() != "") || !nt.Wants(alerting.EventActionResult) {
			continue
		}
		targets = append(targets, n)
	}
	if len(targets) == 0 {
		return
	}
	res := *ev
	res.Name, res.Key, res.Summary = alerting.EventActionResult, ev.Key+":"+webhook, summary
	res.Actions = []alerting.ActionNote{{Notifier: webhook, Action: action, DryRun: ev.DryRun}}
	res.FailedChecks, res.OccurredAt = nil, now
	if err := a.store.Enqueue(context.WithoutCancel(a.runCtx), a.entries(&res, targets, "", now)); err != nil {
		a.log.Error("enqueueing an action result failed", "webhook", webhook, "error", err)
		return
	}
	a.signalOutbox()
}

func subject(ev *alerting.Event) string {
	if ev.Deploy != nil {
		return ev.Deploy.Service + " " + ev.Deploy.Version + " (" + ev.Deploy.ID + ")"
	}
	return "check " + ev.Check
}

// actionAccepted says what an action webhook's success means: "rollback-web accepted the
// rollback of web v2.1.0 (d-42): production goes back to v2.0.9".
func actionAccepted(notifier, action string, ev *alerting.Event) string {
	if action == alerting.ActionHalt {
		return fmt.Sprintf("%s accepted the halt of the %s rollout", notifier, subject(ev))
	}
	s := fmt.Sprintf("%s accepted the rollback of %s", notifier, subject(ev))
	if ev.Deploy != nil && ev.Deploy.PreviousVersion != "" {
		s += ": production goes back to " + ev.Deploy.PreviousVersion
	}
	return s
}
