package agent

// Preflight: may a pipeline deploy this version of this service now? Seed 004's team saw
// version B make its version-A peers crash, and kept pushing B to more places. The agent
// knows what the pipeline does not: which versions failed verification, whether the
// service's rollout was halted, whether a deploy is still being verified, whether the
// service is already failing, and whether a verdict would reach anyone. A pipeline asks
// before it rolls out (`vigil preflight`), and stops when the answer is blocked.
//
// Two things block: a version that failed verification (deployed again, anywhere, it is
// the push seed 004 kept making), and any version but the one to go back to while the
// service's newest verdict is a halt (stop, go back, then release the fix as usual). The
// rest are warnings: the pipeline goes on, and its log says what the verdict will mean.

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/internal/text"
	"github.com/vigil-monitor/vigil/store"
)

// Preflight is whether a deploy of Version may go out now: GET
// /api/v1/services/{name}/preflight's answer.
type Preflight struct {
	Service  string          `json:"service"`
	Version  string          `json:"version"`
	Clear    bool            `json:"clear"`
	Blocked  []PreflightNote `json:"blocked"`
	Warnings []PreflightNote `json:"warnings"`
}

// PreflightNote is one reason to stop or to look.
type PreflightNote struct {
	// Rule is what it is about: version_failed, rollout_halted (blocking); verifying,
	// last_deploy_failed, checks_failing, no_baseline, muted (warnings).
	Rule    string `json:"rule"`
	Message string `json:"message"`
	// Deploy and URL name the deploy it is about, Check the check.
	Deploy string `json:"deploy,omitempty"`
	URL    string `json:"url,omitempty"`
	Check  string `json:"check,omitempty"`
}

// preflightDeploys is how many of the service's newest deploys preflight reads.
const preflightDeploys = 200

func (a *Agent) getPreflight(w http.ResponseWriter, r *http.Request) {
	service, version := r.PathValue("name"), r.URL.Query().Get("version")
	switch {
	case strings.TrimSpace(version) == "":
		writeError(w, http.StatusBadRequest, "name the version going out: /api/v1/services/%s/preflight?version=v2", text.Ellipsis(service, 80))
		return
	case len(version) > 200:
		writeError(w, http.StatusBadRequest, "version is at most 200 characters")
		return
	}
	v, err := a.Preflight(r.Context(), service, version)
	if a.answerFailed(w, err, "", unavailable{"reading the service's deploys failed (%v): ask again",
		"reading the deploys for a preflight failed; the caller was told to ask again", []any{"service", service}}) {
		return
	}
	status := http.StatusOK
	if !v.Clear {
		status = http.StatusConflict
	}
	writeJSON(w, status, v)
}

// Preflight judges a deploy of version of service now; a service the config does not
// have is a *requestError (422).
func (a *Agent) Preflight(ctx context.Context, service, version string) (*Preflight, error) {
	rt := a.Runtime()
	if rt.Config.Services[service] == nil {
		return nil, unknownService(rt, service)
	}
	now := a.clock.Now()
	list, err := a.store.ServiceDeploys(ctx, service, preflightDeploys)
	if err != nil {
		return nil, err
	}
	v := &Preflight{Service: service, Version: version, Blocked: []PreflightNote{}, Warnings: []PreflightNote{}}
	ago := func(d *store.Deploy) string {
		at := d.DecidedAt
		if at.IsZero() {
			at = d.CreatedAt
		}
		return agoAt(now, at)
	}
	note := func(rule, msg string, d *store.Deploy) PreflightNote {
		return PreflightNote{Rule: rule, Message: msg, Deploy: d.ID, URL: a.baseURL() + "/deploys/" + d.ID}
	}

	// The newest verdict on this version: passed or failed (inconclusive and superseded
	// say nothing about it).
	for _, d := range list { // newest first
		if d.Version != version || (d.Status != store.StatusPassed && d.Status != store.StatusFailed) {
			continue
		}
		if d.Status == store.StatusFailed {
			v.Blocked = append(v.Blocked, note("version_failed", fmt.Sprintf("%s %s failed verification %s (deploy %s%s): %s. "+
				"Release a fix as a new version; to deploy this one again anyway, leave this step out (vigil still judges the deploy)",
				service, version, ago(d), d.ID, environmentOf(d), verdictWhy(d)), d))
		}
		break
	}

	// The service's newest verdict, and the version a rollback of it goes back to.
	var last *store.Deploy
	for _, d := range list {
		if d.Status == store.StatusPassed || d.Status == store.StatusFailed {
			last = d
			break
		}
	}
	if last != nil && last.Status == store.StatusFailed && last.Version != version {
		back := passedBeforeIn(list, last)
		switch {
		case back != "" && back == version:
			// The rollback: clear.
		case last.Halt != "":
			fix := "roll back first"
			if back != "" {
				fix = fmt.Sprintf("roll back to %s first (the newest version that passed before it)", back)
			}
			v.Blocked = append(v.Blocked, note("rollout_halted", fmt.Sprintf("the rollout of %s %s was halted %s (deploy %s%s): %s. Stop pushing: %s, "+
				"then release the fix as a deploy of its own", service, last.Version, ago(last), last.ID, environmentOf(last), last.Halt, fix), last))
		default:
			msg := fmt.Sprintf("the last deploy of %s, %s, failed %s (deploy %s%s) and no deploy has passed since: production may still run it, "+
				"and this deploy goes out on top of it", service, last.Version, ago(last), last.ID, environmentOf(last))
			if back != "" {
				msg += fmt.Sprintf(" (%s is the version a rollback goes back to)", back)
			}
			v.Warnings = append(v.Warnings, note("last_deploy_failed", msg, last))
		}
	}
	for _, d := range list {
		if d.Status == store.StatusVerifying {
			v.Warnings = append(v.Warnings, note("verifying", fmt.Sprintf("%s %s (deploy %s) is still being verified, registered %s: a deploy registered now "+
				"supersedes it, and it gets no verdict", service, d.Version, d.ID, agoAt(now, d.CreatedAt)), d))
		}
	}
	v.Warnings = append(v.Warnings, a.failingChecks(rt, service, now, failedBefore(list, now) != nil)...)
	v.Warnings = append(v.Warnings, a.unbaselined(ctx, rt, service, now)...)
	if by := a.silencedBy(rt, service, "", now); by != "" {
		v.Warnings = append(v.Warnings, PreflightNote{Rule: "muted", Message: fmt.Sprintf("%s is muted by %s: a failed verdict would be recorded "+
			"and sent to no one, and no rollback or halt webhook would be called", service, by)})
	}
	v.Clear = len(v.Blocked) == 0
	return v, nil
}

