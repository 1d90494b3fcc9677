package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/store"
)

// This file turns what the agent decides into outbox entries: which events a verdict or a
// change of a check's incident raises, which notifiers they are routed to, and whether a
// silence or maintenance window mutes them. Entries are written in the same transaction
// as the state change that causes them; outbox.go delivers them.

// deployNotifications builds the outbox entries of a verdict.
func (a *Agent) deployNotifications(d *store.Deploy, v *verification, status, reason, halt string, now time.Time) []*store.OutboxEntry {
	rt := a.Runtime()
	svc := rt.Config.Services[d.Service]
	if svc == nil {
		return nil
	}
	var events []string
	incident := d.ID
	switch status {
	case store.StatusFailed:
		events = append(events, configs.EventDeployFailed)
		if halt != "" {
			events = append(events, configs.EventDeployHalted)
		}
	case store.StatusInconclusive:
		events = append(events, configs.EventDeployInconclusive)
	case store.StatusPassed:
		events = append(events, configs.EventDeployPassed)
		// A pass after a failed deploy resolves that deploy's incident (Slack thread,
		// PagerDuty alert).
		if prev := a.openDeployIncident(d); prev != "" {
			incident = prev
		}
	default:
		return nil
	}
	ev := &alerting.Event{
		Incident: incident, OccurredAt: now, Service: d.Service, Summary: reason, Halt: halt,
		Location: rt.Config.Agent.Location, StatusURL: a.baseURL() + "/deploys/" + d.ID, DryRun: svc.DryRun,
		Deploy: &alerting.Deploy{ID: d.ID, Service: d.Service, Version: d.Version, Environment: d.Environment, Commit: d.Commit},
	}
	a.triage(context.WithoutCancel(a.runCtx), rt, svc, d, v, ev)
	if v != nil && status != store.StatusPassed {
		v.mu.Lock()
		for _, c := range v.checks {
			t := v.tallies[c.Name]
			if t == nil || t.first == nil {
				continue
			}
			fc := a.failedCheck(t.first, a.runURL(t.firstID))
			fc.Baseline = baselineNote(t.first, d.Baseline[c.Name])
			a.checkContacts(rt, &fc, ev)
			ev.FailedChecks = append(ev.FailedChecks, fc)
		}
		v.mu.Unlock()
	}
	silenced := a.silencedBy(rt, d.Service, "", now)
	var out []*store.OutboxEntry
	for _, name := range events {
		e := *ev
		e.Name = name
		e.Key = d.ID + ":" + name
		targets := a.route(rt, svc.OnFailure.For(name), name)
		for _, n := range targets {
			if w, ok := rt.Notifiers[n].(*alerting.Webhook); ok && w.Action() != "" {
				e.Actions = append(e.Actions, alerting.ActionNote{Notifier: n, Action: w.Action(), DryRun: svc.DryRun || w.DryRun()})
			}
		}
		out = append(out, a.entries(&e, targets, silenced, now)...)
	}
	return out
}

// deployStarted announces a deploy to the notifiers that want deploy_started (PagerDuty
// records a change event; a plain webhook hears of it).
func (a *Agent) deployStarted(d *store.Deploy, now time.Time) []*store.OutboxEntry {
	rt := a.Runtime()
	svc := rt.Config.Services[d.Service]
	if svc == nil {
		return nil
	}
	ev := &alerting.Event{Name: configs.EventDeployStarted, Key: d.ID + ":" + configs.EventDeployStarted, Incident: d.ID,
		OccurredAt: now, Service: d.Service, Location: rt.Config.Agent.Location, StatusURL: a.baseURL() + "/deploys/" + d.ID,
		Summary: fmt.Sprintf("deploy of %s %s registered; verifying", d.Service, d.Version), DryRun: svc.DryRun,
		Deploy: &alerting.Deploy{ID: d.ID, Service: d.Service, Version: d.Version, Environment: d.Environment, Commit: d.Commit}}
	return a.entries(ev, a.route(rt, svc.OnFailure.For(ev.Name), ev.Name), a.silencedBy(rt, d.Service, "", now), now)
}

