package agent

// Recording a verdict: with its notifications in one transaction, retried until the store
// takes it, whatever the disk does.

import (
	"context"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/internal/backoff"
	"github.com/vigil-monitor/vigil/store"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
)

// decide records the verdict with its notifications in one transaction, stops the
// verification's other runs and wakes everyone waiting for it. A verdict is never dropped:
// while the store refuses it (a full disk, a locked or broken database) it is retried with
// backoff, readiness and vigil_verdicts_unrecorded say so, and long-polls keep waiting; it
// is written, with its rollback, as soon as the store takes writes again. Only a shutdown
// stops the retries, and then the deploy is still "verifying" in the store and is verified
// again after the restart.
func (a *Agent) decide(v *verification, status, reason string) {
	d := v.deploy
	now := a.clock.Now()
	v.cancel() // the other checks' runs in flight are not needed any more
	halt := ""
	if status == store.StatusFailed {
		v.mu.Lock()
		for _, c := range v.checks {
			if h := v.tallies[c.Name].halt; h != "" {
				halt = c.Name + ": " + h
				break
			}
		}
		v.mu.Unlock()
	}
	if v.span != nil {
		v.span.SetAttributes(attribute.String("vigil.verdict", status), attribute.String("vigil.reason", reason))
		if status != store.StatusPassed {
			v.span.SetStatus(codes.Error, reason)
		}
	}
	dec := &store.Decision{DeployID: d.ID, Status: status, Reason: reason, Halt: halt, At: now}
	dec.Outbox = a.deployNotifications(d, v, status, reason, halt, now)
	ok, recorded := a.recordDecision(dec)
	a.endVerification(v)
	switch {
	case !recorded:
		a.log.Warn("verdict not recorded before shutdown; the deploy is verified again after the restart",
			"deploy", d.ID, "verdict", status)
		return
	case !ok:
		a.log.Info("verdict not recorded: the deploy was already decided or superseded", "deploy", d.ID, "verdict", status)
		return
	}
	a.metrics.verdicts.WithLabelValues(d.Service, status).Inc()
	a.recordEvent(&store.Event{At: now, Kind: "deploy_" + status, Service: d.Service, DeployID: d.ID, RunID: firstFailedRun(v),
		Summary: d.Service + " " + d.Version + ": " + reason})
	a.log.Info("deploy verdict", "deploy", d.ID, "service", d.Service, "version", d.Version, "verdict", status,
		"reason", reason, "halt", halt, "after", now.Sub(d.CreatedAt))
	a.signalOutbox()
}

// verdictBackoff spaces the retries of a verdict the store refuses: soon at first (a
// locked database frees up in moments), then at most every ten seconds (a full disk).
var verdictBackoff = backoff.Policy{First: 100 * time.Millisecond, Max: 10 * time.Second}

// unrecordedVerdicts counts verdicts waiting for the store to take them.
func (a *Agent) unrecordedVerdicts() int { return int(a.unrecorded.Load()) }

// recordDecision writes dec, retrying with backoff until the store takes it or the agent
// shuts down. ok is the store's answer (false: the deploy was no longer verifying).
func (a *Agent) recordDecision(dec *store.Decision) (ok, recorded bool) {
	ctx := context.WithoutCancel(a.runCtx)
	for attempt := 1; ; attempt++ {
		ok, err := a.store.DecideDeploy(ctx, dec)
		if err == nil {
			if attempt > 1 {
				a.metrics.unrecorded.Dec()
				a.log.Info("verdict recorded after the store recovered", "deploy", dec.DeployID, "attempts", attempt)
			}
			return ok, true
		}
		if attempt == 1 {
			a.metrics.unrecorded.Inc()
			a.unrecorded.Add(1)
			defer a.unrecorded.Add(-1)
		}
		wait := verdictBackoff.Delay(attempt)
		a.log.Error("recording a verdict failed; retrying", "deploy", dec.DeployID, "verdict", dec.Status,
			"attempt", attempt, "retry_in", wait, "error", err)
		if !a.sleepUntil(a.runCtx, a.clock.Now().Add(wait)) {
			a.metrics.unrecorded.Dec()
			return false, false
		}
	}
}

// firstFailedRun is the stored id of the first run of a verification that did not pass,
// a failed one before any other; 0 when every run passed.
func firstFailedRun(v *verification) int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	var id int64
	for _, c := range v.checks {
		t := v.tallies[c.Name]
		switch {
		case t == nil || t.first == nil:
		case t.first.Outcome == checks.Fail:
			return t.firstID
		case id == 0:
			id = t.firstID
		}
	}
	return id
}
