package configs

// Who a failure is for and what to read first: `owners` and `runbook_url` on checks and
// services. Slack messages mention the owners and link the runbook; webhooks and the
// status page carry both. Both are checked as they are decoded, so `vigil validate` names
// the key and the line of a bad one.

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Owners are Slack mentions: member IDs (U024BE7LH, W012A3CDE), user group IDs
// (S0614TZR7), or @here and @channel. Slack only notifies through IDs: a display name
// such as @alice would print as text and reach no one.
type Owners []string

// MaxOwners caps the mentions of one check or service.
const MaxOwners = 10

var slackMention = regexp.MustCompile(`^(?:[UW][A-Z0-9]{2,20}|S[A-Z0-9]{2,20}|@here|@channel)$`)

const ownersFix = "use Slack member IDs (profile → ⋮ → Copy member ID, e.g. U024BE7LH), user group IDs (e.g. S0614TZR7), @here or @channel"

func (o *Owners) decodeRaw(d *decoder, path string, raw any) {
	var list []any
	switch v := raw.(type) {
	case []any:
		list = v
	case string:
		list = []any{v}
	default:
		d.errorf(path, "write a list, e.g. [U024BE7LH, S0614TZR7]", "expected a list of Slack mentions, got %s", describe(raw))
		return
	}
	if len(list) > MaxOwners {
		d.errorf(path, "mention a user group instead of many people", "%d owners; at most %d", len(list), MaxOwners)
		return
	}
	out := make(Owners, 0, len(list))
	for i, item := range list {
		p := indexPath(path, i)
		s, ok := d.scalarString(p, item)
		if !ok {
			continue
		}
		s = strings.TrimSpace(s)
		switch {
		case !slackMention.MatchString(s):
			d.errorf(p, ownersFix, "%q is not a Slack member, user group, @here or @channel", s)
		case slices.Contains(out, s):
			d.errorf(p, "list each owner once", "%q is listed twice", s)
		default:
			out = append(out, s)
		}
	}
	*o = out
}

// Mention is the owner as Slack mrkdwn: <@U024BE7LH>, <!subteam^S0614TZR7>, <!here>.
func Mention(owner string) string {
	switch {
	case owner == "@here" || owner == "@channel":
		return "<!" + owner[1:] + ">"
	case strings.HasPrefix(owner, "S"):
		return "<!subteam^" + owner + ">"
	}
	return "<@" + owner + ">"
}

// RunbookURL is where to read what to do when a check or a service fails: an http or
// https URL.
type RunbookURL string

func (u *RunbookURL) decodeRaw(d *decoder, path string, raw any) {
	s, ok := d.scalarString(path, raw)
	if !ok {
		return
	}
	s = strings.TrimSpace(s)
	if s == "" {
		*u = ""
		return
	}
	p, err := url.Parse(s)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || len(s) > 2000 {
		d.errorf(path, "write the runbook's http or https URL, e.g. https://wiki.example.com/runbooks/checkout",
			"%q is not an http(s) URL", clipText(s, 100))
		return
	}
	*u = RunbookURL(s)
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s…", s[:n])
}
