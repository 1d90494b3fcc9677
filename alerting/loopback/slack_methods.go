package loopback

// The Slack Web API methods the loopback Slack answers: chat.postMessage, chat.update and
// the three steps of a file upload (conversations.history: slack_history.go).

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// channelID maps a channel name or id to an id, creating one for a new name.
func (s *Slack) channelID(ch string) string {
	if ch == "" {
		return ""
	}
	if strings.HasPrefix(ch, "C") && !strings.HasPrefix(ch, "#") {
		for _, id := range s.channels {
			if id == ch {
				return id
			}
		}
	}
	name := strings.TrimPrefix(ch, "#")
	if id, ok := s.channels[name]; ok {
		return id
	}
	id := fmt.Sprintf("C%08d", len(s.channels)+1)
	s.channels[name] = id
	return id
}

func (s *Slack) knownID(id string) bool {
	for _, v := range s.channels {
		if v == id {
			return true
		}
	}
	return false
}

func (s *Slack) find(channel, ts string) *SlackMessage {
	for _, m := range s.messages {
		if m.Channel == channel && m.TS == ts {
			return m
		}
	}
	return nil
}

// Slack's limits on a message, as chat.postMessage and chat.update enforce them (in
// characters): at most 50 blocks; a header's text at most 150; a section's text at most
// 3000 and at most 10 fields of at most 2000; a context's elements at most 10, each text
// at most 3000; no text empty; the text argument at most 40,000.
const (
	maxBlocks        = 50
	maxHeaderText    = 150
	maxSectionText   = 3000
	maxSectionFields = 10
	maxFieldText     = 2000
	maxContextItems  = 10
	maxMessageText   = 40000
)

// checkBlocks checks a blocks argument as Slack does: "" when it passes (or there is
// none), else the error code and, as Slack's response_metadata says it, what is wrong where.
func checkBlocks(raw string) (code, detail string) {
	if raw == "" {
		return "", ""
	}
	var blocks []map[string]any
	if json.Unmarshal([]byte(raw), &blocks) != nil {
		return "invalid_blocks_format", "[ERROR] blocks must be a JSON array of objects"
	}
	if len(blocks) > maxBlocks {
		return "invalid_blocks", fmt.Sprintf("[ERROR] no more than %d items allowed [json-pointer:/blocks]", maxBlocks)
	}
	for i, b := range blocks {
		at := fmt.Sprintf("/blocks/%d", i)
		if msg := checkBlock(b, at); msg != "" {
			return "invalid_blocks", "[ERROR] " + msg
		}
	}
	return "", ""
}

func checkBlock(b map[string]any, at string) string {
	text := func(v any, max int, at string) string {
		t, _ := v.(map[string]any)
		s, _ := t["text"].(string)
		switch n := utf8.RuneCountInString(s); {
		case t == nil || (t["type"] != "mrkdwn" && t["type"] != "plain_text"):
			return "must be a text object [json-pointer:" + at + "]"
		case n == 0:
			return "must be more than 0 characters [json-pointer:" + at + "/text]"
		case n > max:
			return fmt.Sprintf("must be less than %d characters [json-pointer:%s/text]", max+1, at)
		}
		return ""
	}
	switch b["type"] {
	case "header":
		return text(b["text"], maxHeaderText, at+"/text")
	case "section":
		fields, _ := b["fields"].([]any)
		if b["text"] == nil && len(fields) == 0 {
			return "a section needs text or fields [json-pointer:" + at + "]"
		}
		if b["text"] != nil {
			if msg := text(b["text"], maxSectionText, at+"/text"); msg != "" {
				return msg
			}
		}
		if len(fields) > maxSectionFields {
			return fmt.Sprintf("no more than %d items allowed [json-pointer:%s/fields]", maxSectionFields, at)
		}
		for j, f := range fields {
			if msg := text(f, maxFieldText, fmt.Sprintf("%s/fields/%d", at, j)); msg != "" {
				return msg
			}
		}
	case "context":
		elems, _ := b["elements"].([]any)
		if len(elems) == 0 || len(elems) > maxContextItems {
			return fmt.Sprintf("must have 1 to %d items [json-pointer:%s/elements]", maxContextItems, at)
		}
		for j, e := range elems {
			if msg := text(e, maxSectionText, fmt.Sprintf("%s/elements/%d", at, j)); msg != "" {
				return msg
			}
		}
	case "divider", "image", "actions", "rich_text", "file", "input", "video":
	default:
		return "unknown block type [json-pointer:" + at + "/type]"
	}
	return ""
}

// checkMessage checks a chat.postMessage or chat.update's text and blocks.
func checkMessage(f url.Values) (code, detail string) {
	if utf8.RuneCountInString(f.Get("text")) > maxMessageText {
		return "msg_too_long", ""
	}
	return checkBlocks(f.Get("blocks"))
}

