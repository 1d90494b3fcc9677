package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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
// agent's now, and is left to it: a renewal that finds the claim lost ends the send at
// once, and an attempt that ends after the claim was lost (this agent was paused past its
// lease) records nothing; the agent that took it over sends it with the same
// Idempotency-Key and records the result.
func (a *Agent) deliverClaimed(ctx context.Context, e *store.OutboxEntry) bool {
	if !a.holds(ctx, e) {
		return false
	}
	lease := a.outboxLease()
	sendCtx, lost := context.WithCancel(ctx)
	defer lost()
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
			if !a.holds(ctx, e) {
				lost()
				return
			}
		}
	}()
	finished := a.deliver(sendCtx, e)
	close(done)
	<-renewed
	return finished
}

// holds renews the claim on e and says whether it is still this agent's. A renewal that
// failed (the store did not answer) holds it: the attempt's record is refused if the claim
// was lost meanwhile.
func (a *Agent) holds(ctx context.Context, e *store.OutboxEntry) bool {
	ok, err := a.store.RenewClaim(context.WithoutCancel(ctx), e.ID, a.name, a.clock.Now(), a.outboxLease())
	switch {
	case err != nil:
		a.log.Warn("renewing the claim on a notification failed", "notifier", e.Notifier, "idempotency_key", e.Key, "error", err)
	case !ok:
		a.log.Warn("the claim on a notification was lost (its lease ran out: this agent paused, or could not renew it) and another agent "+
			"took it over; leaving it to that one, which sends it with the same Idempotency-Key", "notifier", e.Notifier, "idempotency_key", e.Key)
	}
	return ok || err != nil
}

// deliver makes one attempt at e and records it; it reports whether e is finished.
func (a *Agent) deliver(ctx context.Context, e *store.OutboxEntry) bool {
	rt := a.Runtime()
	now := a.clock.Now()
	record := func(status, lastErr string, wait time.Duration) bool {
		err := a.store.RecordAttempt(context.WithoutCancel(ctx), store.OutboxAttempt{ID: e.ID, Agent: a.name, Status: status,
			Attempts: e.Attempts + 1, Wait: wait, LastError: lastErr, At: a.clock.Now()})
		if errors.Is(err, store.ErrLostClaim) {
			a.log.Warn("the claim on a notification was lost before its attempt was recorded; the agent that took it over records its own",
				"notifier", e.Notifier, "idempotency_key", e.Key)
			return false
		}
		if err != nil {
			a.log.Error("recording a delivery attempt failed", "notifier", e.Notifier, "idempotency_key", e.Key, "error", err)
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
		return record(store.OutboxDead, "the stored event is not valid JSON: "+err.Error(), 0)
	}
	ev.Interrupted = e.Interrupted
	st, err := a.store.AlertState(ctx, e.Notifier, e.Incident)
	if err != nil {
		a.log.Warn("reading alert state failed; will retry", "notifier", e.Notifier, "error", err)
		return false
	}
	derr := nt.Deliver(ctx, &ev, alerting.State(st))
	if !a.holds(ctx, e) {
		return false // another agent's now, result and all
	}
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
		a.log.Info("notification delivered", "notifier", e.Notifier, "event", e.Event, "idempotency_key", e.Key, "attempt", e.Attempts+1)
		if action != "" {
			a.metrics.rollbacks.WithLabelValues(ev.Service).Inc()
			a.actionResult(&ev, e.Notifier, action, actionAccepted(e.Notifier, action, &ev), now)
		}
		return record(store.OutboxDelivered, "", 0)
	case errors.Is(derr, alerting.ErrSkipped):
		// Not sent, and not to be: recorded as such, never as delivered.
		a.log.Info("notification skipped", "notifier", e.Notifier, "event", e.Event, "idempotency_key", e.Key, "incident", e.Incident,
			"why", derr.Error())
		return record(store.OutboxSkipped, derr.Error(), 0)
	case errors.Is(derr, alerting.ErrDryRun):
		a.log.Info("dry run: notification not sent", "notifier", e.Notifier, "event", e.Event, "would", derr.Error())
		if action != "" {
			a.actionResult(&ev, e.Notifier, action, "dry run: "+derr.Error(), now)
		}
		return record(store.OutboxDryRun, derr.Error(), 0)
	case alerting.Permanent(derr):
		a.log.Error("notification dead-lettered: the receiver refused it", "notifier", e.Notifier, "event", e.Event, "idempotency_key", e.Key, "error", derr)
		if action != "" {
			a.actionResult(&ev, e.Notifier, action, actionFailed(e.Notifier, action, &ev, e.Attempts+1, derr), now)
		}
		return record(store.OutboxDead, derr.Error(), 0)
	}
	if a.paced(ctx, e, derr, now) {
		return false
	}
	limit := rt.Config.Notifiers[e.Notifier].MaxAttempts
	if e.Attempts+1 >= limit {
		a.log.Error("notification dead-lettered: out of attempts", "notifier", e.Notifier, "event", e.Event, "idempotency_key", e.Key,
			"attempts", e.Attempts+1, "error", derr)
		if action != "" {
			a.actionResult(&ev, e.Notifier, action, actionFailed(e.Notifier, action, &ev, e.Attempts+1, derr), now)
		}
		return record(store.OutboxDead, derr.Error(), 0)
	}
	wait, ok := retryAfter(derr)
	if !ok {
		wait = outboxBackoff.Delay(e.Attempts + 1)
	}
	a.log.Warn("notification failed; will retry", "notifier", e.Notifier, "event", e.Event, "idempotency_key", e.Key,
		"attempt", e.Attempts+1, "retry_in", wait.Round(time.Millisecond), "error", derr)
	return record(store.OutboxPending, derr.Error(), wait)
}

