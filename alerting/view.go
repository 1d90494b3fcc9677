package alerting

import (
	"fmt"
)

// The wording vigil uses for an event wherever it is shown: the Slack blocks (slackrender.go)
// and the terminal text (RenderText) are two renderings of one view, so they cannot drift.
const (
	haltLabel       = "Halt the rollout:"
	statusPageLabel = "Status page"
	runLabel        = "Run"
	screenshotNote  = "screenshot in the thread"
)

// view is an event as a person reads it, before any markup.
type view struct {
	title, emoji, status string
	facts                []fact
	// summary is the verdict's reason; for an action_result it is the title instead.
	summary   string
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
	if ev.Name != EventActionResult {
		v.summary = ev.Summary
	}
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
	} else {
		add("Check", ev.Check, false)
		add("Service", ev.Service, false)
	}
	add("Location", ev.Location, false)

	v.checks = ev.FailedChecks
	if len(v.checks) > maxChecksShown {
		v.checks, v.more = v.checks[:maxChecksShown], len(v.checks)-maxChecksShown
	}
	for _, a := range ev.Actions {
		what := "calling " + a.Action
		if a.DryRun || ev.DryRun {
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
