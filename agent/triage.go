package agent

// What a deploy verdict's message needs beyond the reason, so the person who reads it can
// act without opening anything: when the failure was detected, how many checks passed,
// the version a rollback goes back to, the pipeline's links, who owns the service and
// each failing check, and how each failing run compares with the runs before the deploy.

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/store"
)

// triage fills ev's deploy verdict details. v may be nil (a verdict without a
// verification: the service left the config).
func (a *Agent) triage(ctx context.Context, rt *Runtime, svc *configs.Service, d *store.Deploy, v *verification, ev *alerting.Event) {
	ev.Owners, ev.RunbookURL = svc.Owners, string(svc.RunbookURL)
	if !d.CreatedAt.IsZero() && ev.OccurredAt.After(d.CreatedAt) {
		ev.DetectedAfter = math.Round(ev.OccurredAt.Sub(d.CreatedAt).Seconds()*1000) / 1000
	}
	ev.Deploy.PreviousVersion = a.previousVersion(ctx, d)
	if links, err := a.store.DeployLinks(ctx, d.ID); err == nil {
		for _, l := range links {
			ev.Deploy.Links = append(ev.Deploy.Links, alerting.Link{Name: l.Name, URL: l.URL})
		}
	}
	if v == nil {
		return
	}
	v.mu.Lock()
	ev.ChecksTotal = len(v.checks)
	names := make([]string, 0, len(v.checks))
	for _, c := range v.checks {
		t := v.tallies[c.Name]
		if t != nil && t.runs > 0 && t.first == nil {
			ev.ChecksPassed++
		}
		names = append(names, c.Name)
	}
	ready, ok := v.ready()
	v.mu.Unlock()
	if ok {
		ev.ReadyAfter = math.Round(ready.Seconds()*1000) / 1000
		ev.ReadyBefore = a.earlierStartups(ctx, d, names)
	}
}

// earlierStartups is how long after registration every one of checks had passed once,
// in seconds, for the service's last five deploys that passed before d, newest first
// (one whose runs do not show all of checks passing is left out: the checks changed, or
// its runs aged out): seed 002's "much longer to start up than usual", in figures.
func (a *Agent) earlierStartups(ctx context.Context, d *store.Deploy, checks []string) []float64 {
	if len(checks) == 0 {
		return nil
	}
	passed, firsts, err := a.passedBefore(ctx, d, 5)
	if err != nil {
		a.log.Warn("reading earlier deploys' startup failed; the verdict goes without it", "deploy", d.ID, "error", err)
		return nil
	}
	var out []float64
	for _, p := range passed {
		ready, all := time.Duration(0), true
		for _, c := range checks {
			at, ok := firsts[p.ID][c]
			if !ok {
				all = false
				break
			}
			ready = max(ready, at.Sub(p.CreatedAt))
		}
		if all {
			out = append(out, math.Round(ready.Seconds()*1000)/1000)
		}
	}
	return out
}

// usualDeploys is how many of the service's last deploys that passed make a check's usual
// startup (verify.ready_slowdown), and minUsualDeploys how many of them must show it
// passing: fewer, and the check has no usual startup yet and the rule waits.
const usualDeploys, minUsualDeploys = 5, 3

// usualStartups gives each of v's checks its usual startup, for verify.ready_slowdown.
func (a *Agent) usualStartups(ctx context.Context, v *verification) {
	passed, firsts, err := a.passedBefore(ctx, v.deploy, usualDeploys)
	if err != nil {
		a.log.Warn("reading earlier deploys' startup failed; verify.ready_slowdown waits in this verification", "deploy", v.deploy.ID, "error", err)
		return
	}
	for _, c := range v.checks {
		if t := v.tallies[c.Name]; t != nil {
			t.usual, t.usualOf = usualStartup(passed, firsts, c.Name)
		}
	}
}