// refused is the answer's extra fields for a refused message: Slack's response_metadata.
func refused(detail string) map[string]any {
	if detail == "" {
		return nil
	}
	return map[string]any{"response_metadata": map[string]any{"messages": []string{detail}}}
}

func (s *Slack) postMessage(f url.Values) (map[string]any, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Get("channel") == "" {
		return nil, "channel_not_found"
	}
	if f.Get("text") == "" && f.Get("blocks") == "" {
		return nil, "no_text"
	}
	if code, detail := checkMessage(f); code != "" {
		return refused(detail), code
	}
	ch := s.channelID(f.Get("channel"))
	thread := f.Get("thread_ts")
	if thread != "" {
		root := s.find(ch, thread)
		if root == nil || root.ThreadTS != "" {
			return nil, "thread_not_found"
		}
	}
	m := s.post(ch, thread, f.Get("text"), f.Get("blocks"), metadataOf(f.Get("metadata")))
	return map[string]any{"channel": ch, "ts": m.TS, "message": map[string]any{"text": m.Text, "ts": m.TS}}, ""
}

// post adds a message to the channel ch (to the thread of thread, when set); s.mu is held.
func (s *Slack) post(ch, thread, text, blocks string, metadata json.RawMessage) *SlackMessage {
	// A ts is Slack's clock at the post, to the microsecond, unique in the channel.
	s.lastTS = max(s.lastTS+1, time.Now().UnixMicro())
	m := &SlackMessage{Channel: ch, TS: fmt.Sprintf("%d.%06d", s.lastTS/1e6, s.lastTS%1e6), ThreadTS: thread,
		Text: text, Blocks: json.RawMessage(blocks), Metadata: metadata}
	s.messages = append(s.messages, m)
	return m
}

func (s *Slack) update(f url.Values) (map[string]any, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := f.Get("channel")
	if !s.knownID(ch) {
		return nil, "channel_not_found" // chat.update takes a channel id, never a name
	}
	if code, detail := checkMessage(f); code != "" {
		return refused(detail), code
	}
	m := s.find(ch, f.Get("ts"))
	if m == nil {
		return nil, "message_not_found"
	}
	m.Text, m.Blocks = f.Get("text"), json.RawMessage(f.Get("blocks"))
	m.Updates++
	return map[string]any{"channel": ch, "ts": m.TS, "text": m.Text}, ""
}

func (s *Slack) uploadURL(f url.Values) (map[string]any, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := strconv.Atoi(f.Get("length"))
	if f.Get("filename") == "" || err != nil || n <= 0 {
		return nil, "invalid_arguments"
	}
	s.nextFile++
	id := fmt.Sprintf("F%08d", s.nextFile)
	s.uploads[id] = &SlackFile{ID: id, Filename: f.Get("filename")}
	return map[string]any{"upload_url": "http://" + s.Addr() + "/upload/" + id, "file_id": id}, ""
}

func (s *Slack) receiveUpload(id string, data []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.uploads[id]
	if ok {
		u.Data = data
	}
	return ok
}

func (s *Slack) complete(f url.Values) (map[string]any, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var files []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if json.Unmarshal([]byte(f.Get("files")), &files) != nil || len(files) == 0 {
		return nil, "invalid_arguments"
	}
	ch := f.Get("channel_id")
	if ch != "" && !s.knownID(ch) {
		return nil, "channel_not_found"
	}
	thread := f.Get("thread_ts")
	if thread != "" && s.find(ch, thread) == nil {
		return nil, "thread_not_found"
	}
	var out []map[string]any
	var shared []*SlackFile
	for _, fl := range files {
		u, ok := s.uploads[fl.ID]
		if !ok || u.Data == nil {
			return nil, "file_not_found"
		}
		shared = append(shared, u)
	}
	// Shared into a channel, the files are a message there (in the thread with thread_ts),
	// which conversations.history and conversations.replies list with the files' ids,
	// names and titles; the initial_comment is its text.
	var share *SlackMessage
	if ch != "" {
		share = s.post(ch, thread, f.Get("initial_comment"), "", nil)
	}
	for i, u := range shared {
		delete(s.uploads, u.ID)
		u.Title, u.Channel, u.ThreadTS = files[i].Title, ch, thread
		if share != nil {
			u.TS = share.TS
			share.Files = append(share.Files, SlackFile{ID: u.ID, Filename: u.Filename, Title: u.Title, Channel: ch, ThreadTS: thread, TS: u.TS})
		}
		s.files = append(s.files, *u)
		out = append(out, map[string]any{"id": u.ID, "title": u.Title})
	}
	return map[string]any{"files": out}, ""
}
