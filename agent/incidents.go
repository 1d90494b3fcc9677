package agent

// Incidents of scheduled monitoring. Each location keeps its own streak of a check's runs
// (failure_threshold failing runs in a row, or among the last failure_window, make it
// failing there, success_threshold passing runs make it healthy again: streaks.go); the
// check's incident, one for all locations, opens
// when the failing locations reach the quorum's `fail` (locations.fail, 1 by default) and
// closes when they fall below it. The change is decided in the store's transaction that
// holds the incident, with its notifications, so agents noticing it at once change it once.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/store"
)

// onScheduledResult moves this location's streak of a check and, when the location starts
// or stops failing (or a reminder is due), the check's incident: check_failed when it
// opens, check_recovered when it closes, a reminder after repeat_interval while it stays
// open. Inconclusive runs change nothing; a steady state writes nothing. sr is the run as
// it will be stored: a run that may change the incident is written at once, so the
// notification links to it; any other goes to the batch writer.
//
// Where several agents share a location, one keeps each check's streak there (the first
// to run it); the others store their runs and stand by. When the keeper stops or goes
// silent, the next of them to run the check takes the streak over as it stands (failing,
// if the keeper left it failing) and goes on counting from it.
func (a *Agent) onScheduledResult(ctx context.Context, c *checks.Check, res *checks.Result, sr *store.RunRecord) {
	a.incMu.Lock()
	defer a.incMu.Unlock()
	// Tested under incMu, which closeLeftIncidents takes once the new config is in force:
	// a run tested before it is closed by it, one tested after it is not kept (inConfig).
	if !a.inConfig(c.Name, c.Kind) {
		a.writer.add(sr)
		a.log.Debug("the check left the config while it ran: the run is stored, its streak and incident are left alone", "check", c.Name)
		return
	}
	cl := a.streaks[c.Name]
	if cl != nil && cl.Agent != a.name && a.alive[cl.Agent] {
		a.writer.add(sr) // another agent of this location keeps the streak
		return
	}
	// A location's first run of a check writes its streak even when it passes: the
	// locations with a streak are those running the check, what "failing in 2 of 3" counts.
	first := cl == nil
	if first {
		cl = &store.CheckLocation{Check: c.Name, Location: a.location}
	}
	next, flipped := nextStreak(*cl, c.Config, res.Outcome)
	next.Agent = a.name // a streak taken over is written at once, under this agent
	in := a.incidents[c.Name]
	now := a.clock.Now()
	remind, announce := false, false
	muted, mutedRead := "", false
	if flipped && next.Failing {
		next.Since, next.Summary = res.Started, windowSummary(next, c.Config, res)
	}
	switch {
	case in != nil && in.Open && in.Muted != "" && failing(c.Config, res.Outcome):
		// The incident opened muted and nobody has heard of it: the first failing run
		// once its silence, maintenance window or inhibition is over announces it.
		muted, mutedRead = a.checkMutedBy(a.Runtime(), c.Name, now), true
		announce = muted == ""
	case !flipped && cl.Failing && failing(c.Config, res.Outcome):
		remind = in != nil && in.Open && c.Config.RepeatInterval > 0 && now.Sub(in.NotifiedAt) >= c.Config.RepeatInterval
	}
	if next == *cl && !remind && !announce && !first {
		a.writer.add(sr)
		return
	}
	next.UpdatedAt = now
	if !flipped && !remind && !announce {
		a.writer.add(sr)
		err := a.store.SaveCheckLocation(context.WithoutCancel(ctx), &next, a.aliveSince(now))
		switch {
		case errors.Is(err, store.ErrKept):
			a.standBy(ctx, c.Name)
			return
		case err != nil:
			a.log.Error("saving a check's streak failed", "check", c.Name, "error", err)
			return
		}
		a.setStreak(c.Name, &next)
		return
	}
	if err := a.writer.saveNow(context.WithoutCancel(ctx), sr); err != nil {
		a.log.Error("saving the run that changed an incident failed; its notification has no run link", "check", c.Name, "error", err)
	}
	sent, event, evSummary, announced := 0, "", "", false
	if !mutedRead {
		muted = a.checkMutedBy(a.Runtime(), c.Name, now) // read before the transaction, not inside it
	}
	var last *alerting.LastDeploy
	if flipped && next.Failing || announce {
		last = a.lastDeploy(ctx, c.Name, now)
	}
	var heard []string
	if flipped && !next.Failing && in != nil && in.Open {
		heard = a.heardOf(ctx, c.Name, in.Seq)
	}
	updated, err := a.store.UpdateIncident(context.WithoutCancel(ctx), store.IncidentUpdate{Subject: c.Name, Location: &next, AliveSince: a.aliveSince(now)},
		func(cur *store.Incident, locs []*store.CheckLocation) (*store.Incident, []*store.OutboxEntry) {
			out, ev, summary := a.nextIncident(c, cur, locs, incidentChange{now: now, remind: remind, announce: announce, muted: muted}, windowSummary(next, c.Config, res))
			if out == nil {
				return nil, nil
			}
			event, evSummary, announced = ev, summary, cur.Open && cur.Muted != "" && out.Open && out.Muted == ""
			why, notify := muted, c.Config.Notify
			if ev == configs.EventCheckRecovered {
				// The all-clear of an incident that was told is never muted: muted, it
				// would leave its PagerDuty alert and Slack thread open for ever. One
				// told to no one is not told by its closing either. It goes to whoever
				// heard of the opening too: a notify list changed meanwhile would leave
				// the page of the notifier no longer listed open.
				why, notify = "", append(slices.Clone(notify), heard...)
				if cur.Muted != "" {
					why = neverAnnounced(cur.Muted)
				}
			}
			entries := a.incidentNotifications(c, out, ev, summary, res, a.runURL(sr.ID), now, why, last, announced, notify)
			sent = len(entries)
			return out, entries
		})
	if errors.Is(err, store.ErrKept) {
		a.standBy(ctx, c.Name)
		return
	}
	if err != nil {
		a.log.Error("saving a check's incident state failed", "check", c.Name, "error", err)
		return
	}
	a.incView.Lock()
	a.streaks[c.Name] = &next
	a.incidents[c.Name] = updated
	a.incView.Unlock()
	if event != "" {
		in := updated
		kind, summary := event, in.Summary
		switch {
		case event == configs.EventCheckRecovered:
			summary = fmt.Sprintf("passes again; the incident was open for %s", now.Sub(in.OpenedAt).Round(time.Second))
		case announced:
			summary = evSummary
		case in.Reminders > 0:
			kind = eventCheckReminder
			summary = fmt.Sprintf("still failing (reminder %d), since %s: %s", in.Reminders, in.OpenedAt.UTC().Format(time.RFC3339), res.Summary())
		}
		a.recordEvent(&store.Event{At: now, Kind: kind, Check: c.Name, Incident: fmt.Sprintf("check:%s:%d", c.Name, in.Seq),
			Summary: summary, RunID: sr.ID})
	}
	if sent > 0 {
		a.signalOutbox()
	}
}

