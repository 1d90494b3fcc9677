package alerting

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/text"
)

// Block Kit limits (https://api.slack.com/reference/block-kit/blocks), kept well inside.
const (
	maxHeader        = 150
	maxSectionText   = 2900
	maxField         = 1900
	maxReason        = 600
	maxChecksShown   = 15
	maxHistoryLines  = 12
	maxFallbackChars = 1000
	maxLinkURL       = 2000
	maxLinkLabel     = 200
)

// rendered is an event as Slack shows it.
type rendered struct {
	title    string // what the incident is, for the root's header
	emoji    string // the status the event puts the incident in
	status   string
	fallback string        // notification text
	body     []slack.Block // the evidence, on the root
	reply    []slack.Block // the event as a reply in the thread
	// actions and links make the root's context line; the root keeps them in its State,
	// so an action's result replaces "calling rollback" there.
	actions []actionLine
	links   []string
	// statusURL is the event's status page, shown as text where Slack refuses the blocks.
	statusURL string
}

// render renders ev; resolves says whether the incident had a failure, so that a
// deploy_passed reads "Resolved" rather than "Passed verification".
func render(ev *Event, resolves bool) rendered {
	v := newView(ev, resolves)
	r := rendered{title: v.title, emoji: v.emoji, status: v.status, actions: v.actions, links: contextLinks(v),
		statusURL: v.statusURL}
	facts, details := evidence(v)
	lead := leadText(v)

	if facts != nil {
		r.body = append(r.body, facts)
	}
	if lead != "" {
		r.body = append(r.body, section(lead))
	}
	r.body = append(r.body, details...)

	head := r.emoji + " *" + esc(r.status) + "*"
	if ev.Name != EventActionResult && ev.Name != configs.EventDeployPassed {
		head += " — " + esc(r.title)
	}
	if lead != "" && ev.Name != EventActionResult {
		head += "\n" + lead
	}
	r.reply = []slack.Block{section(head)}
	switch {
	case ev.Name == EventActionResult:
		// The thread already says which deploy and which webhook; the summary is the news.
	case ev.Name == configs.EventDeployPassed && facts != nil:
		// A later deploy that resolves the incident: show which one.
		r.reply = append(append(r.reply, facts), details...)
	default:
		r.reply = append(r.reply, details...)
	}
	if c := contextBlock(r.actions, r.links); c != nil && ev.Name != EventActionResult {
		r.reply = append(r.reply, c)
	}

	r.fallback = notification(ev, v)
	return r
}

// notification is the event in one line, as text: the notification of a Slack message, and
// the heart of the minimal form a chat service that refused the full message is sent
// (see plain.go). The emoji, the title and what happened.
func notification(ev *Event, v view) string {
	line := plainEmoji(v.emoji) + " " + v.title
	switch {
	case ev.Name == configs.EventDeployCancelled && ev.Summary != "":
		line += ": " + strings.TrimPrefix(ev.Summary, "cancelled: ")
	case ev.Name == configs.EventDeploySuperseded && ev.SupersededBy != nil:
		line += " by " + ev.SupersededBy.String()
	case v.summary != "":
		line += ": " + v.summary
	case len(v.checks) > 0 && v.checks[0].Summary != "":
		line += ": " + v.checks[0].Name + ": " + v.checks[0].Summary
	}
	return text.Ellipsis(line, maxFallbackChars)
}

func title(ev *Event) string {
	subject := ""
	if d := ev.Deploy; d != nil {
		subject = strings.TrimSpace(d.Service + " " + d.Version)
		if d.Environment != "" {
			subject += " in " + d.Environment
		}
	}
	check := "check " + ev.Check
	if ev.Service != "" && ev.Check != "" {
		check += " (" + ev.Service + ")"
	}
	switch ev.Name {
	case configs.EventDeployFailed:
		return "Deploy of " + subject + " failed verification"
	case configs.EventDeployHalted:
		return "Rollout of " + subject + " halted"
	case configs.EventDeployInconclusive:
		return "Deploy of " + subject + ": verification inconclusive"
	case configs.EventDeployPassed:
		return "Deploy of " + subject + " passed verification"
	case configs.EventDeployStarted:
		return "Verifying the deploy of " + subject
	case configs.EventDeployCancelled:
		return "Verification of " + subject + " cancelled"
	case configs.EventDeploySuperseded:
		return "Verification of " + subject + " superseded"
	case configs.EventCheckFailed:
		if ev.Reminder > 0 {
			return fmt.Sprintf("%s is still failing (reminder %d)", strings.ToUpper(check[:1])+check[1:], ev.Reminder)
		}
		return strings.ToUpper(check[:1]) + check[1:] + " is failing"
	case configs.EventCheckRecovered:
		if ev.Closed != "" {
			return strings.ToUpper(check[:1]) + check[1:] + ": incident closed"
		}
		return strings.ToUpper(check[:1]) + check[1:] + " recovered"
	case EventActionResult:
		if ev.Summary != "" {
			return ev.Summary
		}
		if len(ev.Actions) > 0 {
			return ev.Actions[0].Notifier + ": " + ev.Actions[0].Action
		}
		return "Action result"
	}
	return ev.Name
}

