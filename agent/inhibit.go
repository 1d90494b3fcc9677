package agent

// What mutes a check's incident: a silence or maintenance window (notify.go), or a failed
// deploy of one of the check's services that inhibits its checks (inhibit_checks), as an
// Alertmanager inhibit rule mutes the symptoms of an alert already firing. Either way the
// incident is written, shown and counted, and sent once the mute is over if it is still
// open (incidents.go).

import (
	"context"
	"fmt"
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

// inhibitedBy names the failed deploy that inhibits a check's incidents now: a deploy of
// one of the check's services whose inhibit_checks is set failed less than that long ago,
// and no deploy of the service registered since has passed (the rollback, or a fix).
// Deploys still verifying, inconclusive or superseded are looked past: a rollback being
// verified leaves the failed deploy's incident open.
func (a *Agent) inhibitedBy(rt *Runtime, check string, now time.Time) string {
	for _, name := range rt.CheckServices[check] {
		svc := rt.Config.Services[name]
		if svc == nil || svc.InhibitChecks <= 0 {
			continue
		}
		list, err := a.store.ServiceDeploys(context.WithoutCancel(a.runCtx), name, 20)
		if err != nil {
			a.log.Warn("reading a service's deploys failed; not inhibiting its checks", "service", name, "error", err)
			continue
		}
		if d := failedBefore(list, now); d != nil && now.Sub(d.DecidedAt) < svc.InhibitChecks {
			return fmt.Sprintf("the inhibition by deploy %s %s's failure (%s, inhibit_checks %s)", d.Service, d.Version, d.ID, svc.InhibitChecks)
		}
	}
	return ""
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