// incidentChange is what a run asks of its check's incident, beside every location's
// streak: now; a reminder due; announcing an incident that opened muted, its mute over;
// and the silence, maintenance window or inhibition muting the check now, if any.
type incidentChange struct {
	now              time.Time
	remind, announce bool
	muted            string
}

// nextIncident decides a check's incident from every location's streak: the incident as
// it must be stored with its event and summary, or nil to leave it. why is what the run
// that changed this location's streak says.
func (a *Agent) nextIncident(c *checks.Check, cur *store.Incident, locs []*store.CheckLocation, ch incidentChange, why string) (*store.Incident, string, string) {
	now := ch.now
	var failing []*store.CheckLocation
	for _, l := range locs {
		if l.Failing {
			failing = append(failing, l)
		}
	}
	fail := max(a.Runtime().Config.Locations.Fail, 1)
	summary := why
	if len(locs) > 1 {
		summary = fmt.Sprintf("failing in %d of %d locations (%s): %s", len(failing), len(locs), names(failing), summary)
	}
	next := *cur
	switch {
	case !cur.Open && len(failing) >= fail:
		next.Open, next.Seq, next.OpenedAt, next.Summary, next.NotifiedAt, next.Reminders = true, cur.Seq+1, failing[0].Since, summary, now, 0
		next.Muted = ch.muted
		if next.OpenedAt.IsZero() {
			next.OpenedAt = now
		}
		return &next, configs.EventCheckFailed, summary
	case cur.Open && len(failing) < fail:
		next.Open, next.Muted = false, ""
		return &next, configs.EventCheckRecovered, summary
	case cur.Open && cur.Muted != "":
		if !ch.announce {
			return nil, "", "" // muted still, or a run that did not fail: nothing to remind of
		}
		// Announced now, as it opens: one notice, under a key of its own (the opening's
		// entries were written as muted), and reminders count from here.
		next.Muted, next.NotifiedAt = "", now
		return &next, configs.EventCheckFailed, fmt.Sprintf("still failing after %s ended; failing since %s: %s",
			cur.Muted, cur.OpenedAt.UTC().Format(time.RFC3339), summary)
	case cur.Open && ch.remind && c.Config.RepeatInterval > 0 && now.Sub(cur.NotifiedAt) >= c.Config.RepeatInterval:
		next.Reminders, next.NotifiedAt = cur.Reminders+1, now
		return &next, configs.EventCheckFailed, summary
	}
	return nil, "", ""
}