// openDeployIncident returns the id of the service's newest failed or inconclusive deploy
// registered before d, unless a passing deploy already came after it.
func (a *Agent) openDeployIncident(d *store.Deploy) string {
	list, err := a.store.ServiceDeploys(context.WithoutCancel(a.runCtx), d.Service, 20)
	if err != nil {
		return ""
	}
	older := false
	for _, p := range list { // newest first
		if !older {
			older = p.ID == d.ID
			continue
		}
		switch p.Status {
		case store.StatusPassed:
			return ""
		case store.StatusFailed, store.StatusInconclusive:
			return p.ID
		}
	}
	return ""
}

func (a *Agent) failedCheck(r *checks.Result, runURL string) alerting.FailedCheck {
	fc := alerting.FailedCheck{Name: r.Check, Kind: r.Kind, Outcome: string(r.Outcome), Summary: r.Summary(), RunURL: runURL,
		TraceID: r.TraceID, TraceURL: a.opts.Tracing.TraceURL(r.TraceID)}
	for _, art := range r.Artifacts {
		if art.ContentType == "image/png" && len(art.Data) > 0 {
			fc.Screenshot = art.Data
			break
		}
	}
	return fc
}

// route keeps the routed notifiers that exist and want the event.
func (a *Agent) route(rt *Runtime, names []string, event string) []string {
	var out []string
	for _, n := range names {
		nt := rt.Notifiers[n]
		if nt == nil || !nt.Wants(event) || slices.Contains(out, n) {
			continue
		}
		out = append(out, n)
	}
	return out
}

// entries encodes ev once per notifier. Muted entries are written already done, with the
// silence that muted them, so the API shows what would have been sent.
func (a *Agent) entries(ev *alerting.Event, notifiers []string, silencedBy string, now time.Time) []*store.OutboxEntry {
	payload, err := json.Marshal(redactEvent(a.redactor(), ev))
	if err != nil {
		a.log.Error("encoding an event failed", "event", ev.Name, "error", err)
		return nil
	}
	var out []*store.OutboxEntry
	for _, n := range notifiers {
		e := &store.OutboxEntry{Notifier: n, Event: ev.Name, Key: ev.Key, Incident: ev.Incident, Payload: payload, CreatedAt: now}
		if silencedBy != "" {
			e.Status, e.DoneAt, e.LastError = store.OutboxSilenced, now, "silenced by "+silencedBy
			a.metrics.notifications.WithLabelValues(n, store.OutboxSilenced).Inc()
		}
		out = append(out, e)
	}
	return out
}

// redactEvent masks the texts of an event that quote what checks saw. Its identifiers
// (key, incident, deploy) are vigil's own and stay as they are.
func redactEvent(red *configs.Redactor, ev *alerting.Event) *alerting.Event {
	out := *ev
	out.Summary, out.Halt = red.String(ev.Summary), red.String(ev.Halt)
	out.FailedChecks = make([]alerting.FailedCheck, len(ev.FailedChecks))
	for i, fc := range ev.FailedChecks {
		fc.Summary = red.String(fc.Summary)
		out.FailedChecks[i] = fc
	}
	if ev.FailedChecks == nil {
		out.FailedChecks = nil
	}
	return &out
}

// silencedBy names the silence or maintenance window muting a service or check now.
func (a *Agent) silencedBy(rt *Runtime, service, check string, now time.Time) string {
	services := []string{service}
	if check != "" {
		services = rt.CheckServices[check]
	}
	if w, ok := rt.Maintenance.Active(now, check, services...); ok {
		return fmt.Sprintf("maintenance window %s (%s)", w.Name, w.Reason)
	}
	list, err := a.store.Silences(context.WithoutCancel(a.runCtx), now)
	if err != nil {
		a.log.Warn("reading silences failed; not muting", "error", err)
		return ""
	}
	for _, s := range list {
		if s.Starts.After(now) {
			continue
		}
		if (s.Check != "" && s.Check == check) || (s.Service != "" && slices.Contains(services, s.Service)) {
			return fmt.Sprintf("silence %s (%s)", s.ID, s.Reason)
		}
	}
	return ""
}

