package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/store"
)

// Letters of a streak's Recent runs.
const (
	recentFailed = 'f'
	recentPassed = 'p'
)

// nextStreak is a location's streak of a check after a run with outcome, and whether the
// location started or stopped failing with it. Without a failure_window the location
// fails after failure_threshold failing (or errored) runs in a row. With one it fails
// once failure_threshold of its last failure_window runs failed, so a service failing
// every other run (a crash loop behind a load balancer, one bad pod of two) fails too;
// and it passes again only after success_threshold passing runs in a row that leave
// fewer than failure_threshold failures in the window, so a flapping check is one
// incident, not one per flap. Either way it passes again after success_threshold passing
// runs in a row. Inconclusive runs (nothing to judge) change nothing, unless no_data is
// alert: then they count as failing runs, so a series that stopped arriving (an exporter
// gone, a relabelling that renamed it) is not a check that quietly judges nothing.
func nextStreak(cl store.CheckLocation, cfg *configs.Check, outcome checks.Outcome) (store.CheckLocation, bool) {
	window := 0
	if cfg.FailureWindow != nil {
		window = *cfg.FailureWindow
	}
	if failing(cfg, outcome) {
		outcome = checks.Fail
	}
	next := cl
	switch outcome {
	case checks.Pass:
		next.Recent = pushRecent(next.Recent, recentPassed, window)
		next.Failures = 0
		if next.Failing {
			next.Successes++
			if next.Successes >= cfg.SuccessThreshold && failedIn(next.Recent) < cfg.FailureThreshold {
				next.Failing, next.Successes = false, 0
				return next, true
			}
		}
	case checks.Fail, checks.Error:
		next.Recent = pushRecent(next.Recent, recentFailed, window)
		next.Successes = 0
		if !next.Failing {
			next.Failures++
			if next.Failures >= cfg.FailureThreshold || window > 0 && failedIn(next.Recent) >= cfg.FailureThreshold {
				next.Failing, next.Failures = true, 0
				return next, true
			}
		}
	default:
		next.Recent = pushRecent(next.Recent, 0, window) // a window made smaller by a reload
	}
	return next, false
}

// failing reports whether a run with outcome counts as a failing one for the check's
// incident: failed or errored, or inconclusive where no_data is alert.
func failing(cfg *configs.Check, outcome checks.Outcome) bool {
	return outcome == checks.Fail || outcome == checks.Error || outcome == checks.Inconclusive && cfg.NoData == configs.NoDataAlert
}

// pushRecent appends a run's letter (none for 0) to recent and keeps the last window of
// them; no window keeps none.
func pushRecent(recent string, letter byte, window int) string {
	if window <= 0 {
		return ""
	}
	if letter != 0 {
		if len(recent) == window && strings.Count(recent, string(letter)) == window {
			return recent // steady: the streak is unchanged, and nothing is written
		}
		recent += string(letter)
	}
	if len(recent) > window {
		recent = recent[len(recent)-window:]
	}
	return recent
}

// failedIn counts the failing runs of a streak's Recent.
func failedIn(recent string) int { return strings.Count(recent, string(recentFailed)) }

// windowSummary says why a location with a failure_window started failing: the count of
// its window, then the run's own reason.
func windowSummary(cl store.CheckLocation, cfg *configs.Check, res *checks.Result) string {
	if cfg.FailureWindow == nil || *cfg.FailureWindow == 0 || len(cl.Recent) < 2 {
		return res.Summary()
	}
	return fmt.Sprintf("%d of the last %d runs failed: %s", failedIn(cl.Recent), len(cl.Recent), res.Summary())
}

// streakNote says a check's incident rule and where this location's streak stands on it,
// for the check's page: why an incident is open, or how near one is.
func streakNote(cfg *configs.Check, cl *store.CheckLocation) string {
	window := 0
	if cfg.FailureWindow != nil {
		window = *cfg.FailureWindow
	}
	among := "in a row"
	if window > 0 {
		among = fmt.Sprintf("among the last %d", window)
	}
	rule := fmt.Sprintf("%d failing %s %s %s an incident, %d passing in a row %s it", cfg.FailureThreshold,
		plural(cfg.FailureThreshold, "run"), among, verb(cfg.FailureThreshold, "open"), cfg.SuccessThreshold, verb(cfg.SuccessThreshold, "close"))
	if cfg.NoData == configs.NoDataAlert {
		rule += " (no data counts as failing)"
	}
	switch {
	case cl == nil:
		return rule + "; no run counted here yet"
	case window > 0 && len(cl.Recent) > 0:
		return rule + fmt.Sprintf("; here %d of the last %d failed", failedIn(cl.Recent), len(cl.Recent))
	case cl.Failing:
		return rule + fmt.Sprintf("; failing here, %d passing since", cl.Successes)
	}
	return rule + fmt.Sprintf("; here %d failing in a row", cl.Failures)
}

// verb is a verb's present tense for a subject of n: "opens" for 1, "open" otherwise.
func verb(n int, v string) string {
	if n == 1 {
		return v + "s"
	}
	return v
}

// lastDeploy is the newest deploy, registered by now, of the services check belongs to:
// told with the check_failed that opens an incident, since the first question is whether
// a deploy broke production. nil when none of them has a deploy, or the store cannot say.
func (a *Agent) lastDeploy(ctx context.Context, check string, now time.Time) *alerting.LastDeploy {
	var newest *store.Deploy
	for _, svc := range a.Runtime().CheckServices[check] {
		list, err := a.store.ServiceDeploys(ctx, svc, 1)
		if err != nil {
			a.log.Warn("reading a service's last deploy failed; the incident goes without it", "check", check, "service", svc, "error", err)
			continue
		}
		if len(list) == 1 && !list[0].CreatedAt.After(now) && (newest == nil || list[0].CreatedAt.After(newest.CreatedAt)) {
			newest = list[0]
		}
	}
	if newest == nil {
		return nil
	}
	return &alerting.LastDeploy{ID: newest.ID, Service: newest.Service, Version: newest.Version, Status: newest.Status,
		RegisteredAt: newest.CreatedAt.UTC(), Before: now.Sub(newest.CreatedAt).Seconds()}
}
