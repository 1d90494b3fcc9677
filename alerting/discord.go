package alerting

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/text"
)

// defaultDiscordTimeout bounds one attempt.
const defaultDiscordTimeout = 10 * time.Second

// Discord's message limits, kept inside.
const (
	maxDiscordTitle  = 256
	maxDiscordDesc   = 4096
	maxDiscordField  = 1024
	maxDiscordEmbed  = 5800 // of Discord's 6000 characters in all of a message's embeds
	maxDiscordReason = 600
)

// Discord posts an embed per event to a channel's webhook: the title linked to the status
// page, a colour by verdict, the status and reason, the deploy or check facts, one field
// per failing check (reason, run, trace, screenshot's run page), the halt and the rollback
// webhooks. allowed_mentions is empty, so nothing in a check's text can ping @everyone or a
// role. Like Teams, each event is a message of its own, and the follow-ups go out only for
// an incident this notifier posted (or an action's result whose failure was lost). A 429
// is retried after Discord's retry_after.
type Discord struct {
	base
	url    string // with ?wait=true: Discord reports errors instead of dropping the message
	shown  string // the token masked
	client *http.Client
}

func newDiscord(cfg *configs.Notifier, opts Options) (*Discord, error) {
	if err := checkURL(cfg, "url", cfg.URL, "copy the channel's webhook URL (channel settings, Integrations, Webhooks)"); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.URL)
	q := u.Query()
	q.Set("wait", "true")
	u.RawQuery = q.Encode()
	return &Discord{base: newBase(cfg, opts, defaultDiscordTimeout), url: u.String(), shown: discordShown(cfg.URL),
		client: newHTTPClient(opts.Transport)}, nil
}

// discordShown is the webhook URL with its token (the last path segment) masked.
func discordShown(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unreadable URL)"
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	i := strings.LastIndex(path, "/")
	shown := configs.RedactURL(raw)
	if i < 0 || i == len(path)-1 {
		return shown
	}
	return strings.Replace(shown, path, path[:i+1]+configs.Masked, 1)
}

// Wants: as Teams.
func (d *Discord) Wants(event string) bool { return d.wantsIncident(event) }

// Deliver posts the event's message once.
func (d *Discord) Deliver(ctx context.Context, ev *Event, st State) error {
	if err := checkEvent(d.name, ev); err != nil {
		return err
	}
	if st == nil {
		st = State{}
	}
	if err := d.followUpSkipped(ev, st); err != nil {
		return err
	}
	if d.dryRun {
		return d.dryRunError(ev, st, http.MethodPost, d.shown, "", ev.Name+" for "+describeSubject(ev))
	}
	attempting(ev, st)
	ctx, cancel := d.attempt(ctx)
	defer cancel()
	full := jsonPost{url: d.url, shown: d.shown, body: discordMessage(ev, st), retryAfter: discordRetryAfter, refused: answerRefusal}
	err := d.postOrMinimal(ctx, d.client, ev, st, full, func(refused string) any { return discordPlain(ev, st, refused) },
		"Discord refused the webhook or it was deleted: copy the channel's webhook URL again")
	if err != nil {
		return err
	}
	told(ev, st)
	return nil
}

// discordRetryAfter reads a 429's retry_after (seconds, fractional) from its body.
func discordRetryAfter(answer []byte) time.Duration {
	var rl struct {
		RetryAfter float64 `json:"retry_after"`
	}
	if json.Unmarshal(answer, &rl) != nil || rl.RetryAfter <= 0 {
		return 0
	}
	return time.Duration(min(math.Ceil(rl.RetryAfter), 3600)) * time.Second
}

// discordColours are the embed colours of the tones.
var discordColours = map[string]int{"bad": 0xE01E5A, "warn": 0xECB22E, "good": 0x2EB67D, "info": 0x4A90D9}

type discordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline,omitempty"`
}

type discordEmbed struct {
	Title       string         `json:"title"`
	URL         string         `json:"url,omitempty"`
	Description string         `json:"description,omitempty"`
	Color       int            `json:"color"`
	Fields      []discordField `json:"fields,omitempty"`
	Timestamp   string         `json:"timestamp,omitempty"`
	Footer      *struct {
		Text string `json:"text"`
	} `json:"footer,omitempty"`
}

func (e *discordEmbed) size() int {
	n := len([]rune(e.Title)) + len([]rune(e.Description))
	for _, f := range e.Fields {
		n += len([]rune(f.Name)) + len([]rune(f.Value))
	}
	if e.Footer != nil {
		n += len([]rune(e.Footer.Text))
	}
	return n
}

// discordMessage is the message: a one-line content for notifications, and the embed. The
// reasons are cut shorter until the embed fits Discord's limit.
func discordMessage(ev *Event, st State) map[string]any {
	v := channelView(ev, st)
	var e discordEmbed
	for reason := maxDiscordReason; ; reason /= 2 {
		e = discordEmbedOf(ev, v, reason)
		if e.size() <= maxDiscordEmbed || reason < 50 {
			break
		}
	}
	for e.size() > maxDiscordEmbed && len(v.checks) > 0 {
		v.checks, v.more = v.checks[:len(v.checks)-1], v.more+1
		e = discordEmbedOf(ev, v, 50)
	}
	content := text.Ellipsis(plainEmoji(v.emoji)+" "+mdDiscord(v.title), 2000)
	return map[string]any{"username": "vigil", "content": content, "embeds": []discordEmbed{e},
		"allowed_mentions": map[string]any{"parse": []string{}}}
}