func names(list []*store.CheckLocation) string {
	out := ""
	for i, l := range list {
		if i > 0 {
			out += ", "
		}
		out += l.Location
	}
	return out
}

// incidentNotifications builds the outbox entries of a check incident's event.
// last is the newest deploy of the check's services, told with the event that opens the
// incident.
func (a *Agent) incidentNotifications(c *checks.Check, in *store.Incident, event, summary string, res *checks.Result, runURL string, now time.Time, muted string, last *alerting.LastDeploy, announced bool, notify []string) []*store.OutboxEntry {
	rt := a.Runtime()
	key := fmt.Sprintf("check:%s:%d:%s", c.Name, in.Seq, event)
	reminder := 0
	switch {
	case event == configs.EventCheckFailed && in.Reminders > 0:
		reminder = in.Reminders
		key += fmt.Sprintf(":reminder:%d", reminder)
	case announced:
		key += ":after-mute"
	}
	ev := &alerting.Event{Name: event, Key: key, Incident: fmt.Sprintf("check:%s:%d", c.Name, in.Seq), OccurredAt: now,
		Check: c.Name, Summary: summary, Location: a.location, StatusURL: a.baseURL() + "/checks/" + c.Name,
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
		ev.Summary = fmt.Sprintf("still failing, since %s: %s", in.OpenedAt.UTC().Format(time.RFC3339), summary)
	default:
		ev.FailedChecks = []alerting.FailedCheck{a.failedCheck(res, runURL)}
		ev.LastDeploy = last
	}
	out := a.entries(ev, a.route(rt, notify, event), muted, now)
	a.log.Info("check incident", "check", c.Name, "event", event, "reminder", reminder, "summary", ev.Summary, "notifications", len(out))
	return out
}

// heardOf lists the notifiers that heard of a check's incident, read before the
// transaction that may close it; none when unreadable (the closing then goes to the
// check's notify list alone).
func (a *Agent) heardOf(ctx context.Context, check string, seq int) []string {
	heard, err := a.store.IncidentNotifiers(context.WithoutCancel(ctx), fmt.Sprintf("check:%s:%d", check, seq))
	if err != nil {
		a.log.Warn("reading who heard of an incident failed; its closing goes to the check's notify list", "check", check, "error", err)
	}
	return heard
}

// neverAnnounced is why the closing of an incident that opened muted and was announced to
// no one is not sent either: nobody would know what it closes.
func neverAnnounced(mutedBy string) string {
	return mutedBy + ", which muted the incident's opening: it was never announced"
}

