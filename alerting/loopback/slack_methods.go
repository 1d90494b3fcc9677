package loopback

// The Slack Web API methods the loopback Slack answers: chat.postMessage, chat.update and
// the three steps of a file upload.

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
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

func validBlocks(b string) bool {
	if b == "" {
		return true
	}
	var v []map[string]any
	if json.Unmarshal([]byte(b), &v) != nil || len(v) > 50 {
		return false
	}
	for _, blk := range v {
		if _, ok := blk["type"].(string); !ok {
			return false
		}
	}
	return true
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
	if !validBlocks(f.Get("blocks")) {
		return nil, "invalid_blocks"
	}
	ch := s.channelID(f.Get("channel"))
	thread := f.Get("thread_ts")
	if thread != "" {
		root := s.find(ch, thread)
		if root == nil || root.ThreadTS != "" {
			return nil, "thread_not_found"
		}
	}
	s.nextTS++
	m := &SlackMessage{Channel: ch, TS: strconv.FormatInt(s.nextTS, 10) + ".000100", ThreadTS: thread,
		Text: f.Get("text"), Blocks: json.RawMessage(f.Get("blocks"))}
	s.messages = append(s.messages, m)
	return map[string]any{"channel": ch, "ts": m.TS, "message": map[string]any{"text": m.Text, "ts": m.TS}}, ""
}

func (s *Slack) update(f url.Values) (map[string]any, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := f.Get("channel")
	if !s.knownID(ch) {
		return nil, "channel_not_found" // chat.update takes a channel id, never a name
	}
	if !validBlocks(f.Get("blocks")) {
		return nil, "invalid_blocks"
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
	for _, fl := range files {
		u, ok := s.uploads[fl.ID]
		if !ok || u.Data == nil {
			return nil, "file_not_found"
		}
		delete(s.uploads, fl.ID)
		u.Title, u.Channel, u.ThreadTS = fl.Title, ch, thread
		s.files = append(s.files, *u)
		out = append(out, map[string]any{"id": u.ID, "title": u.Title})
	}
	return map[string]any{"files": out}, ""
}