// usualStartup is check's usual startup: the median of how long after registration it
// first passed in the deploys passed (passedBefore's), a median so that one slow deploy
// among them moves it little, and how many of them it is of. 0, 0 when fewer than
// minUsualDeploys show it passing.
func usualStartup(passed []*store.Deploy, firsts map[string]map[string]time.Time, check string) (time.Duration, int) {
	var took []time.Duration
	for _, p := range passed {
		if at, ok := firsts[p.ID][check]; ok {
			took = append(took, max(at.Sub(p.CreatedAt), time.Nanosecond))
		}
	}
	n := len(took)
	if n < minUsualDeploys {
		return 0, 0
	}
	slices.Sort(took)
	return (took[(n-1)/2] + took[n/2]) / 2, n
}

// passedBefore is the service's last n deploys that passed before d, newest first, and
// when each check first passed in each of them (by deploy id, then check; a deploy whose
// runs aged out has none).
func (a *Agent) passedBefore(ctx context.Context, d *store.Deploy, n int) ([]*store.Deploy, map[string]map[string]time.Time, error) {
	list, err := a.store.ServiceDeploys(ctx, d.Service, 50)
	if err != nil {
		return nil, nil, err
	}
	var passed []*store.Deploy
	var ids []string
	for _, p := range list { // newest first
		if p.ID != d.ID && p.CreatedAt.Before(d.CreatedAt) && p.Status == store.StatusPassed {
			passed, ids = append(passed, p), append(ids, p.ID)
			if len(ids) == n {
				break
			}
		}
	}
	firsts, err := a.store.FirstPasses(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	return passed, firsts, nil
}

// previousVersion is the service's newest version that passed verification before d.
func (a *Agent) previousVersion(ctx context.Context, d *store.Deploy) string {
	list, err := a.store.ServiceDeploys(ctx, d.Service, 50)
	if err != nil {
		return ""
	}
	for _, p := range list { // newest first
		if p.ID != d.ID && p.CreatedAt.Before(d.CreatedAt) && p.Status == store.StatusPassed && p.Version != d.Version {
			return p.Version
		}
	}
	return ""
}

// checkContacts sets a failing check's owners and runbook when they are its own (the
// event carries the service's).
func (a *Agent) checkContacts(rt *Runtime, fc *alerting.FailedCheck, ev *alerting.Event) {
	c := rt.Checks[fc.Name]
	if c == nil {
		return
	}
	owners, runbook := a.contacts(rt, c)
	if !slices.Equal(owners, ev.Owners) {
		fc.Owners = owners
	}
	if runbook != ev.RunbookURL {
		fc.RunbookURL = runbook
	}
}

// baselineVars are the variables a comparison with the baseline reads, most telling first,
// with the name people know them by.
var baselineVars = []struct{ key, label string }{
	{"p95_ms", "p95"}, {"p99_ms", "p99"}, {"propagation_ms", "propagation"},
	{"timings.load_ms", "load"}, {"duration_ms", "duration"},
}

// baselineNote compares a run with the deploy's baseline (the median of the passing runs
// before it): "p95 412 ms (180 ms before the deploy)"; "" without a baseline.
func baselineNote(res *checks.Result, base map[string]any) string {
	if res == nil || len(base) == 0 {
		return ""
	}
	// Like with like: the baseline's times leave out its runs' connection setup, and so
	// does the run's, when it opened a connection (checks.WithoutSetup).
	vars, lessSetup := checks.WithoutSetup(res.Vars)
	for _, bv := range baselineVars {
		now, ok1 := number(lookup(vars, bv.key))
		before, ok2 := number(lookup(base, bv.key))
		// A time of 0 was not measured (a page that died before its load event): no comparison.
		if ok1 && ok2 && now > 0 {
			note := ""
			if lessSetup && bv.key == "duration_ms" {
				note = " less connection setup"
			}
			return fmt.Sprintf("%s %s%s (%s before the deploy)", bv.label, fmtMS(now), note, fmtMS(before))
		}
	}
	return ""
}

// lookup reads a dotted key ("timings.load_ms") from nested maps, or the flat key.
func lookup(vars map[string]any, key string) any {
	if v, ok := vars[key]; ok {
		return v
	}
	head, rest, ok := strings.Cut(key, ".")
	if !ok {
		return nil
	}
	inner, _ := vars[head].(map[string]any)
	return lookup(inner, rest)
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	}
	return 0, false
}
