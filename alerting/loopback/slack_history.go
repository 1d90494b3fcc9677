package loopback

// conversations.history and conversations.replies as Slack answers them: a channel's
// messages (not thread replies) newest first, or a thread's (its parent, then its replies)
// oldest first, a share of uploads among them with its files (id, name, title); between oldest and latest, a page of limit at a time with a cursor, each
// message's metadata only when include_all_metadata is set, and missing_scope for a token
// without channels:history / groups:history (Slack.NoHistoryScope).

import (
	"encoding/json"
	"mime"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Slack's limit argument: 100 by default, at most 999.
const (
	historyDefaultLimit = 100
	historyMaxLimit     = 999
)

// metadataOf keeps a chat.postMessage metadata argument that is a JSON object with an
// event_type, as Slack stores it; nil otherwise.
func metadataOf(raw string) json.RawMessage {
	var m struct {
		EventType    string         `json:"event_type"`
		EventPayload map[string]any `json:"event_payload"`
	}
	if raw == "" || json.Unmarshal([]byte(raw), &m) != nil || m.EventType == "" {
		return nil
	}
	return json.RawMessage(raw)
}

func (s *Slack) history(f url.Values) (map[string]any, string) {
	return s.read(f, false)
}

func (s *Slack) replies(f url.Values) (map[string]any, string) {
	return s.read(f, true)
}

// read answers conversations.history, or conversations.replies when thread is set.
func (s *Slack) read(f url.Values, thread bool) (map[string]any, string) {
	if s.NoHistoryScope {
		return map[string]any{"needed": "channels:history",
			"provided": "chat:write,files:write"}, "missing_scope"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := f.Get("channel")
	if !s.knownID(ch) {
		return nil, "channel_not_found" // both take a channel id, never a name
	}
	parent := f.Get("ts")
	if thread && s.find(ch, parent) == nil {
		return nil, "thread_not_found"
	}
	limit := historyDefaultLimit
	if v := f.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, "invalid_limit"
		}
		if n > 0 {
			limit = min(n, historyMaxLimit)
		}
	}
	oldest, _ := strconv.ParseFloat(f.Get("oldest"), 64)
	latest, err := strconv.ParseFloat(f.Get("latest"), 64)
	if err != nil {
		latest = 1e18
	}
	start := 0
	if c := f.Get("cursor"); c != "" {
		if start, err = strconv.Atoi(c); err != nil || start < 0 {
			return nil, "invalid_cursor"
		}
	}
	withMeta := f.Get("include_all_metadata") == "1" || f.Get("include_all_metadata") == "true"
	var all []*SlackMessage
	for i := range s.messages {
		m := s.messages[i]
		if !thread { // newest first
			m = s.messages[len(s.messages)-1-i]
		}
		ts, _ := strconv.ParseFloat(m.TS, 64)
		in := m.ThreadTS == ""
		if thread {
			in = m.TS == parent || m.ThreadTS == parent
		}
		if m.Channel == ch && in && ts > oldest && ts < latest {
			all = append(all, m)
		}
	}
	page := []map[string]any{}
	end := min(start+limit, len(all))
	for _, m := range all[min(start, len(all)):end] {
		msg := map[string]any{"type": "message", "user": "U0VIGIL", "bot_id": "B0VIGIL", "text": m.Text, "ts": m.TS}
		if len(m.Blocks) > 0 {
			msg["blocks"] = m.Blocks
		}
		switch {
		case m.ThreadTS != "":
			msg["thread_ts"], msg["parent_user_id"] = m.ThreadTS, "U0VIGIL"
		case s.hasReplies(m):
			msg["thread_ts"] = m.TS
		}
		if withMeta && m.Metadata != nil {
			msg["metadata"] = m.Metadata
		}
		if m.Files != nil { // a share of uploads, as Slack lists it
			files := []map[string]any{}
			for _, fl := range m.Files {
				ext := path.Ext(fl.Filename)
				files = append(files, map[string]any{"id": fl.ID, "name": fl.Filename, "title": fl.Title,
					"mimetype": mime.TypeByExtension(ext), "filetype": strings.TrimPrefix(ext, "."), "user": "U0VIGIL", "mode": "hosted"})
			}
			msg["files"], msg["upload"], msg["display_as_bot"] = files, true, false
		}
		page = append(page, msg)
	}
	answer := map[string]any{"messages": page, "has_more": end < len(all)}
	if !thread {
		answer["pin_count"] = 0
	}
	if end < len(all) {
		answer["response_metadata"] = map[string]any{"next_cursor": strconv.Itoa(end)}
	}
	return answer, ""
}

// hasReplies says whether a root message has a thread.
func (s *Slack) hasReplies(root *SlackMessage) bool {
	for _, m := range s.messages {
		if m.Channel == root.Channel && m.ThreadTS == root.TS {
			return true
		}
	}
	return false
}

// channels answers users.conversations: the channels the bot is in (here, every channel
// the server knows), by id, a page of limit at a time with a cursor, and missing_scope for
// a token without channels:read (Slack.NoReadScope).
func (s *Slack) userChannels(f url.Values) (map[string]any, string) {
	if s.NoReadScope {
		return map[string]any{"needed": "channels:read", "provided": "chat:write,files:write"}, "missing_scope"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.channels))
	for name := range s.channels {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return s.channels[names[i]] < s.channels[names[j]] })
	limit := historyDefaultLimit
	if n, err := strconv.Atoi(f.Get("limit")); err == nil && n > 0 {
		limit = min(n, historyMaxLimit)
	}
	start, _ := strconv.Atoi(f.Get("cursor"))
	start = min(max(start, 0), len(names))
	end := min(start+limit, len(names))
	page := []map[string]any{}
	for _, name := range names[start:end] {
		page = append(page, map[string]any{"id": s.channels[name], "name": name, "is_channel": true, "is_private": false, "is_archived": false})
	}
	next := ""
	if end < len(names) {
		next = strconv.Itoa(end)
	}
	return map[string]any{"channels": page, "response_metadata": map[string]any{"next_cursor": next}}, ""
}
