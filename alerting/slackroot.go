package alerting

// The root message of an incident's thread: built from what the notifier's State keeps
// of it (title, status, timeline, evidence, what the action webhooks did), so each event
// of the incident updates it in place.

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/vigil-monitor/vigil/internal/text"
)

// setRoot makes the event the root's title and evidence.
func setRoot(st State, r rendered) error {
	body, err := json.Marshal(slack.Blocks{BlockSet: r.body})
	if err != nil {
		return err
	}
	st[slackTitle], st[slackBody] = r.title, string(body)
	st[slackLinks] = strings.Join(r.links, "\n")
	st[slackLine], st[slackURL] = r.fallback, r.statusURL
	delete(st, slackActions)
	for _, a := range r.actions {
		setAction(st, a.notifier, a.what)
	}
	return nil
}

// rootBlocks is the root message for the incident's current state.
func rootBlocks(st State) []slack.Block {
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, text.Ellipsis(st[slackEmoji]+" "+st[slackTitle], maxHeader), true, false)),
		section("*Status:* " + esc(st[slackStatus])),
	}
	if h := st[slackHistory]; strings.Contains(h, "\n") {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn(text.Ellipsis(h, maxSectionText))))
	}
	var body slack.Blocks
	if st[slackBody] != "" && json.Unmarshal([]byte(st[slackBody]), &body) == nil {
		blocks = append(blocks, body.BlockSet...)
	}
	var actions []actionLine
	var links []string
	for _, line := range splitLines(st[slackActions]) {
		notifier, what, _ := strings.Cut(line, "\t")
		actions = append(actions, actionLine{notifier, what})
	}
	links = splitLines(st[slackLinks])
	if c := contextBlock(actions, links); c != nil {
		blocks = append(blocks, c)
	}
	return blocks
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// setAction records on the root what an action webhook did (or will do), replacing the
// notifier's earlier line.
func setAction(st State, notifier, what string) {
	lines := splitLines(st[slackActions])
	line := notifier + "\t" + strings.ReplaceAll(what, "\n", " ")
	for i, l := range lines {
		if n, _, _ := strings.Cut(l, "\t"); n == notifier {
			lines[i] = line
			st[slackActions] = strings.Join(lines, "\n")
			return
		}
	}
	st[slackActions] = strings.Join(append(lines, line), "\n")
}

// rootFallback is the root's notification text: its title and status, the status's first
// word left out when the title ends with it ("… cancelled: Argo Rollouts aborted web", not
// "… cancelled: Cancelled: Argo Rollouts aborted web").
func rootFallback(st State) string {
	title, status := st[slackTitle], st[slackStatus]
	line := title + ": " + status
	if i := strings.LastIndexByte(title, ' '); i >= 0 {
		last := title[i+1:]
		if rest, ok := cutPrefixFold(status, last); ok && (rest == "" || rest[0] == ':' || rest[0] == ' ') {
			line = title + rest
		}
	}
	return text.Ellipsis(plainEmoji(st[slackEmoji])+" "+line, maxFallbackChars)
}

// cutPrefixFold is strings.CutPrefix, ignoring case.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// historyLine is one event on the root's timeline (already mrkdwn-escaped).
func historyLine(ev *Event, r rendered, now time.Time) string {
	at := ev.OccurredAt
	if at.IsZero() {
		at = now
	}
	return at.UTC().Format("15:04:05Z") + " " + r.emoji + " " + esc(text.Ellipsis(r.status, 300))
}

func appendHistory(h, line string) string {
	lines := append(strings.Split(h, "\n"), line)
	if h == "" {
		lines = lines[1:]
	}
	if len(lines) > maxHistoryLines {
		lines = append(lines[:1], lines[len(lines)-maxHistoryLines+1:]...)
	}
	return strings.Join(lines, "\n")
}
