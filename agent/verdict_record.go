package agent

// Recording a verdict. Each location verifying a deploy reports its own verdict; the
// deploy's verdict is decided from the reports by the quorum rules (quorum.go), in the
// store's transaction that holds the deploy, with its notifications: however many agents
// report, one of them decides, once. A report is retried until the store takes it,
// whatever the disk or the database does.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/backoff"
	"github.com/vigil-monitor/vigil/store"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
)

// finishLocation reports this location's verdict on the deploy, stops the verification's
// other runs and wakes everyone waiting for it. When the report decides the deploy (one
// location, or the quorum reached) the verdict is written with its notifications in the
// same transaction; otherwise the deploy waits for the other locations (watch.go). A
// report is never dropped: while the store refuses it (a full disk, a database
// restarting) it is retried with backoff, readiness and vigil_verdicts_unrecorded say so;
// only a shutdown stops the retries, and then the deploy is verified here again after the
// restart.
func (a *Agent) finishLocation(v *verification, status, reason string) {
	d := v.deploy
	now := a.clock.Now()
	v.cancel() // the other checks' runs in flight are not needed any more
	halt := ""
	var failed []alerting.FailedCheck
	v.mu.Lock()
	ready, isReady := v.ready()
	for _, c := range v.checks {
		t := v.tallies[c.Name]
		if t == nil {
			continue
		}
		if status == store.StatusFailed && halt == "" && t.halt != "" {
			halt = c.Name + ": " + t.halt
		}
		if t.first != nil && status != store.StatusPassed {
			fc := a.failedCheck(t.first, a.runURL(t.firstID))
			fc.Baseline = baselineNote(t.first, v.baseline[c.Name])
			if v.svc != nil {
				a.checkContacts(a.Runtime(), &fc, &alerting.Event{Owners: v.svc.Owners, RunbookURL: string(v.svc.RunbookURL)})
			}
			failed = append(failed, fc)
		}
	}
	v.mu.Unlock()
	if v.span != nil {
		v.span.SetAttributes(attribute.String("vigil.verdict", status), attribute.String("vigil.reason", reason))
		if status != store.StatusPassed {
			v.span.SetStatus(codes.Error, reason)
		}
	}
	evidence, _ := json.Marshal(failed)
	rep := &store.LocationReport{DeployID: d.ID, Location: a.location, Agent: a.name, Status: status, Reason: reason,
		Halt: halt, Evidence: evidence, At: now}
	after, decided, recorded := a.recordReport(d, v, rep, false)
	a.endVerification(v)
	if recorded && isReady {
		a.metrics.ready.WithLabelValues(d.Service).Observe(ready.Seconds())
	}
	switch {
	case !recorded:
		a.log.Warn("verdict not recorded before shutdown; the deploy is verified again after the restart",
			"deploy", d.ID, "verdict", status)
	case decided:
		a.announce(after, firstFailedRun(v))
	case after != nil && after.Status == store.StatusVerifying:
		a.log.Info("this agent's verdict is in; the deploy waits for the other locations or agents", "deploy", d.ID,
			"location", a.location, "verdict", status, "expected", after.Locations)
		a.awaitLocations(after, now)
	default:
		a.log.Info("this location's verdict came after the deploy was decided or superseded", "deploy", d.ID, "verdict", status)
	}
}

// announce counts, logs and puts on the status page's timeline a verdict this agent
// decided (runID: its evidence, when this location's verification had it), and wakes the
// outbox.
func (a *Agent) announce(d *store.Deploy, runID int64) {
	a.metrics.verdicts.WithLabelValues(d.Service, d.Status).Inc()
	a.recordEvent(&store.Event{At: d.DecidedAt, Kind: "deploy_" + d.Status, Service: d.Service, DeployID: d.ID, RunID: runID,
		Summary: d.Service + " " + d.Version + ": " + d.Reason})
	a.log.Info("deploy verdict", "deploy", d.ID, "service", d.Service, "version", d.Version, "verdict", d.Status,
		"reason", d.Reason, "halt", d.Halt, "after", d.DecidedAt.Sub(d.CreatedAt))
	a.signalOutbox()
}

