package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
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

// verdictContext is what a verdict's notifications need from the store, read before the
// transaction that decides the verdict: a read inside it would wait for a connection the
// writers queued behind the transaction hold (SQLite), or hold the deploy's lock longer.
type verdictContext struct {
	silenced     string // the silence or maintenance window muting the service
	openIncident string // the deploy incident a pass resolves
	// heard are the notifiers that heard of openIncident: its resolution reaches them
	// though on_failure no longer names them.
	heard []string
	// told is, for each notifier written openIncident's failure, what muted it ("" when
	// it was told): the pass that resolves a failure told is an all-clear, never muted.
	told map[string]string
	// triage is what triage.go adds to the verdict's event (owners, runbook, previous
	// version, links, checks passed here), read from the store beforehand.
	triage alerting.Event
	// rolledBack is the failed deploy d rolled back (d.RollbackOf), nil when none.
	rolledBack *store.Deploy
}

// verdictContext reads it for d; v is this location's verification (nil when the verdict
// is decided from the other locations' reports).
func (a *Agent) verdictContext(d *store.Deploy, v *verification) verdictContext {
	rt := a.Runtime()
	now := a.clock.Now()
	vc := verdictContext{silenced: a.silencedBy(rt, d.Service, "", now), openIncident: a.openDeployIncident(d)}
	if vc.openIncident != "" {
		var err error
		if vc.heard, err = a.store.IncidentNotifiers(context.WithoutCancel(a.runCtx), vc.openIncident); err != nil {
			a.log.Warn("reading who heard of a deploy's incident failed; its resolution goes to on_failure alone", "deploy", vc.openIncident, "error", err)
		}
		vc.told = a.toldOf(vc.openIncident, configs.EventDeployFailed, configs.EventDeployHalted, configs.EventDeployInconclusive)
	}
	if svc := rt.Config.Services[d.Service]; svc != nil {
		vc.triage = alerting.Event{OccurredAt: now, Deploy: &alerting.Deploy{}}
		a.triage(context.WithoutCancel(a.runCtx), rt, svc, d, v, &vc.triage)
	}
	if d.RollbackOf != "" {
		vc.rolledBack, _ = a.store.Deploy(context.WithoutCancel(a.runCtx), d.RollbackOf)
	}
	return vc
}

// withheld is why a failed verdict on d calls no rollback or halt webhook: d rolled back
// a deploy that failed, and fails too, so the cause is likely neither version (a
// dependency, data, the environment), and a rollback of the rollback would only go further
// back (or back to the version that failed). People are told; machines are not. "" when
// the webhooks are called.
func withheld(d *store.Deploy, status string, vc verdictContext) string {
	if status != store.StatusFailed || d.RollbackOf == "" {
		return ""
	}
	was := "deploy " + d.RollbackOf
	if p := vc.rolledBack; p != nil {
		was = fmt.Sprintf("%s %s (deploy %s)", p.Service, p.Version, p.ID)
	}
	return "this deploy rolled back " + was + ", which failed verification, and it fails too: vigil does not act on a rollback; a person decides"
}