// failingChecks warns of the service's checks with an incident open, saying what a deploy
// into the outage gets if it does not end it (verdict.go): failed and rolled back, unless
// the service registers its deploys before their rollouts and its last verdict did not
// fail (afterFailed), when it is inconclusive.
func (a *Agent) failingChecks(rt *Runtime, service string, now time.Time, afterFailed bool) []PreflightNote {
	svc := rt.Config.Services[service]
	then := "if the deploy does not end it, it fails and is rolled back like any failure (verify.registered_before_rollout, " +
		"for a pipeline that registers its deploys before the rollout, would make that inconclusive)"
	switch {
	case svc.Verify.RegisteredBeforeRollout && afterFailed:
		then = "the service's last deploy failed, so the outage may be its doing: if this deploy does not end it, it fails and is rolled back"
	case svc.Verify.RegisteredBeforeRollout:
		then = "if the deploy does not end it, the verdict is inconclusive, not a rollback (only a failure it did not have fails the deploy)"
	}
	a.incView.RLock()
	defer a.incView.RUnlock()
	var out []PreflightNote
	for _, name := range svc.Checks {
		in := a.incidents[name]
		if in == nil || !in.Open {
			continue
		}
		out = append(out, PreflightNote{Rule: "checks_failing", Check: name, Message: fmt.Sprintf("%s has been failing for %s (since %s), before this deploy: %s: %s",
			name, now.Sub(in.OpenedAt).Round(time.Second), in.OpenedAt.UTC().Format(time.RFC3339), then, text.Ellipsis(in.Summary, 200))})
	}
	return out
}

// unbaselined warns of the service's checks with no passing run in this location among
// their last 50: a deploy registered now has no baseline for them, so its verification
// cannot compare them with before (baseline.* assertions are inconclusive, and a service
// that stops answering is not told from a path that never worked).
func (a *Agent) unbaselined(ctx context.Context, rt *Runtime, service string, now time.Time) []PreflightNote {
	a.writer.flush(ctx) // runs not yet written are runs all the same
	var out []PreflightNote
	for _, name := range rt.Config.Services[service].Checks {
		since := a.measuredSince(name)
		runs, err := a.store.BaselineRuns(ctx, name, a.location, since, now, 50)
		if err != nil {
			a.log.Warn("reading a check's runs for a preflight failed", "check", name, "error", err)
			continue
		}
		if !slices.ContainsFunc(runs, func(r *store.RunRecord) bool { return r.Outcome == "pass" }) {
			seen := fmt.Sprintf("in its last %d runs here", len(runs))
			if len(runs) == 0 {
				seen = "here yet"
			}
			if !since.IsZero() {
				seen += fmt.Sprintf(" since its request changed at %s", since.UTC().Format(time.RFC3339))
			}
			out = append(out, PreflightNote{Rule: "no_baseline", Check: name, Message: fmt.Sprintf("%s has no passing run %s: "+
				"a deploy now has no baseline for it, and its verification cannot compare it with before the deploy", name, seen)})
		}
	}
	return out
}

// passedBeforeIn is the newest version in list (newest first) that passed before d and is
// not d's own: the version a rollback of d goes back to.
func passedBeforeIn(list []*store.Deploy, d *store.Deploy) string {
	i := slices.Index(list, d)
	for _, p := range list[i+1:] {
		if p.Status == store.StatusPassed && p.Version != d.Version {
			return p.Version
		}
	}
	return ""
}

// agoAt is t as "12m3s ago, at 2026-12-06T19:20:00Z".
func agoAt(now, t time.Time) string {
	return fmt.Sprintf("%s ago, at %s", now.Sub(t).Round(time.Second), t.UTC().Format(time.RFC3339))
}

func environmentOf(d *store.Deploy) string {
	if d.Environment == "" {
		return ""
	}
	return " in " + d.Environment
}

// verdictWhy is a failed deploy's halt reason when it has one, else its verdict's reason.
func verdictWhy(d *store.Deploy) string {
	if d.Halt != "" {
		return d.Halt
	}
	return text.Ellipsis(d.Reason, 400)
}
