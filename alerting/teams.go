package alerting

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/text"
)

// defaultTeamsTimeout bounds one attempt.
const defaultTeamsTimeout = 10 * time.Second

// maxTeamsActions is how many buttons a card gets (Teams shows up to six).
const maxTeamsActions = 6

// maxTeamsMessage is how large a message's JSON may grow, of the 28 KB a Workflows webhook
// takes: the reasons are cut shorter, then failing checks left out (counted), until it fits.
const maxTeamsMessage = 26 << 10

// Teams posts an Adaptive Card (1.4) per event to a Microsoft Teams channel through a
// Workflows webhook ("Post to a channel when a webhook request is received"): the status,
// the deploy or check facts, the reason, each failing check with its reason, run and trace,
// and buttons to the status page, the first failing run and its trace. A Workflows webhook
// cannot reply in a thread, so each event is a card of its own; the follow-ups of an
// incident (recovery, the resolving deploy, an action's result) are posted only for an
// incident this notifier opened, or an action's result whose failure card was lost (see
// followUpSkipped); otherwise Deliver skips them (ErrSkipped). A Workflows webhook answers
// 202: that is the delivery.
type Teams struct {
	base
	url    string
	shown  string
	client *http.Client
}

func newTeams(cfg *configs.Notifier, opts Options) (*Teams, error) {
	if err := checkURL(cfg, "url", cfg.URL, "copy the URL of the channel's Workflows webhook"); err != nil {
		return nil, err
	}
	return &Teams{base: newBase(cfg, opts, defaultTeamsTimeout), url: cfg.URL, shown: configs.RedactURL(cfg.URL),
		client: newHTTPClient(opts.Transport)}, nil
}

// Wants: by default deploy_failed, deploy_halted, deploy_inconclusive and check_failed;
// check_recovered, deploy_passed and action_result follow an incident it posted (and are
// posted on their own only when `events` lists them, or, an action's result, when the
// failure's card was lost). With `events`, the listed events.
func (m *Teams) Wants(event string) bool { return m.wantsIncident(event) }

// Deliver posts the event's card once.
func (m *Teams) Deliver(ctx context.Context, ev *Event, st State) error {
	if err := checkEvent(m.name, ev); err != nil {
		return err
	}
	if st == nil {
		st = State{}
	}
	if err := m.followUpSkipped(ev, st); err != nil {
		return err
	}
	if m.dryRun {
		return m.dryRunError(ev, st, http.MethodPost, m.shown, "", ev.Name+" for "+describeSubject(ev))
	}
	attempting(ev, st)
	ctx, cancel := m.attempt(ctx)
	defer cancel()
	full := jsonPost{url: m.url, shown: m.shown, body: teamsMessage(ev, st), refused: answerRefusal}
	err := m.postOrMinimal(ctx, m.client, ev, st, full, func(refused string) any { return teamsPlain(ev, st, refused) },
		"the workflow refused the request or is gone: copy its webhook URL again, the sig parameter included")
	if err != nil {
		return err
	}
	told(ev, st)
	return nil
}

// acStyles are the container styles of the tones.
var acStyles = map[string]string{"bad": "attention", "warn": "warning", "good": "good", "info": "emphasis"}

// teamsMessage is the Workflows message envelope around the card. Text from checks goes in
// TextRuns, which Teams shows as plain text: a reason cannot turn into a link or markup.
// It fits in maxTeamsMessage: a failing check's reason is cut shorter, then checks are left
// out and counted, as for Discord.
func teamsMessage(ev *Event, st State) map[string]any {
	v := channelView(ev, st)
	var m map[string]any
	for reason := maxReason; ; reason /= 2 {
		m = teamsMessageOf(ev, v, reason)
		if jsonSize(m) <= maxTeamsMessage || reason < 50 {
			break
		}
	}
	for jsonSize(m) > maxTeamsMessage && len(v.checks) > 0 {
		v.checks, v.more = v.checks[:len(v.checks)-1], v.more+1
		m = teamsMessageOf(ev, v, 50)
	}
	return m
}

// jsonSize is how many bytes v takes as JSON.
func jsonSize(v any) int {
	b, _ := json.Marshal(v)
	return len(b)
}

