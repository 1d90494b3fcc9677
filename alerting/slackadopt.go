package alerting

// A message whose chat.postMessage went out whole and got no answer (the connection died
// after Slack posted it, the attempt timed out while Slack was posting), or whose attempt
// was cut off (the agent was killed mid-send: Event.Interrupted), may be in Slack already,
// and chat.postMessage has no idempotency key: posting it again would open a second thread
// and split the incident, or say the same thing twice in it. So every message vigil posts
// carries message metadata naming its event, and before such a message is sent again, it
// is looked for: a root in the channel's recent history (conversations.history), a reply in
// its thread (conversations.replies), both with channels:history or groups:history. Found,
// it is adopted. When it cannot be looked for (the token lacks the scope, the channel is
// known only by name, Slack did not answer), it is posted again, as it was before this
// lookup existed, and the log and the State say why.

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// slackEventType is the metadata event_type on every message vigil posts.
const slackEventType = "vigil_notification"

// Slack State keys after an event's idempotency key: the unix second of the first attempt
// at its root, or at its reply, that was sent whole and not answered, and what the lookup
// before sending it again found.
const (
	slackRootSent    = "/root_unanswered"
	slackRootLookup  = "/root_lookup"
	slackReplySent   = "/reply_unanswered"
	slackReplyLookup = "/reply_lookup"
)

// The read for a lost message: from lookBack before its first unanswered attempt (or
// before its event, when the attempt was cut off) by vigil's clock against Slack's,
// historyPage messages a page, at most historyPages pages.
const (
	lookBack     = 10 * time.Minute
	historyPage  = 200
	historyPages = 5
)

// channelIDPattern is a Slack conversation id (public C…, private G…); channel names are
// lower case.
var channelIDPattern = regexp.MustCompile(`^[CG][A-Z0-9]{8,}$`)

// metadata is the metadata a message is posted with: what a retry looks for.
func (s *Slack) metadata(ev *Event, key string) slack.MsgOption {
	return slack.MsgOptionMetadata(slack.SlackMetadata{EventType: slackEventType, EventPayload: map[string]any{
		"idempotency_key": key, "notifier": s.name, "incident": incidentOf(ev)}})
}

// unanswered notes in st at mark (key+slackRootSent, key+slackReplySent) that the attempt
// that failed with err may have been posted: it went out whole and no answer refused it
// (Slack's ok:false, a 4xx or a 429 say it was not posted).
func unanswered(st State, mark string, rec *recorder, err error, at time.Time) {
	var se slack.SlackErrorResponse
	if !rec.wrote.Load() || errors.As(err, &se) || (rec.status >= 400 && rec.status < 500) {
		return
	}
	if st[mark] == "" {
		st[mark] = strconv.FormatInt(at.Unix(), 10)
	}
}

// mayBePosted says whether the message of ev whose unanswered attempt st notes at mark may
// be in Slack already.
func mayBePosted(ev *Event, st State, mark string) bool { return st[mark] != "" || ev.Interrupted }

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

// page is one page of a read: its messages and the next page's cursor ("" at the end).
type page func(ctx context.Context, cursor, oldest string) ([]slack.Message, string, error)

// lost is a message (or a file shared in one) looked for: what it is (for the log), its
// State keys, where it is read from, and match: its ts (or file id, as found names it) in
// m, "" when m is not it.
type lost struct {
	what, op, sent, lookup, found string
	read                          page
	match                         func(m slack.Message) string
}

// posted matches a message of the event key that is, by its metadata, at its ts.
func (s *Slack) posted(key string, is func(m slack.Message) bool) func(m slack.Message) string {
	return func(m slack.Message) string {
		p := m.Metadata.EventPayload
		if m.Metadata.EventType == slackEventType && p["idempotency_key"] == key && p["notifier"] == s.name && is(m) {
			return m.Timestamp
		}
		return ""
	}
}

// findRoot looks for the event's root message in the channel's recent history by its
// metadata and returns its channel id and ts; "" when it is not there or the history could
// not be read (st[key+slackRootLookup] says which).
func (s *Slack) findRoot(ctx context.Context, api *slack.Client, rec *recorder, ev *Event, key string, st State, now time.Time) (string, string) {
	ch := s.historyChannel()
	l := lost{what: "root message", op: "conversations.history", sent: key + slackRootSent, lookup: key + slackRootLookup,
		read: func(ctx context.Context, cursor, oldest string) ([]slack.Message, string, error) {
			h, err := api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: ch, Limit: historyPage,
				IncludeAllMetadata: true, Oldest: oldest, Cursor: cursor})
			switch {
			case err != nil:
				return nil, "", err
			case !h.HasMore:
				return h.Messages, "", nil
			}
			return h.Messages, h.ResponseMetaData.NextCursor, nil
		},
		found: "ts", match: s.posted(key, func(m slack.Message) bool { return m.ThreadTimestamp == "" || m.ThreadTimestamp == m.Timestamp })}
	if ch == "" {
		if ch = s.resolveChannel(ctx, api, rec, ev, key, st, now, l); ch == "" {
			return "", ""
		}
	}
	if ts := s.find(ctx, rec, ev, key, st, now, l); ts != "" {
		return ch, ts
	}
	return "", ""
}