// onScheduledResult moves a check's incident under scheduled monitoring: failure_threshold
// failing runs in a row open it (check_failed), success_threshold passing runs close it
// (check_recovered), and while it stays open a failing run after repeat_interval sends a
// reminder. Inconclusive runs change nothing. State and notifications are written
// together; a steady state writes nothing. sr is the run as it will be stored: a run that
// opens or reminds of an incident is written at once, so the notification links to it;
// any other goes to the batch writer.
func (a *Agent) onScheduledResult(ctx context.Context, c *checks.Check, res *checks.Result, sr *store.RunRecord) {
	a.incMu.Lock()
	defer a.incMu.Unlock()
	in := a.incidents[c.Name]
	if in == nil {
		in = &store.Incident{Check: c.Name}
		a.incidents[c.Name] = in
	}
	before := *in
	now := a.clock.Now()
	var event string
	switch res.Outcome {
	case checks.Pass:
		in.Failures = 0
		if in.Open {
			in.Successes++
			if in.Successes >= c.Config.SuccessThreshold {
				in.Open, in.Successes, event = false, 0, configs.EventCheckRecovered
			}
		}
	case checks.Fail, checks.Error:
		in.Successes = 0
		last := in.NotifiedAt
		if last.IsZero() {
			last = in.OpenedAt
		}
		switch {
		case !in.Open:
			in.Failures++
			if in.Failures >= c.Config.FailureThreshold {
				in.Open, in.Seq, in.Failures, event = true, in.Seq+1, 0, configs.EventCheckFailed
				in.OpenedAt, in.Summary, in.NotifiedAt, in.Reminders = res.Started, res.Summary(), now, 0
			}
		case c.Config.RepeatInterval > 0 && now.Sub(last) >= c.Config.RepeatInterval:
			in.Reminders++
			in.NotifiedAt, event = now, configs.EventCheckFailed
		}
	}
	if *in == before {
		a.writer.add(sr)
		return
	}
	var outbox []*store.OutboxEntry
	if event == "" {
		a.writer.add(sr)
	} else {
		if err := a.store.SaveRuns(context.WithoutCancel(ctx), []*store.RunRecord{sr}); err != nil {
			a.log.Error("saving the run that changed an incident failed; its notification has no run link", "check", c.Name, "error", err)
		}
		outbox = a.incidentNotifications(c, in, event, res, a.runURL(sr.ID), now)
	}
	if err := a.store.SaveIncident(context.WithoutCancel(ctx), in, outbox); err != nil {
		a.log.Error("saving a check's incident state failed", "check", c.Name, "error", err)
		*in = before
		return
	}
	if event != "" {
		kind, summary := event, res.Summary()
		switch {
		case event == configs.EventCheckRecovered:
			summary = fmt.Sprintf("passes again; the incident was open for %s", now.Sub(in.OpenedAt).Round(time.Second))
		case in.Reminders > 0:
			kind = eventCheckReminder
			summary = fmt.Sprintf("still failing (reminder %d), since %s: %s", in.Reminders, in.OpenedAt.UTC().Format(time.RFC3339), summary)
		}
		a.recordEvent(&store.Event{At: now, Kind: kind, Check: c.Name, Incident: fmt.Sprintf("check:%s:%d", c.Name, in.Seq),
			Summary: summary, RunID: sr.ID})
	}
	if len(outbox) > 0 {
		a.signalOutbox()
	}
}

