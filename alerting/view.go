package alerting

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/vigil-monitor/vigil/configs"
)

// The wording vigil uses for an event wherever it is shown: the Slack blocks (slackrender.go)
// and the terminal text (RenderText) are two renderings of one view, so they cannot drift.
const (
	haltLabel       = "Halt the rollout:"
	statusPageLabel = "Status page"
	runLabel        = "Run"
	runbookLabel    = "Runbook"
	screenshotNote  = "screenshot in the thread"
)

// view is an event as a person reads it, before any markup.
type view struct {
	title, emoji, status string
	facts                []fact
	// summary is the verdict's reason, left out when the failing checks below quote it
	// already; for an action_result it is the title instead.
	summary string
	// headline is a deploy verdict in one line: when it came and how many checks passed.
	headline  string
	owners    []string
	runbook   string
	links     []Link
	checks    []FailedCheck // the failing checks shown
	more      int           // and how many are left out
	halt      string
	actions   []actionLine
	statusURL string
}

type fact struct {
	name, value string
	code        bool // an identifier shown verbatim (commit)
}

type actionLine struct{ notifier, what string }

// newView is what a person needs to act without digging: the facts (deploy or check),
// each failing check with its first reason, links and trace ids, and what vigil does
// about it. resolves: see status.
func newView(ev *Event, resolves bool) view {
	v := view{title: title(ev), halt: ev.Halt, statusURL: ev.StatusURL}
	v.emoji, v.status = status(ev, resolves)
	// An action's result, a cancel and a supersede say their summary as their status (and
	// a supersede's fact).
	if ev.Name != EventActionResult && !configs.ClosesStart(ev.Name) && !quoted(ev.Summary, ev.FailedChecks, ev.Deploy != nil) {
		v.summary = ev.Summary
	}
	v.headline = headline(ev)
	v.owners, v.runbook = ev.Owners, ev.RunbookURL
	add := func(name, value string, code bool) {
		if value != "" {
			v.facts = append(v.facts, fact{name, value, code})
		}
	}
	if d := ev.Deploy; d != nil {
		add("Service", d.Service, false)
		add("Version", d.Version, false)
		add("Environment", d.Environment, false)
		add("Commit", d.Commit, true)
		add("Deploy", d.ID, false)
		if ev.Name != configs.EventDeployStarted && ev.Name != configs.EventDeployPassed && !configs.ClosesStart(ev.Name) {
			add("Rollback target", d.PreviousVersion, false)
		}
		if by := ev.SupersededBy; by != nil {
			add("Superseded by", by.String(), false)
		}
		v.links = d.Links
	} else {
		add("Check", ev.Check, false)
		add("Service", ev.Service, false)
	}
	add("Location", ev.Location, false)
	if ev.LastDeploy != nil {
		add("Last deploy", ev.LastDeploy.String(), false)
	}

	v.checks = ev.FailedChecks
	if len(v.checks) > maxChecksShown {
		v.checks, v.more = v.checks[:maxChecksShown], len(v.checks)-maxChecksShown
	}
	for _, a := range ev.Actions {
		what := "calling " + a.Action
		switch {
		case a.Withheld != "":
			what = "not calling " + a.Action + ": " + a.Withheld
		case a.DryRun || ev.DryRun:
			what = "would call " + a.Action + " (dry run)"
		}
		v.actions = append(v.actions, actionLine{a.Notifier, what})
	}
	return v
}

// checkTags are a failing check's kind and outcome.
func checkTags(fc FailedCheck) []string {
	var tags []string
	if fc.Kind != "" {
		tags = append(tags, fc.Kind)
	}
	if fc.Outcome != "" {
		tags = append(tags, fc.Outcome)
	}
	return tags
}

func moreChecks(n int) string {
	return fmt.Sprintf("…and %d more failing checks; see the status page.", n)
}

// quoted reports whether the reason only repeats what the failing checks' sections show
// (the agent's reason is "CHECK: N failed runs (failure_limit L): FIRST REASON"): printing
// it as well would say the same thing twice.
// A check event's summary says more than the check's reason only when it differs (a
// reminder's "still failing since").
func quoted(reason string, failed []FailedCheck, verdict bool) bool {
	if reason == "" || len(failed) == 0 {
		return false
	}
	for _, fc := range failed {
		if fc.Summary != "" && (reason == fc.Summary || verdict && strings.Contains(reason, fc.Summary)) {
			return true
		}
	}
	return false
}

// headline is a deploy verdict in one line: "Failed 1.4 s after the deploy was
// registered; 3 of 4 checks passed."
func headline(ev *Event) string {
	var parts []string
	if ev.DetectedAfter > 0 {
		verb := "Decided"
		switch ev.Name {
		case configs.EventDeployFailed, configs.EventDeployHalted:
			verb = "Failed"
		case configs.EventDeployInconclusive:
			verb = "Gave up"
		case configs.EventDeployPassed:
			verb = "Passed"
		}
		parts = append(parts, verb+" "+seconds(ev.DetectedAfter)+" after the deploy was registered")
	}
	if ev.ReadyAfter > 0 {
		ready := "every check passed once by " + seconds(ev.ReadyAfter)
		if n := len(ev.ReadyBefore); n > 0 {
			lo, hi := slices.Min(ev.ReadyBefore), slices.Max(ev.ReadyBefore)
			span := seconds(lo)
			if seconds(hi) != span {
				span += " to " + seconds(hi)
			}
			last := fmt.Sprintf("the last %d deploys", n)
			if n == 1 {
				last = "the last deploy"
			}
			ready += " (" + span + " in " + last + ")"
		}
		parts = append(parts, ready)
	}
	if ev.ChecksTotal > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d checks passed", ev.ChecksPassed, ev.ChecksTotal))
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, "; ") + "."
}

// seconds prints a duration given in seconds as people read it: "850 ms", "1.4 s", "2 min 5 s".
func seconds(s float64) string {
	switch {
	case s < 1:
		return strconv.Itoa(int(s*1000+0.5)) + " ms"
	case s < 60:
		return strconv.FormatFloat(s, 'f', 1, 64) + " s"
	}
	total := int(s + 0.5)
	return fmt.Sprintf("%d min %d s", total/60, total%60)
}