// decider decides a deploy from its locations' reports by the service's quorum; final is
// set once the wait for the missing locations is over; awaited are the agents each
// location waits for (awaitedAgents).
func (a *Agent) decider(final bool, vc verdictContext, awaited map[string][]string) store.DeployDecider {
	return func(d *store.Deploy, reports []*store.LocationReport) *store.Decision {
		rt := a.Runtime()
		q := rt.Config.Locations.Quorum()
		if svc := rt.Config.Services[d.Service]; svc != nil {
			q = rt.Config.ServiceQuorum(svc)
		}
		qv := combine(d, reports, q, final, awaited)
		if qv.status == "" {
			return nil
		}
		now := a.clock.Now()
		several := len(d.Locations) > 1 || len(reports) > 1
		agents := map[string]int{} // reports per location: with several, each check says whose
		for _, r := range reports {
			agents[r.Location]++
		}
		var failed []alerting.FailedCheck
		if qv.status != store.StatusPassed {
			for _, r := range qv.from {
				var list []alerting.FailedCheck
				_ = json.Unmarshal(r.Evidence, &list)
				for _, fc := range list {
					switch {
					case agents[r.Location] > 1:
						fc.Summary = r.Location + " (" + r.Agent + "): " + fc.Summary
					case several:
						fc.Summary = r.Location + ": " + fc.Summary
					}
					failed = append(failed, fc)
				}
			}
		}
		dec := &store.Decision{DeployID: d.ID, Status: qv.status, Reason: qv.reason, Halt: qv.halt, At: now}
		dec.Outbox = a.deployNotifications(d, failed, qv.status, qv.reason, qv.halt, now, vc)
		return dec
	}
}

// verdictBackoff spaces the retries of a verdict the store refuses: soon at first (a
// locked database frees up in moments), then at most every ten seconds (a full disk).
var verdictBackoff = backoff.Policy{First: 100 * time.Millisecond, Max: 10 * time.Second}

// unrecordedVerdicts counts verdicts waiting for the store to take them.
func (a *Agent) unrecordedVerdicts() int { return int(a.unrecorded.Load()) }

// recordReport writes rep (nil: only decide), retrying with backoff until the store takes
// it or the agent shuts down. It returns the deploy as it stands after, and whether this
// call decided it.
func (a *Agent) recordReport(dep *store.Deploy, v *verification, rep *store.LocationReport, final bool) (after *store.Deploy, decided, recorded bool) {
	ctx := context.WithoutCancel(a.runCtx)
	id := dep.ID
	for attempt := 1; ; attempt++ {
		awaited, err := a.awaitedAgents(ctx, dep)
		var d *store.Deploy
		var decided bool
		if err == nil {
			d, decided, err = a.store.ReportLocation(ctx, id, rep, a.decider(final, a.verdictContext(dep, v), awaited))
		}
		if err == nil {
			if attempt > 1 {
				a.metrics.unrecorded.Dec()
				a.log.Info("verdict recorded after the store recovered", "deploy", id, "attempts", attempt)
			}
			return d, decided, true
		}
		if attempt == 1 {
			a.metrics.unrecorded.Inc()
			a.unrecorded.Add(1)
			defer a.unrecorded.Add(-1)
		}
		wait := verdictBackoff.Delay(attempt)
		a.log.Error("recording a verdict failed; retrying", "deploy", id, "attempt", attempt, "retry_in", wait, "error", err)
		if !a.sleepUntil(a.runCtx, a.clock.Now().Add(wait)) {
			a.metrics.unrecorded.Dec()
			return nil, false, false
		}
	}
}

// awaitedAgents are, by location, the agents whose reports a location's verdict on d waits
// for: alive, with d's service, and running since before d was registered. One started
// after (a restart among them) verifies too and its report counts, but the location does
// not wait for it. An agent alone on its store (SQLite) waits for nobody else.
func (a *Agent) awaitedAgents(ctx context.Context, d *store.Deploy) (map[string][]string, error) {
	if !a.shared() {
		return nil, nil
	}
	members, err := a.store.Members(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the agents a location waits for: %w", err)
	}
	now := a.clock.Now()
	return awaited(members, func(m *store.Member) memberState { return a.stateOf(m, now) }, d), nil
}

// awaited picks, by location, the members a location's verdict on d waits for.
func awaited(members []*store.Member, state func(*store.Member) memberState, d *store.Deploy) map[string][]string {
	out := map[string][]string{}
	for _, m := range members {
		if state(m) == memberAlive && slices.Contains(m.Services, d.Service) && !m.Started.After(d.CreatedAt) {
			out[m.Location] = append(out[m.Location], m.Name)
		}
	}
	return out
}

// quorumWait is how long a deploy waits for its missing locations once this one reported.
func (a *Agent) quorumWait(service string) time.Duration {
	rt := a.Runtime()
	if svc := rt.Config.Services[service]; svc != nil {
		return rt.Config.ServiceQuorum(svc).Wait
	}
	return configs.DefaultLocationsWait
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
