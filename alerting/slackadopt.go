package alerting

// A root message whose chat.postMessage went out whole and got no answer (the connection
// died after Slack posted it, or the attempt timed out while Slack was posting) may be in
// the channel already, and chat.postMessage has no idempotency key: posting it again would
// open a second thread and split the incident. So every root carries message metadata
// naming its event, and before a root is sent again after such an attempt, the channel's
// recent history (conversations.history, scope channels:history or groups:history) is read
// for it; a root found there is adopted as the thread. When the history cannot be read (the
// token lacks the scope, the channel is known only by name, Slack did not answer), the root
// is posted again, as it was before this lookup existed, and the log and the State say why.

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"time"

	"github.com/slack-go/slack"
)

// slackEventType is the metadata event_type on every root message vigil posts.
const slackEventType = "vigil_notification"

// Slack State keys after an event's idempotency key: the unix second of the first root
// attempt that was sent whole and not answered, and what the lookup before sending it
// again found.
const (
	slackRootSent   = "/root_unanswered"
	slackRootLookup = "/root_lookup"
)

// The history read for a lost root: from rootLookBack before its first unanswered attempt
// (vigil's clock against Slack's), historyPage messages a page, at most historyPages pages.
const (
	rootLookBack = 10 * time.Minute
	historyPage  = 200
	historyPages = 5
)

// channelIDPattern is a Slack conversation id (public C…, private G…); channel names are
// lower case.
var channelIDPattern = regexp.MustCompile(`^[CG][A-Z0-9]{8,}$`)

// rootMetadata is the metadata a root message is posted with: what a retry looks for.
func (s *Slack) rootMetadata(ev *Event, key string) slack.MsgOption {
	return slack.MsgOptionMetadata(slack.SlackMetadata{EventType: slackEventType, EventPayload: map[string]any{
		"idempotency_key": key, "notifier": s.name, "incident": incidentOf(ev)}})
}

// rootUnanswered notes in st that the root attempt that failed with err may have been
// posted: it went out whole and no answer refused it (Slack's ok:false, a 4xx or a 429 say
// it was not posted).
func rootUnanswered(st State, key string, rec *recorder, err error, at time.Time) {
	var se slack.SlackErrorResponse
	if !rec.wrote.Load() || errors.As(err, &se) || (rec.status >= 400 && rec.status < 500) {
		return
	}
	if st[key+slackRootSent] == "" {
		st[key+slackRootSent] = strconv.FormatInt(at.Unix(), 10)
	}
}

// learn remembers the channel id Slack answered a root post with, for a channel
// configured by name.
func (s *Slack) learn(id string) {
	if id == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channelID = id
}

// historyChannel is the id conversations.history takes (it takes no name): the configured
// channel when it is an id, else the id Slack answered to a root post since the notifier
// was built; "" when neither.
func (s *Slack) historyChannel() string {
	if channelIDPattern.MatchString(s.channel) {
		return s.channel
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channelID
}

// findRoot looks for the event's root message in the channel's recent history by its
// metadata and returns its channel id and ts; "" when it is not there or the history could
// not be read (st[key+slackRootLookup] says which).
func (s *Slack) findRoot(ctx context.Context, api *slack.Client, rec *recorder, ev *Event, key string, st State, now time.Time) (string, string) {
	note := func(what string, args ...any) {
		st[key+slackRootLookup] = what
		s.log.WarnContext(ctx, "slack: an earlier attempt of this root message went out and got no answer; "+what,
			append([]any{"incident", ev.Incident, "idempotency_key", key}, args...)...)
	}
	ch := s.historyChannel()
	if ch == "" {
		note("its channel is configured by name and its id is not known yet (set channel to the id, C…, to let a retry look for it): posted again")
		return "", ""
	}
	sent, _ := strconv.ParseInt(st[key+slackRootSent], 10, 64)
	params := &slack.GetConversationHistoryParameters{ChannelID: ch, Limit: historyPage, IncludeAllMetadata: true,
		Oldest: strconv.FormatInt(sent-int64(rootLookBack/time.Second), 10)}
	for range historyPages {
		h, err := api.GetConversationHistoryContext(ctx, params)
		var se slack.SlackErrorResponse
		switch {
		case errors.As(err, &se) && se.Err == "missing_scope":
			note("the token lacks the scope to read the channel's history (channels:history, or groups:history for a private channel), "+
				"so it could not be looked for: posted again, which may open a second thread", "error", se.Err)
			return "", ""
		case err != nil:
			cerr := s.classify(ctx, err, rec, "conversations.history", now)
			note("the channel's history could not be read, so it could not be looked for: posted again, which may open a second thread",
				"error", cerr)
			return "", ""
		}
		for _, m := range h.Messages {
			p := m.Metadata.EventPayload
			if m.Metadata.EventType == slackEventType && p["idempotency_key"] == key && p["notifier"] == s.name &&
				(m.ThreadTimestamp == "" || m.ThreadTimestamp == m.Timestamp) {
				st[key+slackRootLookup] = "found in the channel, ts " + m.Timestamp + ": adopted, not posted again"
				s.log.InfoContext(ctx, "slack: the root message an unanswered attempt posted is in the channel; adopting it, not posting again",
					"incident", ev.Incident, "idempotency_key", key, "ts", m.Timestamp)
				return ch, m.Timestamp
			}
		}
		if !h.HasMore || h.ResponseMetaData.NextCursor == "" {
			break
		}
		params.Cursor = h.ResponseMetaData.NextCursor
	}
	st[key+slackRootLookup] = "not in the channel's history: posted"
	s.log.InfoContext(ctx, "slack: the root message an unanswered attempt sent is not in the channel; posting it",
		"incident", ev.Incident, "idempotency_key", key)
	return "", ""
}