func discordEmbedOf(ev *Event, v view, reason int) discordEmbed {
	e := discordEmbed{Title: text.Ellipsis(noPing(plainEmoji(v.emoji)+" "+v.title), maxDiscordTitle), Color: discordColours[tone(ev)]}
	if validHTTPURL(v.statusURL) {
		e.URL = v.statusURL
	}
	var desc []string
	if v.status != v.title {
		desc = append(desc, "**"+mdDiscord(v.status)+"**")
	}
	if v.headline != "" {
		desc = append(desc, mdDiscord(v.headline))
	}
	if v.summary != "" {
		desc = append(desc, mdDiscord(v.summary))
	}
	if v.halt != "" {
		desc = append(desc, "🛑 **"+haltLabel+"** "+mdDiscord(v.halt))
	}
	for _, a := range v.actions {
		desc = append(desc, "**"+mdDiscord(a.notifier)+"**: "+mdDiscord(a.what))
	}
	var links []string
	if v.runbook != "" {
		links = append(links, mdLink(runbookLabel, v.runbook))
	}
	for _, l := range v.links {
		links = append(links, mdLink(l.Name, l.URL))
	}
	if v.statusURL != "" {
		links = append(links, mdLink(statusPageLabel, v.statusURL))
	}
	if len(links) > 0 {
		desc = append(desc, strings.Join(links, " · "))
	}
	e.Description = text.Ellipsis(strings.Join(desc, "\n"), maxDiscordDesc)
	for _, f := range v.facts {
		e.Fields = append(e.Fields, discordField{Name: f.name, Value: text.Ellipsis(mdDiscord(f.value), 200), Inline: true})
	}
	for _, fc := range v.checks {
		name := "✗ " + fc.Name
		if tags := checkTags(fc); len(tags) > 0 {
			name += " · " + strings.Join(tags, " · ")
		}
		var value []string
		if fc.Summary != "" {
			value = append(value, "```\n"+strings.ReplaceAll(text.Ellipsis(fc.Summary, reason), "```", "'''")+"\n```")
		}
		if fc.Baseline != "" {
			value = append(value, mdDiscord(fc.Baseline))
		}
		var links []string
		if fc.RunURL != "" {
			links = append(links, mdLink(runLabel, fc.RunURL))
		}
		if fc.RunbookURL != "" {
			links = append(links, mdLink(runbookLabel, fc.RunbookURL))
		}
		switch {
		case fc.TraceURL != "":
			links = append(links, mdLink("trace "+text.Ellipsis(fc.TraceID, 64), fc.TraceURL))
		case fc.TraceID != "":
			links = append(links, "trace `"+strings.ReplaceAll(text.Ellipsis(fc.TraceID, 64), "`", "'")+"`")
		}
		if len(fc.Screenshot) > 0 {
			links = append(links, mdLink(screenshotOnRunPage, fc.RunURL))
		}
		if len(links) > 0 {
			value = append(value, strings.Join(links, " · "))
		}
		if len(value) == 0 {
			value = append(value, "(no reason recorded)")
		}
		e.Fields = append(e.Fields, discordField{Name: text.Ellipsis(noPing(name), maxDiscordTitle),
			Value: text.Ellipsis(strings.Join(value, "\n"), maxDiscordField)})
	}
	if v.more > 0 {
		e.Fields = append(e.Fields, discordField{Name: "More", Value: moreChecks(v.more)})
	}
	if !ev.OccurredAt.IsZero() {
		e.Timestamp = ev.OccurredAt.UTC().Format(time.RFC3339)
	}
	footer := "vigil"
	if ev.Location != "" {
		footer += " · " + ev.Location
	}
	e.Footer = &struct {
		Text string `json:"text"`
	}{footer}
	return e
}

// mdDiscord escapes the characters Discord's Markdown gives a meaning to, so text from a
// check reads as written (mentions cannot ping anyway: allowed_mentions is empty).
func mdDiscord(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "~", `\~`, "`", "\\`", "|", `\|`, ">", `\>`,
		"#", `\#`, "[", `\[`, "]", `\]`, "<", `\<`, "@", "@\u200b").Replace(s)
}

// noPing breaks @everyone, @here and <@id> in text Discord shows without Markdown (titles,
// field names), as a second guard beside the empty allowed_mentions.
func noPing(s string) string { return strings.ReplaceAll(s, "@", "@\u200b") }

// mdLink is a masked link; a URL that is not http(s) is shown as text.
func mdLink(label, u string) string {
	if !validHTTPURL(u) {
		return mdDiscord(label)
	}
	u = strings.NewReplacer("(", "%28", ")", "%29", " ", "%20", "<", "%3C", ">", "%3E").Replace(u)
	return "[" + mdDiscord(label) + "](" + u + ")"
}