// incidentNotifications builds the outbox entries of a check incident's event.
func (a *Agent) incidentNotifications(c *checks.Check, in *store.Incident, event string, res *checks.Result, runURL string, now time.Time) []*store.OutboxEntry {
	rt := a.Runtime()
	key := fmt.Sprintf("check:%s:%d:%s", c.Name, in.Seq, event)
	reminder := 0
	if event == configs.EventCheckFailed && in.Reminders > 0 {
		reminder = in.Reminders
		key += fmt.Sprintf(":reminder:%d", reminder)
	}
	ev := &alerting.Event{Name: event, Key: key, Incident: fmt.Sprintf("check:%s:%d", c.Name, in.Seq), OccurredAt: now,
		Check: c.Name, Summary: res.Summary(), Location: rt.Config.Agent.Location, StatusURL: a.baseURL() + "/checks/" + c.Name,
		Reminder: reminder}
	if svcs := rt.CheckServices[c.Name]; len(svcs) > 0 {
		ev.Service = svcs[0]
	}
	owners, runbook := a.contacts(rt, c)
	ev.Owners, ev.RunbookURL = owners, runbook
	switch {
	case event == configs.EventCheckRecovered:
		ev.Summary = fmt.Sprintf("%s passes again after an incident opened at %s", c.Name, in.OpenedAt.UTC().Format(time.RFC3339))
	case reminder > 0:
		fc := a.failedCheck(res, runURL)
		fc.Screenshot = nil // the thread has the first one; a reminder only says it goes on
		ev.FailedChecks = []alerting.FailedCheck{fc}
		ev.Summary = fmt.Sprintf("still failing, since %s: %s", in.OpenedAt.UTC().Format(time.RFC3339), res.Summary())
	default:
		ev.FailedChecks = []alerting.FailedCheck{a.failedCheck(res, runURL)}
	}
	out := a.entries(ev, a.route(rt, c.Config.Notify, event), a.silencedBy(rt, "", c.Name, now), now)
	a.log.Info("check incident", "check", c.Name, "event", event, "reminder", reminder, "summary", ev.Summary, "notifications", len(out))
	return out
}

// closeLeftIncidents closes the open incidents of checks the config no longer has (removed
// or renamed, by a reload or while the agent was down): a check that stopped running can
// never recover, and its Slack thread and PagerDuty alert would stay open for ever. The
// closing check_recovered goes to the notifiers that heard of the incident and still exist.
func (a *Agent) closeLeftIncidents(ctx context.Context) {
	rt := a.Runtime()
	a.incMu.Lock()
	defer a.incMu.Unlock()
	now := a.clock.Now()
	for name, in := range a.incidents {
		if !in.Open || rt.Checks[name] != nil {
			continue
		}
		incident := fmt.Sprintf("check:%s:%d", name, in.Seq)
		heard, err := a.store.IncidentNotifiers(ctx, incident)
		if err != nil {
			a.log.Error("reading who heard of an incident failed; it stays open", "check", name, "error", err)
			continue
		}
		ev := &alerting.Event{Name: configs.EventCheckRecovered, Key: incident + ":" + configs.EventCheckRecovered,
			Incident: incident, OccurredAt: now, Check: name, Location: rt.Config.Agent.Location,
			Closed:  "the check left the config",
			Summary: fmt.Sprintf("%s is no longer in the config (removed or renamed); the incident opened at %s is closed", name, in.OpenedAt.UTC().Format(time.RFC3339))}
		closed := *in
		closed.Open, closed.Failures, closed.Successes = false, 0, 0
		outbox := a.entries(ev, a.route(rt, heard, ev.Name), "", now)
		if err := a.store.SaveIncident(ctx, &closed, outbox); err != nil {
			a.log.Error("closing the incident of a removed check failed", "check", name, "error", err)
			continue
		}
		*in = closed // kept, with its seq: a check added back under the name opens a new incident
		a.recordEvent(&store.Event{At: now, Kind: eventCheckClosed, Check: name, Incident: incident, Summary: ev.Summary})
		a.log.Info("check incident closed: the check left the config", "check", name, "notifications", len(outbox))
	}
	a.signalOutbox()
}

func (a *Agent) loadIncidents(ctx context.Context) {
	m, err := a.store.Incidents(ctx)
	if err != nil {
		a.log.Warn("could not load incident state", "error", err)
		return
	}
	a.incMu.Lock()
	a.incidents = m
	a.incMu.Unlock()
}