// deployNotifications builds the outbox entries of a verdict.
func (a *Agent) deployNotifications(d *store.Deploy, failed []alerting.FailedCheck, status, reason, halt string, now time.Time, vc verdictContext) []*store.OutboxEntry {
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
		if prev := vc.openIncident; prev != "" {
			incident = prev
		}
	default:
		return nil
	}
	ev := &alerting.Event{
		Incident: incident, OccurredAt: now, Service: d.Service, Summary: reason, Halt: halt,
		Location: a.location, StatusURL: a.baseURL() + "/deploys/" + d.ID, DryRun: svc.DryRun,
		Deploy: &alerting.Deploy{ID: d.ID, Service: d.Service, Version: d.Version, Environment: d.Environment, Commit: d.Commit,
			RollbackOf: d.RollbackOf},
	}
	if t := vc.triage; t.Deploy != nil {
		ev.Owners, ev.RunbookURL, ev.DetectedAfter = t.Owners, t.RunbookURL, t.DetectedAfter
		ev.ChecksTotal, ev.ChecksPassed, ev.ReadyAfter, ev.ReadyBefore = t.ChecksTotal, t.ChecksPassed, t.ReadyAfter, t.ReadyBefore
		ev.Deploy.PreviousVersion, ev.Deploy.Links = t.Deploy.PreviousVersion, t.Deploy.Links
	}
	if status != store.StatusPassed {
		ev.FailedChecks = failed
	}
	silenced := vc.silenced
	why := withheld(d, status, vc)
	var out []*store.OutboxEntry
	for _, name := range events {
		e := *ev
		e.Name = name
		e.Key = d.ID + ":" + name
		routed := svc.OnFailure.For(name)
		if name == configs.EventDeployPassed {
			routed = append(slices.Clone(routed), vc.heard...)
		}
		var targets []string
		for _, n := range a.route(rt, routed, name) {
			if w, ok := rt.Notifiers[n].(*alerting.Webhook); ok && w.Action() != "" {
				e.Actions = append(e.Actions, alerting.ActionNote{Notifier: n, Action: w.Action(), DryRun: svc.DryRun || w.DryRun(), Withheld: why})
				if why != "" {
					continue
				}
			}
			targets = append(targets, n)
		}
		if name != configs.EventDeployPassed || vc.openIncident == "" {
			out = append(out, a.entries(&e, targets, silenced, now)...)
			continue
		}
		for _, n := range targets {
			out = append(out, a.entries(&e, []string{n}, endMuted(vc.told, n, silenced), now)...)
		}
	}
	return out
}

// toldOf reads, for each notifier written an event of incident (deploy_started, or a
// verdict), what muted it: "" when it was told. A read that fails leaves the notifier out
// (the silence in force then decides, as for one never written).
func (a *Agent) toldOf(incident string, events ...string) map[string]string {
	told := map[string]string{}
	for _, ev := range events {
		list, err := a.store.OutboxByKey(context.WithoutCancel(a.runCtx), incident+":"+ev)
		if err != nil {
			a.log.Warn("reading whom a deploy's event was told failed; its end is muted as the silence in force says", "deploy", incident, "event", ev, "error", err)
			continue
		}
		for _, e := range list {
			why := ""
			if e.Status == store.OutboxSilenced {
				why = strings.TrimPrefix(e.LastError, "silenced by ")
			}
			if prev, seen := told[e.Notifier]; !seen || prev != "" {
				told[e.Notifier] = why // told once is told
			}
		}
	}
	return told
}

// endMuted is what mutes, for notifier n, the end of what told says n was written (a
// deploy's start, a failed verdict): nothing when n was told, as a check incident's
// all-clear is never muted (muted, it would leave a page, a Slack thread saying
// "Verifying", a tracker's entry open for ever); its opening's mute when that was muted (told
// to no one, not told by its end either); silenced, the mute in force, when n was not
// written it.
func endMuted(told map[string]string, n, silenced string) string {
	why, ok := told[n]
	switch {
	case !ok:
		return silenced
	case why != "":
		return neverAnnounced(why)
	}
	return ""
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
		OccurredAt: now, Service: d.Service, Location: a.location, StatusURL: a.baseURL() + "/deploys/" + d.ID,
		Summary: fmt.Sprintf("deploy of %s %s registered; verifying", d.Service, d.Version), DryRun: svc.DryRun,
		Deploy: &alerting.Deploy{ID: d.ID, Service: d.Service, Version: d.Version, Environment: d.Environment, Commit: d.Commit,
			RollbackOf: d.RollbackOf}}
	return a.entries(ev, a.route(rt, svc.OnFailure.For(ev.Name), ev.Name), a.silencedBy(rt, d.Service, "", now), now)
}

// startHeard is who heard a deploy start and the silence muting its service, read before
// the transaction that ends the deploy without a verdict (a cancel, a supersede), as a
// verdict's context is (verdictContext).
type startHeard struct {
	// notifiers were written anything of the deploy: they hear its end though on_failure
	// no longer names them.
	notifiers []string
	// told is, for each notifier written the deploy's deploy_started, what muted it (""
	// when it was told): the end is muted as endMuted says.
	told map[string]string
	// silenced is the silence or maintenance window muting the service now: it mutes the
	// end for a notifier not written the start (one routed deploy_cancelled on its own).
	silenced string
}