// status is the state an event puts its incident in. A deploy_passed resolves the
// incident when a failure opened it, and merely passes when the thread was a
// deploy_started (or the notifier posts passing deploys on their own).
func status(ev *Event, resolves bool) (emoji, text string) {
	switch ev.Name {
	case configs.EventDeployFailed:
		return ":red_circle:", "Failed"
	case configs.EventDeployHalted:
		return ":octagonal_sign:", "Rollout halted"
	case configs.EventDeployInconclusive:
		return ":large_yellow_circle:", "Inconclusive (no rollback)"
	case configs.EventDeployPassed:
		if !resolves {
			return ":white_check_mark:", "Passed verification"
		}
		return ":white_check_mark:", "Resolved: " + title(ev)
	case configs.EventDeployStarted:
		return ":rocket:", "Verifying"
	case configs.EventDeployCancelled:
		// The reason is the agent's "cancelled: Argo Rollouts aborted web" (or "cancelled
		// through the API"): the status line says it once.
		reason := strings.TrimSpace(ev.Summary)
		switch {
		case reason == "":
			return ":heavy_minus_sign:", "Cancelled"
		case strings.HasPrefix(reason, "cancelled"):
			return ":heavy_minus_sign:", "C" + reason[1:]
		}
		return ":heavy_minus_sign:", "Cancelled: " + reason
	case configs.EventDeploySuperseded:
		if by := ev.SupersededBy; by != nil && by.Version != "" {
			return ":fast_forward:", "Superseded by " + by.Version
		}
		return ":fast_forward:", "Superseded"
	case configs.EventCheckFailed:
		if ev.Reminder > 0 {
			return ":red_circle:", "Still failing"
		}
		return ":red_circle:", "Failing"
	case configs.EventCheckRecovered:
		if ev.Closed != "" {
			return ":heavy_minus_sign:", "Closed: " + ev.Closed
		}
		return ":white_check_mark:", "Recovered"
	case EventActionResult:
		text := title(ev)
		switch {
		case ev.DryRun || (len(ev.Actions) > 0 && ev.Actions[0].DryRun):
			return ":memo:", text
		case len(ev.Actions) > 0 && ev.Actions[0].Action == ActionHalt:
			return ":double_vertical_bar:", text
		}
		return ":leftwards_arrow_with_hook:", text
	}
	return ":information_source:", ev.Name
}

// evidence is what a person needs to act without digging (see newView), as Block Kit:
// the facts as fields, then one section per failing check, the halt, and a context line
// with the actions and the status page link.
func evidence(v view) (facts slack.Block, details []slack.Block) {
	var fields []*slack.TextBlockObject
	for _, f := range v.facts {
		value := text.Ellipsis(esc(f.value), maxField)
		if f.code {
			value = "`" + esc(text.Ellipsis(f.value, 64)) + "`"
		}
		fields = append(fields, mrkdwn("*"+f.name+"*\n"+value))
	}
	if len(fields) > 0 {
		facts = slack.NewSectionBlock(nil, fields[:min(len(fields), 10)], nil)
	}
	var blocks []slack.Block
	for _, fc := range v.checks {
		blocks = append(blocks, section(failedCheck(fc)))
	}
	if v.more > 0 {
		blocks = append(blocks, section(moreChecks(v.more)))
	}
	if v.halt != "" {
		blocks = append(blocks, section(":octagonal_sign: *"+haltLabel+"* "+esc(v.halt)))
	}
	return facts, blocks
}

// leadText is the section under the facts: the verdict's headline, the reason when the
// checks below do not already quote it, and whom it is for.
func leadText(v view) string {
	var lines []string
	if v.headline != "" {
		lines = append(lines, esc(v.headline))
	}
	if v.summary != "" {
		lines = append(lines, esc(v.summary))
	}
	if m := mentions(v.owners); m != "" {
		lines = append(lines, "*Owners:* "+m)
	}
	return strings.Join(lines, "\n")
}

