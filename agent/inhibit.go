package agent

// What mutes a check's incident: a silence or maintenance window (notify.go), or a failed
// deploy of one of the check's services that inhibits its checks (inhibit_checks), as an
// Alertmanager inhibit rule mutes the symptoms of an alert already firing. Either way the
// incident is written, shown and counted, and sent once the mute is over if it is still
// open (incidents.go).

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// checkMutedBy names what mutes a check's incidents now, or "".
func (a *Agent) checkMutedBy(rt *Runtime, check string, now time.Time) string {
	if m := a.silencedBy(rt, "", check, now); m != "" {
		return m
	}
	return a.inhibitedBy(rt, check, now)
}

// inhibitedBy names the failed deploy that inhibits a check's incidents now: see
// inhibition.
func (a *Agent) inhibitedBy(rt *Runtime, check string, now time.Time) string {
	for _, name := range rt.CheckServices[check] {
		if in := a.inhibition(rt, name, now); in != nil {
			return in.String()
		}
	}
	return ""
}

// inhibitionView is a service's failed deploy inhibiting its checks' incidents, and until
// when at the latest.
type inhibitionView struct {
	deploy *store.Deploy
	limit  time.Duration
	until  time.Time
}

// String is what muted an incident, as its notifications and the check's page tell it.
func (in *inhibitionView) String() string {
	return fmt.Sprintf("the inhibition by deploy %s %s's failure (%s, inhibit_checks %s)", in.deploy.Service, in.deploy.Version, in.deploy.ID, in.limit)
}

// inhibition is the failed deploy of a service that inhibits its checks' incidents now, or
// nil: the service's inhibit_checks is set, a deploy of it failed less than that long ago,
// and no deploy of it registered since has passed (the rollback, or a fix). Deploys still
// verifying, inconclusive or superseded are looked past: a rollback being verified leaves
// the failed deploy's incident open.
func (a *Agent) inhibition(rt *Runtime, service string, now time.Time) *inhibitionView {
	svc := rt.Config.Services[service]
	if svc == nil || svc.InhibitChecks <= 0 {
		return nil
	}
	list, err := a.store.ServiceDeploys(context.WithoutCancel(a.runCtx), service, 20)
	if err != nil {
		a.log.Warn("reading a service's deploys failed; not inhibiting its checks", "service", service, "error", err)
		return nil
	}
	d := failedBefore(list, now)
	if d == nil || now.Sub(d.DecidedAt) >= svc.InhibitChecks {
		return nil
	}
	return &inhibitionView{deploy: d, limit: svc.InhibitChecks, until: d.DecidedAt.Add(svc.InhibitChecks)}
}

// inhibitions are the services whose checks' incidents a failed deploy inhibits now, for
// the status page.
func (a *Agent) inhibitions(rt *Runtime, now time.Time) map[string]*inhibitionView {
	out := map[string]*inhibitionView{}
	for _, name := range slices.Sorted(maps.Keys(rt.Config.Services)) {
		if in := a.inhibition(rt, name, now); in != nil {
			out[name] = in
		}
	}
	return out
}

// failedBefore is the newest deploy of list (newest first) that failed, unless one that
// passed was registered after it; nil otherwise.
func failedBefore(list []*store.Deploy, now time.Time) *store.Deploy {
	for _, d := range list {
		if d.CreatedAt.After(now) {
			continue
		}
		switch d.Status {
		case store.StatusPassed:
			return nil
		case store.StatusFailed:
			return d
		}
	}
	return nil
}

// incidentCounts counts the open check incidents, as this agent last wrote or read them,
// and those of them nobody has been told of (opened muted), for the metrics.
func (a *Agent) incidentCounts() (open, untold int) {
	a.incView.RLock()
	defer a.incView.RUnlock()
	for name, in := range a.incidents {
		if !in.Open || isMembershipSubject(name) {
			continue
		}
		open++
		if in.Muted != "" {
			untold++
		}
	}
	return open, untold
}