// findReply looks for the event's reply in the incident's thread by its metadata and
// returns its ts; "" when it is not there or the thread could not be read
// (st[key+slackReplyLookup] says which).
func (s *Slack) findReply(ctx context.Context, api *slack.Client, rec *recorder, ev *Event, key string, st State, now time.Time) string {
	thread := st[slackTS]
	return s.find(ctx, rec, ev, key, st, now, lost{what: "thread reply", op: "conversations.replies", sent: key + slackReplySent, lookup: key + slackReplyLookup,
		read: func(ctx context.Context, cursor, oldest string) ([]slack.Message, string, error) {
			ms, more, next, err := api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{ChannelID: st[slackChannel],
				Timestamp: thread, Limit: historyPage, IncludeAllMetadata: true, Oldest: oldest, Cursor: cursor})
			if !more {
				next = ""
			}
			return ms, next, err
		},
		found: "ts", match: s.posted(key, func(m slack.Message) bool { return m.Timestamp != thread && m.ThreadTimestamp == thread })})
}

// find reads l's pages for a message l matches and returns what the match found (a ts, a
// file id); "" when none does or the read failed (st[l.lookup] says which).
func (s *Slack) find(ctx context.Context, rec *recorder, ev *Event, key string, st State, now time.Time, l lost) string {
	since := ev.OccurredAt.Unix()
	if sent, err := strconv.ParseInt(st[l.sent], 10, 64); err == nil {
		since = sent
	}
	oldest := ""
	if since > 0 {
		oldest = strconv.FormatInt(since-int64(lookBack/time.Second), 10)
	}
	cursor := ""
	for range historyPages {
		ms, next, err := l.read(ctx, cursor, oldest)
		var se slack.SlackErrorResponse
		switch {
		case errors.As(err, &se) && se.Err == "missing_scope":
			s.noteLookup(ctx, ev, key, st, l, "the token lacks the scope to read the channel's messages (channels:history, or "+
				"groups:history for a private channel), so it could not be looked for: posted again, which may post it twice", "error", se.Err)
			return ""
		case err != nil:
			cerr := s.classify(ctx, err, rec, l.op, now)
			s.noteLookup(ctx, ev, key, st, l, "the channel's messages could not be read, so it could not be looked for: posted again, "+
				"which may post it twice", "error", cerr)
			return ""
		}
		for _, m := range ms {
			if id := l.match(m); id != "" {
				st[l.lookup] = "found, " + l.found + " " + id + ": adopted, not posted again"
				s.log.InfoContext(ctx, "slack: the "+l.what+" an earlier attempt posted is in Slack; adopting it, not posting again",
					"incident", ev.Incident, "idempotency_key", key, l.found, id)
				return id
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	st[l.lookup] = "not found: posted"
	s.log.InfoContext(ctx, "slack: the "+l.what+" an earlier attempt sent is not in Slack; posting it",
		"incident", ev.Incident, "idempotency_key", key)
	return ""
}

// noteLookup records in st and the log why the message l could not be looked for.
func (s *Slack) noteLookup(ctx context.Context, ev *Event, key string, st State, l lost, what string, args ...any) {
	st[l.lookup] = what
	why := "went out and got no answer"
	if st[l.sent] == "" {
		why = "was cut off (the agent stopped or lost its lease while sending it)"
	}
	s.log.WarnContext(ctx, "slack: an earlier attempt of this "+l.what+" "+why+"; "+what,
		append([]any{"incident", ev.Incident, "idempotency_key", key}, args...)...)
}

// channelPages bounds the read of the bot's channels for a channel's id: channelPages
// pages of historyPage.
const channelPages = 10

// resolveChannel finds the id of the channel configured by name among the bot's channels
// (users.conversations, scopes channels:read and groups:read), for a root looked for after
// a restart, before any post told the id; "" when it could not (st[l.lookup] says why).
func (s *Slack) resolveChannel(ctx context.Context, api *slack.Client, rec *recorder, ev *Event, key string, st State, now time.Time, l lost) string {
	name := strings.TrimPrefix(s.channel, "#")
	params := &slack.GetConversationsForUserParameters{Types: []string{"public_channel", "private_channel"}, Limit: historyPage,
		ExcludeArchived: true}
	for range channelPages {
		chs, next, err := api.GetConversationsForUserContext(ctx, params)
		var se slack.SlackErrorResponse
		switch {
		case errors.As(err, &se) && se.Err == "missing_scope":
			s.noteLookup(ctx, ev, key, st, l, "its channel is configured by name and the token lacks the scopes to find its id "+
				"(channels:read and groups:read; or set channel to the id, C…): posted again, which may post it twice", "error", se.Err)
			return ""
		case err != nil:
			s.noteLookup(ctx, ev, key, st, l, "its channel is configured by name and the bot's channels could not be read to find its id: "+
				"posted again, which may post it twice", "error", s.classify(ctx, err, rec, "users.conversations", now))
			return ""
		}
		for _, c := range chs {
			if c.Name == name {
				s.learn(c.ID)
				return c.ID
			}
		}
		if next == "" {
			break
		}
		params.Cursor = next
	}
	s.noteLookup(ctx, ev, key, st, l, "its channel is configured by name and is not among the bot's channels (set channel to the id, C…): "+
		"posted again, which may post it twice")
	return ""
}
