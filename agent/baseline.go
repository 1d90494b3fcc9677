package agent

// A deploy's baseline: each check's runs before the deploy, back to its baseline_runs
// newest passing ones, leaving out the runs of rollouts no verdict accepted (README,
// "Baselines").

import (
	"context"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/store"
)

// baselineEnd is where the runs that make a deploy's baseline end: at, and the service's
// deploys (newest first) whose spans the runs before at leave out.
type baselineEnd struct {
	at      time.Time
	deploys []*store.Deploy
}

// baseline is each check's baseline in this location, from its runs before end.at outside
// the spans of the service's called-off rollouts. A check with no passing run outside them
// within baselineScan (one added during such a rollout) takes them, as it would have: a
// baseline from runs that passed every assertion is better than none, which leaves every
// baseline.* assertion inconclusive.
func (a *Agent) baseline(ctx context.Context, list []*checks.Check, svc *configs.Service, end baselineEnd) map[string]map[string]any {
	skip := calledOff(end.deploys, end.at, rollbackTime(svc.Verify))
	out := map[string]map[string]any{}
	for _, c := range list {
		results, err := a.runsBefore(ctx, c.Name, end.at, skip, svc.Verify.BaselineRuns)
		if err == nil && len(skip) > 0 && !anyPassed(results) {
			a.log.Warn("a check has no passing run outside the rollouts called off before this deploy; its baseline includes theirs",
				"check", c.Name, "rollouts", len(skip))
			results, err = a.runsBefore(ctx, c.Name, end.at, nil, svc.Verify.BaselineRuns)
		}
		if err != nil {
			a.log.Warn("reading the baseline of a check failed; it has none in this verification", "check", c.Name, "error", err)
			continue
		}
		if b := c.Baseline(results, svc.Verify.BaselineRuns); b != nil {
			out[c.Name] = b
		}
	}
	return out
}

func anyPassed(results []*checks.Result) bool {
	for _, r := range results {
		if r.Outcome == checks.Pass {
			return true
		}
	}
	return false
}

// baselineScan is how many runs before a deploy are read, at most, for a check's newest
// passing ones: a hotfix shipped into an outage comes after a long run of failures, and
// its baseline is from before them.
const baselineScan = 5000

// runsBefore is check's runs in this location before at, newest first, back to its
// passing-th passing run (or baselineScan runs), leaving out those that started within a
// span of skip (the reads jump over a span to its start) and before the check last
// changed what it measures (measured.go).
func (a *Agent) runsBefore(ctx context.Context, check string, at time.Time, skip []span, passing int) ([]*checks.Result, error) {
	page := 50 // enough for most: the newest runs before a deploy usually pass
	var out []*checks.Result
	for len(out) < baselineScan {
		at = before(skip, at)
		runs, err := a.store.BaselineRuns(ctx, check, a.location, a.measuredSince(check), at, page)
		if err != nil {
			return nil, err
		}
		jumped := false
		for _, r := range runs {
			if s, in := within(skip, r.Started); in {
				at, jumped = s.from, true
				break
			}
			out = append(out, fromStoreRun(r))
			if r.Outcome == string(checks.Pass) {
				passing--
			}
		}
		if passing <= 0 || (!jumped && len(runs) < page) {
			break
		}
		if !jumped {
			at = runs[len(runs)-1].Started
		}
		page = 500
	}
	return out, nil
}

// span is a stretch of time whose runs a baseline leaves out: [from, to).
type span struct{ from, to time.Time }

// within is the span of skip that t falls in.
func within(skip []span, t time.Time) (span, bool) {
	for _, s := range skip {
		if !t.Before(s.from) && t.Before(s.to) {
			return s, true
		}
	}
	return span{}, false
}

// before moves at back to the start of the spans it falls in, so that the runs read
// before it are outside them.
func before(skip []span, at time.Time) time.Time {
	for moved := true; moved; {
		moved = false
		for _, s := range skip {
			if at.After(s.from) && !at.After(s.to) {
				at, moved = s.from, true
			}
		}
	}
	return at
}

// rollbackTime is how long after a rollout is called off its runs may still be of it: Argo
// Rollouts' abort scales the stable ReplicaSet back up, which takes as long as a rollout
// step, and the time vigil gives a rollout step to show in the checks is the verification
// window (initial_delay, then count rounds interval apart).
func rollbackTime(v configs.Verify) time.Duration {
	return v.InitialDelay + time.Duration(max(v.Count, 1))*v.Interval
}

// calledOff is the spans of the rollouts in list (the service's deploys, newest first)
// that no verdict accepted and that went back before at: a deploy cancelled (its rollout
// aborted) or failed (rolled back), from the registration of the first deploy it
// superseded, if any, to its verdict plus rollback. The runs in them were of a version
// under way and then rolled back (failing because of it, or slow), and a deploy compared
// with them would read its own failures as "failing before" and its latency against an
// inflated one.
func calledOff(list []*store.Deploy, at time.Time, rollback time.Duration) []span {
	var out []span
	for _, d := range list {
		if (d.Status != store.StatusCancelled && d.Status != store.StatusFailed) || d.DecidedAt.IsZero() || !d.CreatedAt.Before(at) {
			continue
		}
		out = append(out, span{from: supersededSince(list, d.ID, d.CreatedAt), to: d.DecidedAt.Add(rollback)})
	}
	return out
}

// baselineAt is where the runs that make a deploy's baseline end: its registration, at,
// or, when it superseded deploys of its service still verifying (a pipeline's retry, a
// second deploy or a rollback while the first verified), the first of them's
// registration: the runs since were of versions no verdict accepted, and a slow one must
// not become the measure of the next. id is the deploy; "" for one being registered,
// which supersedes the one verifying now.
func (a *Agent) baselineAt(ctx context.Context, service, id string, at time.Time) baselineEnd {
	list, err := a.store.ServiceDeploys(ctx, service, 50)
	if err != nil {
		a.log.Warn("reading the service's deploys failed; the baseline is from the runs just before this one", "service", service, "error", err)
		return baselineEnd{at: at}
	}
	return baselineEnd{at: supersededSince(list, id, at), deploys: list}
}

// supersededSince follows the deploys that id superseded (newest first in list) back to
// the first, and returns its registration; at when id superseded none.
func supersededSince(list []*store.Deploy, id string, at time.Time) time.Time {
	for range list {
		var prev *store.Deploy
		for _, d := range list {
			if (id == "" && d.Status == store.StatusVerifying) || (id != "" && d.Status == store.StatusSuperseded && d.SupersededBy == id) {
				prev = d
				break
			}
		}
		if prev == nil || !prev.CreatedAt.Before(at) {
			return at
		}
		id, at = prev.ID, prev.CreatedAt
	}
	return at
}

// newestRunBefore is check's newest run in this location before at outside the spans of
// skip, since the check measures what it measures now; nil when it has none.
func (a *Agent) newestRunBefore(ctx context.Context, check string, at time.Time, skip []span) (*store.RunRecord, error) {
	for range len(skip) + 1 {
		at = before(skip, at)
		runs, err := a.store.BaselineRuns(ctx, check, a.location, a.measuredSince(check), at, 1)
		if err != nil || len(runs) == 0 {
			return nil, err
		}
		s, in := within(skip, runs[0].Started)
		if !in {
			return runs[0], nil
		}
		at = s.from
	}
	return nil, nil
}