// paced handles an attempt the receiver answered by asking to wait (a 429 or 503 with
// Retry-After: Slack's rate limit under a burst of incidents): the notifier's lane pauses
// that long, and for an hour from when the entry was queued (by the store's clock: see
// store.OutboxEntry.Queued) the attempt does not count toward max_attempts (a burst of
// 100 pages is not dead-lettered by being paced); after that it does. It reports whether it handled the attempt.
func (a *Agent) paced(ctx context.Context, e *store.OutboxEntry, derr error, now time.Time) bool {
	wait, ok := retryAfter(derr)
	if !ok || now.Sub(e.Queued) >= orphanGrace {
		return false
	}
	a.pauseLane(e.Notifier, now.Add(wait))
	a.log.Warn("notification paced by the receiver; will retry", "notifier", e.Notifier, "event", e.Event, "idempotency_key", e.Key,
		"retry_in", wait, "error", derr)
	if err := a.store.RecordAttempt(context.WithoutCancel(ctx), store.OutboxAttempt{ID: e.ID, Agent: a.name, Status: store.OutboxPending,
		Attempts: e.Attempts, Wait: wait, LastError: derr.Error(), At: now}); err != nil {
		a.log.Error("recording a delivery attempt failed", "notifier", e.Notifier, "idempotency_key", e.Key, "error", err)
	}
	a.metrics.notifications.WithLabelValues(e.Notifier, "retry").Inc()
	return true
}

// retryAfter is how long the receiver asked to wait, at most outboxMaxBackoff: a day's
// Retry-After (a proxy's rate limit, a misread header) would hold the lane, and every page
// behind it, for a day; asking again in 5 minutes costs one request.
func retryAfter(derr error) (time.Duration, bool) {
	wait, ok := alerting.RetryAfter(derr)
	return min(wait, outboxMaxBackoff), ok
}

// orphanGrace is how long after it was queued (by the store's clock, the database's on
// PostgreSQL: no agent's clock ahead or behind shortens or stretches it) an entry whose
// notifier left the config waits for it to come back (a reload that renamed it, a file caught mid-edit) before it is
// dead-lettered.
const orphanGrace = time.Hour

// orphaned handles an entry whose notifier is not in the config: it waits, without using
// an attempt, a quarter of its age (2 s to 1 min) at a time, for an hour from when it was
// queued, and is dead-lettered after that; a rollback is not lost to an edit.
func (a *Agent) orphaned(ctx context.Context, e *store.OutboxEntry, now time.Time, record func(string, string, time.Duration) bool) bool {
	msg := fmt.Sprintf("notifier %q is not in the config (renamed or removed by a reload?)", e.Notifier)
	age := now.Sub(e.Queued) // by the store's clock, not the queuing agent's
	if age >= orphanGrace {
		a.log.Error("notification dead-lettered: its notifier has not been in the config for an hour since it was queued",
			"notifier", e.Notifier, "event", e.Event, "idempotency_key", e.Key)
		return record(store.OutboxDead, msg+"; dead-lettered "+orphanGrace.String()+" after it was queued", 0)
	}
	wait := min(max(age/4, 2*time.Second), time.Minute)
	a.log.Warn("notification waits: its notifier is not in the config; put it back within an hour of the entry, or it is dead-lettered",
		"notifier", e.Notifier, "event", e.Event, "idempotency_key", e.Key, "retry_in", wait)
	if err := a.store.RecordAttempt(context.WithoutCancel(ctx), store.OutboxAttempt{ID: e.ID, Agent: a.name, Status: store.OutboxPending,
		Attempts: e.Attempts, Wait: wait, LastError: msg, At: now}); err != nil {
		a.log.Error("recording a delivery attempt failed", "notifier", e.Notifier, "idempotency_key", e.Key, "error", err)
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

// actionFailed says what an action webhook that was refused or ran out of attempts means.
// A receiver that got a request and did not answer it (a timeout, a connection that died,
// a 409 saying it still works on an earlier attempt) may have acted, whatever later
// attempts heard, and vigil cannot tell. One that refused every request it got (a 401, a
// 404, a redirect, a 5xx), or was never reached (its name did not resolve, the connection
// was refused, an untrusted certificate), did not act.
func actionFailed(notifier, action string, ev *alerting.Event, attempts int, derr error) string {
	tries := "1 attempt"
	if attempts != 1 {
		tries = fmt.Sprintf("%d attempts", attempts)
	}
	s := fmt.Sprintf("%s FAILED to %s %s after %s: %v; ", notifier, action, subject(ev), tries, derr)
	ae := (*alerting.Error)(nil)
	answered := errors.As(derr, &ae) && ae.StatusCode != 0
	switch {
	case alerting.MayHaveArrived(derr) && answered && ae.StatusCode == http.StatusConflict:
		return s + "it was still working on an earlier attempt, so it may have acted: check it before you act"
	case alerting.MayHaveArrived(derr) && answered:
		return s + "an earlier attempt got no answer, so it may have acted: check it before you act"
	case alerting.MayHaveArrived(derr):
		return s + "it never answered, so it may have acted: check it before you act"
	case action == alerting.ActionHalt:
		return s + "nothing was halted"
	}
	return s + "nothing was rolled back"
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