func mentions(owners []string) string {
	var out []string
	for _, o := range owners {
		out = append(out, configs.Mention(o))
	}
	return strings.Join(out, " ")
}

// contextLinks are the links of the context line, already mrkdwn: the runbook, the
// pipeline's links, the status page.
func contextLinks(v view) []string {
	var out []string
	if v.runbook != "" {
		out = append(out, link(v.runbook, runbookLabel))
	}
	for _, l := range v.links {
		out = append(out, link(l.URL, l.Name))
	}
	if v.statusURL != "" {
		out = append(out, link(v.statusURL, statusPageLabel))
	}
	return out
}

// contextBlock is the line of small print under the evidence: what the action webhooks
// do, then the links; nil when there is neither.
func contextBlock(actions []actionLine, links []string) slack.Block {
	var ctx []slack.MixedElement
	// Each element is a text of at most 3000 characters: Slack refuses the message otherwise.
	for _, a := range actions {
		ctx = append(ctx, mrkdwn(text.Ellipsis("*"+esc(a.notifier)+"*: "+esc(text.Ellipsis(a.what, maxReason)), maxSectionText)))
	}
	for _, l := range links {
		ctx = append(ctx, mrkdwn(text.Ellipsis(l, maxSectionText)))
	}
	if len(ctx) == 0 {
		return nil
	}
	return slack.NewContextBlock("", ctx[:min(len(ctx), 10)]...)
}

func failedCheck(fc FailedCheck) string {
	var b strings.Builder
	b.WriteString("*" + esc(fc.Name) + "*")
	if tags := checkTags(fc); len(tags) > 0 {
		b.WriteString(" · " + esc(strings.Join(tags, " · ")))
	}
	if fc.Summary != "" {
		b.WriteString("\n```" + esc(text.Ellipsis(strings.ReplaceAll(fc.Summary, "```", "'''"), maxReason)) + "```")
	}
	if fc.Baseline != "" {
		b.WriteString("\n" + esc(fc.Baseline))
	}
	if m := mentions(fc.Owners); m != "" {
		b.WriteString("\n*Owners:* " + m)
	}
	var tail []string
	if fc.RunURL != "" {
		tail = append(tail, link(fc.RunURL, runLabel))
	}
	if fc.RunbookURL != "" {
		tail = append(tail, link(fc.RunbookURL, runbookLabel))
	}
	switch {
	case fc.TraceURL != "":
		tail = append(tail, link(fc.TraceURL, "trace "+text.Ellipsis(fc.TraceID, 64)))
	case fc.TraceID != "":
		tail = append(tail, "trace `"+esc(text.Ellipsis(fc.TraceID, 64))+"`")
	}
	if len(fc.Screenshot) > 0 {
		tail = append(tail, screenshotNote)
	}
	if len(tail) > 0 {
		b.WriteString("\n" + strings.Join(tail, " · "))
	}
	return text.Ellipsis(b.String(), maxSectionText)
}

func section(s string) *slack.SectionBlock {
	return slack.NewSectionBlock(mrkdwn(text.Ellipsis(s, maxSectionText)), nil, nil)
}

func mrkdwn(text string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, text, false, false)
}

// esc escapes the three characters Slack's mrkdwn gives a meaning to.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// link is a mrkdwn link; characters that would end it early are percent-encoded. A URL
// over maxLinkURL is left out (the label alone): cut, it would lead nowhere, and whole it
// would take the room of a block's text.
func link(u, label string) string {
	label = esc(text.Ellipsis(label, maxLinkLabel))
	if len(u) > maxLinkURL {
		return label
	}
	u = strings.NewReplacer("|", "%7C", ">", "%3E", "<", "%3C", " ", "%20").Replace(u)
	return "<" + u + "|" + label + ">"
}

// plainEmoji turns a status emoji code into a character for notification text.
func plainEmoji(code string) string {
	switch code {
	case ":red_circle:":
		return "🔴"
	case ":octagonal_sign:":
		return "🛑"
	case ":large_yellow_circle:":
		return "🟡"
	case ":white_check_mark:":
		return "✅"
	case ":rocket:":
		return "🚀"
	case ":leftwards_arrow_with_hook:":
		return "↩️"
	case ":double_vertical_bar:":
		return "⏸️"
	case ":memo:":
		return "📝"
	case ":fast_forward:":
		return "⏩"
	}
	return "ℹ️"
}