func teamsMessageOf(ev *Event, v view, reason int) map[string]any {
	head := []any{richText(acRun(plainEmoji(v.emoji)+" "+v.title, "size", "Large", "weight", "Bolder"))}
	if v.status != v.title {
		head = append(head, richText(acRun(v.status, "weight", "Bolder")))
	}
	body := []any{map[string]any{"type": "Container", "style": acStyles[tone(ev)], "bleed": true, "items": head}}
	if len(v.facts) > 0 {
		var facts []any
		for _, f := range v.facts {
			facts = append(facts, map[string]any{"title": f.name, "value": mdEscape(text.Ellipsis(f.value, 300))})
		}
		body = append(body, map[string]any{"type": "FactSet", "facts": facts})
	}
	if v.headline != "" {
		body = append(body, richText(acRun(v.headline, "isSubtle", true)))
	}
	if v.summary != "" {
		body = append(body, richText(acRun(text.Ellipsis(v.summary, maxSectionText))))
	}
	for _, fc := range v.checks {
		head := []any{acRun("✗ "+text.Ellipsis(fc.Name, maxLinkLabel), "weight", "Bolder")}
		if tags := checkTags(fc); len(tags) > 0 {
			head = append(head, acRun(" · "+strings.Join(tags, " · "), "isSubtle", true))
		}
		items := []any{richText(head...)}
		if fc.Summary != "" {
			items = append(items, richText(acRun(text.Ellipsis(fc.Summary, reason), "fontType", "Monospace")))
		}
		if fc.Baseline != "" {
			items = append(items, richText(acRun(text.Ellipsis(fc.Baseline, reason), "isSubtle", true)))
		}
		if links := checkLinks(fc); len(links) > 0 {
			items = append(items, richText(links...))
		}
		body = append(body, map[string]any{"type": "Container", "separator": true, "items": items})
	}
	if v.more > 0 {
		body = append(body, richText(acRun(moreChecks(v.more), "isSubtle", true)))
	}
	if v.halt != "" {
		body = append(body, richText(acRun("🛑 "+haltLabel+" ", "weight", "Bolder"), acRun(text.Ellipsis(v.halt, maxSectionText))))
	}
	for _, a := range v.actions {
		body = append(body, richText(acRun(a.notifier+": ", "weight", "Bolder"), acRun(text.Ellipsis(a.what, maxReason))))
	}
	card := map[string]any{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"type":    "AdaptiveCard",
		"version": "1.4",
		"body":    body,
		"msteams": map[string]any{"width": "Full"},
	}
	if actions := teamsActions(v); len(actions) > 0 {
		card["actions"] = actions
	}
	return map[string]any{"type": "message", "attachments": []any{map[string]any{
		"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": nil, "content": card}}}
}

// checkLinks are a failing check's run, trace and screenshot as TextRuns.
func checkLinks(fc FailedCheck) []any {
	var runs []any
	add := func(r map[string]any) {
		if len(runs) > 0 {
			runs = append(runs, acRun(" · ", "isSubtle", true))
		}
		runs = append(runs, r)
	}
	if fc.RunURL != "" {
		add(acLink(runLabel, fc.RunURL))
	}
	if fc.RunbookURL != "" {
		add(acLink(runbookLabel, fc.RunbookURL))
	}
	switch {
	case fc.TraceURL != "":
		add(acLink("trace "+text.Ellipsis(fc.TraceID, 64), fc.TraceURL))
	case fc.TraceID != "":
		add(acRun("trace "+text.Ellipsis(fc.TraceID, 64), "fontType", "Monospace"))
	}
	if len(fc.Screenshot) > 0 {
		if fc.RunURL != "" {
			add(acLink(screenshotOnRunPage, fc.RunURL))
		} else {
			add(acRun(screenshotOnRunPage))
		}
	}
	return runs
}

// teamsActions are the card's buttons: the status page, the runbook, the deploy's links
// (CI run, diff), then the first failing runs and traces.
func teamsActions(v view) []any {
	var out []any
	add := func(title, u string) {
		if u != "" && len(u) <= maxLinkURL && validHTTPURL(u) && len(out) < maxTeamsActions {
			out = append(out, map[string]any{"type": "Action.OpenUrl", "title": text.Ellipsis(title, 40), "url": u})
		}
	}
	add(statusPageLabel, v.statusURL)
	add(runbookLabel, v.runbook)
	for _, l := range v.links {
		add(l.Name, l.URL)
	}
	for _, fc := range v.checks {
		add(runLabel+": "+fc.Name, fc.RunURL)
		add("Trace: "+fc.Name, fc.TraceURL)
	}
	return out
}

func richText(inlines ...any) map[string]any {
	return map[string]any{"type": "RichTextBlock", "inlines": inlines}
}

// acRun is a TextRun with its options as key, value pairs.
func acRun(s string, opts ...any) map[string]any {
	r := map[string]any{"type": "TextRun", "text": s}
	for i := 0; i+1 < len(opts); i += 2 {
		r[opts[i].(string)] = opts[i+1]
	}
	return r
}

func acLink(s, u string) map[string]any {
	r := acRun(s)
	if len(u) <= maxLinkURL && validHTTPURL(u) {
		r["selectAction"] = map[string]any{"type": "Action.OpenUrl", "url": u}
	}
	return r
}

// mdEscape keeps the Markdown that Teams applies to FactSet values from turning text into
// links or emphasis.
func mdEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "(", `\(`, ")", `\)`,
		"`", "\\`", "~", `\~`, "<", `\<`, ">", `\>`, "#", `\#`).Replace(s)
}