// closeLeftIncidents closes the open incidents of checks the config no longer has (removed
// or renamed, by a reload or while the agent was down): a check that stopped running can
// never recover, and its Slack thread and PagerDuty alert would stay open for ever. This
// location's streak of the check goes; the incident closes unless other locations still
// fail it. The closing check_recovered goes to the notifiers that heard of the incident
// and still exist.
func (a *Agent) closeLeftIncidents(ctx context.Context) {
	rt := a.Runtime()
	a.incMu.Lock()
	defer a.incMu.Unlock()
	now := a.clock.Now()
	for name, in := range a.incidents {
		if !in.Open || rt.Checks[name] != nil || isMembershipSubject(name) {
			continue
		}
		incident := fmt.Sprintf("check:%s:%d", name, in.Seq)
		heard, err := a.store.IncidentNotifiers(ctx, incident)
		if err != nil {
			a.log.Error("reading who heard of an incident failed; it stays open", "check", name, "error", err)
			continue
		}
		sent := 0
		updated, err := a.store.UpdateIncident(ctx, store.IncidentUpdate{Subject: name, Left: a.location, Agent: a.name, AliveSince: a.aliveSince(now)},
			func(cur *store.Incident, locs []*store.CheckLocation) (*store.Incident, []*store.OutboxEntry) {
				for _, l := range locs {
					if l.Failing || !cur.Open {
						return nil, nil
					}
				}
				ev := &alerting.Event{Name: configs.EventCheckRecovered, Key: incident + ":" + configs.EventCheckRecovered,
					Incident: incident, OccurredAt: now, Check: name, Location: a.location,
					Closed:  "the check left the config",
					Summary: fmt.Sprintf("%s is no longer in the config (removed or renamed); the incident opened at %s is closed", name, cur.OpenedAt.UTC().Format(time.RFC3339))}
				closed := *cur
				closed.Open, closed.Muted = false, ""
				why := ""
				if cur.Muted != "" {
					why = neverAnnounced(cur.Muted)
				}
				out := a.entries(ev, a.route(rt, heard, ev.Name), why, now)
				sent = len(out)
				return &closed, out
			})
		if err != nil {
			a.log.Error("closing the incident of a removed check failed", "check", name, "error", err)
			continue
		}
		a.incView.Lock()
		delete(a.streaks, name)
		a.incidents[name] = updated // kept, with its seq: a check added back under the name opens a new incident
		a.incView.Unlock()
		if !updated.Open && in.Open {
			a.recordEvent(&store.Event{At: now, Kind: eventCheckClosed, Check: name, Incident: incident,
				Summary: fmt.Sprintf("%s is no longer in the config (removed or renamed); the incident opened at %s is closed", name, in.OpenedAt.UTC().Format(time.RFC3339))})
			a.log.Info("check incident closed: the check left the config", "check", name, "notifications", sent)
		}
	}
	a.dropLeftStreaks(ctx, rt, now)
	a.signalOutbox()
}

// dropLeftStreaks removes this location's streaks of checks the config no longer has and
// whose incidents are closed: the locations with a streak are those running a check. A
// streak another agent of this location keeps stays (that agent still runs the check).
// Called with incMu held.
func (a *Agent) dropLeftStreaks(ctx context.Context, rt *Runtime, now time.Time) {
	for name, cl := range a.streaks {
		if rt.Checks[name] != nil {
			continue
		}
		if in := a.incidents[name]; in != nil && in.Open {
			continue // closeLeftIncidents could not close it; it tries again with the next config
		}
		if cl.Agent == a.name || cl.Agent == "" {
			_, err := a.store.UpdateIncident(ctx, store.IncidentUpdate{Subject: name, Left: a.location, Agent: a.name, AliveSince: a.aliveSince(now)},
				func(*store.Incident, []*store.CheckLocation) (*store.Incident, []*store.OutboxEntry) { return nil, nil })
			if err != nil {
				a.log.Warn("removing the streak of a check no longer in the config failed", "check", name, "error", err)
				continue
			}
		}
		a.setStreak(name, nil)
	}
}

// aliveSince is when an agent last heard from still counts as alive, for the store to tell
// whether the agent keeping a streak is; zero when this agent has the store to itself.
func (a *Agent) aliveSince(now time.Time) time.Time {
	if !a.shared() {
		return time.Time{}
	}
	return now.Add(-configs.SilentAfter(a.Runtime().Config.Agent.Heartbeat))
}

// standBy follows a write the store refused because another agent of this location keeps
// the check's streak and is alive: this agent reads that streak and stands by, storing its
// runs, until the keeper is no longer alive. Called with incMu held.
func (a *Agent) standBy(ctx context.Context, check string) {
	cl, err := a.store.CheckLocation(context.WithoutCancel(ctx), check, a.location)
	if err != nil || cl == nil { // gone meanwhile, or unreadable: the next run tries again
		a.setStreak(check, nil)
		return
	}
	a.setStreak(check, cl)
	if cl.Agent != a.name {
		a.incView.Lock()
		a.alive[cl.Agent] = true // the store says so; the next heartbeat says again
		a.incView.Unlock()
		a.log.Debug("another agent of this location keeps the check's streak; standing by", "check", check, "keeper", cl.Agent)
	}
}
