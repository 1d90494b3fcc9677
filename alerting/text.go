package alerting

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/text"
)

// RenderText is the event as plain text for a terminal (`vigil demo`, logs a person reads):
// what the Slack message says, in the same words — title, status, the deploy or check
// facts, the reason, each failing check with its first reason, run link and trace id, the
// halt, the rollback or halt webhooks being called (or, in dry run, that would be), and
// the status page link. A deploy_passed whose Incident is another deploy reads as the
// resolution of that deploy's incident, as it does in the Slack thread.
//
// Text from the checks (reasons, names, URLs) is made inert: control characters, which
// could move the cursor or recolour the terminal, and bidirectional overrides are shown
// escaped. The result ends with a newline.
func RenderText(ev *Event) string {
	if ev == nil {
		return ""
	}
	resolves := ev.Name == configs.EventDeployPassed && ev.Deploy != nil && ev.Incident != "" && ev.Incident != ev.Deploy.ID
	v := newView(ev, resolves)
	var b strings.Builder
	line := func(indent, s string) {
		for l := range strings.SplitSeq(s, "\n") {
			b.WriteString(indent + l + "\n")
		}
	}

	line("", plainEmoji(v.emoji)+" "+inert(v.title))
	if v.status != v.title {
		line("", "Status: "+inert(v.status))
	}
	if len(v.facts) > 0 {
		facts := make([]string, len(v.facts))
		for i, f := range v.facts {
			facts[i] = f.name + ": " + inert(f.value)
		}
		line("", strings.Join(facts, " · "))
	}
	if v.headline != "" {
		line("", inert(v.headline))
	}
	if v.summary != "" {
		line("", inert(v.summary))
	}
	if len(v.owners) > 0 {
		line("", "Owners: "+inert(strings.Join(v.owners, ", ")))
	}
	for _, fc := range v.checks {
		head := "✗ " + inert(fc.Name)
		if tags := checkTags(fc); len(tags) > 0 {
			head += " · " + inert(strings.Join(tags, " · "))
		}
		line("  ", head)
		if fc.Summary != "" {
			line("      ", inert(text.Ellipsis(fc.Summary, maxReason)))
		}
		if fc.Baseline != "" {
			line("      ", inert(fc.Baseline))
		}
		if len(fc.Owners) > 0 {
			line("      ", "Owners: "+inert(strings.Join(fc.Owners, ", ")))
		}
		var tail []string
		if fc.RunURL != "" {
			tail = append(tail, runLabel+": "+inert(fc.RunURL))
		}
		if fc.RunbookURL != "" {
			tail = append(tail, runbookLabel+": "+inert(fc.RunbookURL))
		}
		if fc.TraceID != "" {
			tail = append(tail, "trace "+inert(text.Ellipsis(fc.TraceID, 64)))
		}
		if fc.TraceURL != "" {
			tail = append(tail, fc.TraceURL)
		}
		if len(fc.Screenshot) > 0 {
			tail = append(tail, screenshotNote)
		}
		if len(tail) > 0 {
			line("      ", strings.Join(tail, " · "))
		}
	}
	if v.more > 0 {
		line("  ", moreChecks(v.more))
	}
	if v.halt != "" {
		line("", plainEmoji(":octagonal_sign:")+" "+haltLabel+" "+inert(v.halt))
	}
	for _, a := range v.actions {
		line("", inert(a.notifier)+": "+a.what)
	}
	if v.runbook != "" {
		line("", runbookLabel+": "+inert(v.runbook))
	}
	for _, l := range v.links {
		line("", inert(l.Name)+": "+inert(l.URL))
	}
	if v.statusURL != "" {
		line("", statusPageLabel+": "+inert(v.statusURL))
	}
	return b.String()
}

// inert shows control characters (except newline and tab) and bidirectional formatting
// characters as Go escapes, so text from a check cannot drive the terminal.
func inert(s string) string {
	if strings.IndexFunc(s, dangerous) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case !dangerous(r):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

func dangerous(r rune) bool {
	if r == '\n' || r == '\t' {
		return false
	}
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}
