package alerting

// When a chat service refuses a message for its content — Slack's invalid_blocks or
// msg_too_long, a Discord or Teams 400 for an embed or a card it will not take — the event
// is sent again, once, in a minimal form the service always takes: its notification line,
// the status page, and a note that the full message was refused. A page is not lost to its
// formatting; a refusal that is not about the content (a wrong token, a deleted webhook, a
// channel the bot is not in) stays permanent.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/slack-go/slack"
	"github.com/vigil-monitor/vigil/internal/text"
)

// slackContentErrors are the Web API errors that refuse a message for what it holds, not
// for who sends it or where.
var slackContentErrors = []string{"invalid_blocks", "invalid_blocks_format", "msg_too_long", "msg_blocks_too_long",
	"too_many_attachments", "invalid_attachments"}

// maxPlain bounds a minimal message; each part of it is already bounded.
const maxPlain = 4000

// slackRefusal is the error code and what Slack found wrong (its response_metadata) when
// err refuses a message for its content; "" otherwise.
func slackRefusal(err error) (code, detail string) {
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || !slices.Contains(slackContentErrors, se.Err) {
		return "", ""
	}
	return se.Err, strings.Join(se.ResponseMetadata.Messages, "; ")
}

// richOrPlain sends a message in blocks (send(true)), unless st[flag] says Slack refused
// its blocks before; when Slack refuses them for their content, it records the refusal in
// st[flag], logs it, and sends the text alone (send(false)): once per attempt, and straight
// away on the next.
func (s *Slack) richOrPlain(ctx context.Context, ev *Event, op string, st State, flag string, send func(rich bool) error) error {
	if st[flag] == "" {
		err := send(true)
		code, detail := slackRefusal(err)
		if code == "" {
			return err
		}
		st[flag] = code
		s.log.WarnContext(ctx, "slack: Slack refused the message's blocks; sending it as plain text", "op", op, "event", ev.Name,
			"incident", ev.Incident, "error", code, "detail", quoteBody([]byte(detail)))
	}
	return send(false)
}

// asText names a Slack step that sent text alone because Slack refused the blocks
// (refused, its error code), so that a failure of it says both.
func asText(op, refused string) string {
	if refused == "" {
		return op
	}
	return op + " (as text, Slack having refused its blocks: " + refused + ")"
}

// slackPlainText is a message as text alone: the lines (escaped here), the owners to
// mention, the status page, and why the message is plain.
func slackPlainText(lines []string, mentions, statusURL, code string) string {
	var out []string
	for _, l := range lines {
		if l != "" {
			out = append(out, esc(l))
		}
	}
	if mentions != "" {
		out = append(out, "*Owners:* "+mentions)
	}
	if statusURL != "" {
		out = append(out, statusPageLabel+": "+esc(statusURL))
	}
	out = append(out, refusedNote("Slack", code))
	return text.Ellipsis(strings.Join(out, "\n"), maxPlain)
}

// plainRoot is the root message as text alone: the event that made it, its status now.
func plainRoot(st State, mentions string) string {
	return slackPlainText([]string{st[slackLine], "Status: " + st[slackStatus]}, mentions, st[slackURL], st[slackPlain])
}

// refusedNote says, in the minimal form, that the full message was refused.
func refusedNote(service, code string) string {
	return fmt.Sprintf("%s refused the full message (%s), so this is its plain form; the status page has the evidence.",
		service, text.Ellipsis(code, 120))
}

// postOrMinimal posts the event's full message (full), and when the receiver refuses it for
// its content (full.refused), logs that, records it in st and posts minimal(what it said)
// instead: once per attempt, and straight away on the next. A refusal of the minimal form
// is the attempt's error, saying both.
func (b *base) postOrMinimal(ctx context.Context, client *http.Client, ev *Event, st State, full jsonPost,
	minimal func(refused string) any, hint string) error {
	flag := keyOf(ev) + "/plain"
	if st[flag] == "" {
		err := b.post(ctx, client, full, hint)
		code := refusedContent(err)
		if code == "" {
			return err
		}
		st[flag] = code
		b.log.WarnContext(ctx, b.typ+": the full message was refused; sending its plain form", "event", ev.Name,
			"incident", ev.Incident, "error", err)
	}
	p := full
	p.body, p.refused = minimal(st[flag]), nil
	err := b.post(ctx, client, p, hint)
	var e *Error
	if errors.As(err, &e) {
		e.msg = "the plain form, sent because the full message was refused (" + st[flag] + "): " + e.msg
	}
	return err
}

// answerRefusal is a 400 or 413 in short ("400 Bad Request: «…»"): a Discord or Teams
// webhook answers these for the body alone (a wrong or deleted URL is a 401, 403 or 404).
func answerRefusal(status int, answer []byte) string {
	if status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge {
		return ""
	}
	s := fmt.Sprintf("%d %s", status, http.StatusText(status))
	var a struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(answer, &a) == nil && a.Message != "" {
		if a.Code != 0 {
			return fmt.Sprintf("%s: %d %s", s, a.Code, text.Ellipsis(a.Message, 80)) // Discord's 50035 Invalid Form Body
		}
		return s + ": " + text.Ellipsis(a.Message, 80)
	}
	return s
}

// discordPlain is a Discord message as content alone: no embed.
func discordPlain(ev *Event, st State, refused string) map[string]any {
	v := channelView(ev, st)
	lines := []string{mdDiscord(text.Ellipsis(notification(ev, v), 1200))}
	if validHTTPURL(v.statusURL) {
		// <…> keeps Discord from unfurling it into an embed.
		lines = append(lines, statusPageLabel+": <"+strings.ReplaceAll(v.statusURL, ">", "%3E")+">")
	}
	lines = append(lines, "*"+mdDiscord(refusedNote("Discord", refused))+"*")
	return map[string]any{"username": "vigil", "content": text.Ellipsis(strings.Join(lines, "\n"), 2000),
		"allowed_mentions": map[string]any{"parse": []string{}}}
}

// teamsPlain is a Teams message as the simplest card: three lines of plain text (TextRuns,
// as on the full card), no buttons.
func teamsPlain(ev *Event, st State, refused string) map[string]any {
	v := channelView(ev, st)
	body := []any{richText(acRun(notification(ev, v), "weight", "Bolder"))}
	if validHTTPURL(v.statusURL) {
		body = append(body, richText(acRun(statusPageLabel+": "+v.statusURL)))
	}
	body = append(body, richText(acRun(refusedNote("Teams", refused), "isSubtle", true)))
	card := map[string]any{"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
		"version": "1.2", "body": body}
	return map[string]any{"type": "message", "attachments": []any{map[string]any{
		"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": nil, "content": card}}}
}