// startHeard reads it for d.
func (a *Agent) startHeard(ctx context.Context, d *store.Deploy) (startHeard, error) {
	heard, err := a.store.IncidentNotifiers(ctx, d.ID)
	if err != nil {
		return startHeard{}, fmt.Errorf("reading who heard deploy %s start: %w", d.ID, err)
	}
	return startHeard{notifiers: heard, told: a.toldOf(d.ID, configs.EventDeployStarted),
		silenced: a.silencedBy(a.Runtime(), d.Service, "", a.clock.Now())}, nil
}

// startsHeard reads startHeard, before a registration's transaction, for each deploy of
// service verifying now: those the registration supersedes. rest is for a deploy another
// agent sharing the store registers meanwhile, superseded too: the silence alone, so its
// deploy_superseded goes where on_failure routes it. A read that fails is logged, not
// returned: the registration goes on, and the notifiers that heard a start only through an
// on_failure since changed miss its end.
func (a *Agent) startsHeard(ctx context.Context, service string) (heard map[string]startHeard, rest startHeard) {
	rest = startHeard{silenced: a.silencedBy(a.Runtime(), service, "", a.clock.Now())}
	heard = map[string]startHeard{}
	// A registration supersedes every deploy of its service verifying, so one, the newest,
	// verifies at a time; a few more are read for deploys registered on a clock behind.
	list, err := a.store.ServiceDeploys(ctx, service, 5)
	if err != nil {
		a.log.Warn("reading the deploy a registration supersedes failed; its deploy_superseded goes where on_failure routes it", "service", service, "error", err)
		return heard, rest
	}
	for _, d := range list {
		if d.Status != store.StatusVerifying {
			continue
		}
		h, err := a.startHeard(ctx, d)
		if err != nil {
			a.log.Warn("reading who heard a deploy start failed; its deploy_superseded goes where on_failure routes it", "deploy", d.ID, "error", err)
			h = rest
		}
		heard[d.ID] = h
	}
	return heard, rest
}

// deployClosed closes, for the notifiers that heard d start, what its deploy_started
// opened (the Slack thread, the deploy tracker's entry), with event name: deploy_cancelled
// (summary is the cancel's reason, "cancelled: Argo Rollouts aborted web") or
// deploy_superseded (by is the newer deploy, which summary names). It goes to those
// routed deploy_started or name for d's service now, and to h.notifiers. Each keeps it
// only when it wants it: never a rollback or halt webhook, never PagerDuty, Opsgenie or
// Alertmanager (nothing was paged).
func (a *Agent) deployClosed(d *store.Deploy, name, summary string, by *store.Deploy, now time.Time, h startHeard) []*store.OutboxEntry {
	rt := a.Runtime()
	ev := &alerting.Event{Name: name, Key: d.ID + ":" + name, Incident: d.ID, OccurredAt: now, Service: d.Service,
		Location: a.location, StatusURL: a.baseURL() + "/deploys/" + d.ID, Summary: summary,
		Deploy: &alerting.Deploy{ID: d.ID, Service: d.Service, Version: d.Version, Environment: d.Environment, Commit: d.Commit,
			RollbackOf: d.RollbackOf}}
	if by != nil {
		ev.SupersededBy = &alerting.Deploy{ID: by.ID, Service: by.Service, Version: by.Version, Environment: by.Environment, Commit: by.Commit}
	}
	var names []string
	if svc := rt.Config.Services[d.Service]; svc != nil {
		ev.DryRun = svc.DryRun
		names = append(a.route(rt, svc.OnFailure.For(configs.EventDeployStarted), configs.EventDeployStarted), svc.OnFailure.For(name)...)
	}
	var out []*store.OutboxEntry
	for _, n := range a.route(rt, append(names, h.notifiers...), name) {
		out = append(out, a.entries(ev, []string{n}, endMuted(h.told, n, h.silenced), now)...)
	}
	return out
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
