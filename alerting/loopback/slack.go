package loopback

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// SlackToken is the bot token the Slack server accepts by default.
const SlackToken = "xoxb-vigil-test-token"

// Slack is a loopback Slack Web API server. It speaks the methods vigil uses —
// chat.postMessage, chat.update, files.getUploadURLExternal, the upload URL it hands out,
// files.completeUploadExternal, auth.test — checks the token, and records every call with
// its decoded arguments.
type Slack struct {
	server
	// Token is the bot token it accepts; anything else is invalid_auth.
	Token string

	mu       sync.Mutex
	calls    []SlackCall
	messages []*SlackMessage
	channels map[string]string // name -> id
	uploads  map[string]*SlackFile
	files    []SlackFile
	nextTS   int64
	nextFile int
}

// SlackCall is one request as it arrived.
type SlackCall struct {
	Method string // "chat.postMessage", "chat.update", "files.getUploadURLExternal", "upload", ...
	// Args are the decoded form arguments, without the token.
	Args url.Values
	// Authorized: the request carried the right token.
	Authorized bool
	// Blocks is the blocks argument, when there was one.
	Blocks json.RawMessage
	// File holds the bytes of an upload.
	File []byte
	// Status is the HTTP status answered (0: the request was held until the client left).
	Status int
	// Error is the Slack error code answered ("" when ok).
	Error string
	At    time.Time
}

// OK reports whether the call succeeded.
func (c SlackCall) OK() bool { return c.Status == http.StatusOK && c.Error == "" }

// SlackMessage is a message as it stands now (after any chat.update).
type SlackMessage struct {
	Channel  string // channel id
	TS       string
	ThreadTS string // "" for a root message
	Text     string
	Blocks   json.RawMessage
	// Updates counts the chat.update calls that changed it.
	Updates int
}

// SlackFile is an upload shared by files.completeUploadExternal.
type SlackFile struct {
	ID       string
	Filename string
	Title    string
	Channel  string
	ThreadTS string
	Data     []byte
}

// NewSlack starts a Slack server on 127.0.0.1 for the test and closes it at its end.
func NewSlack(tb testing.TB) *Slack {
	s := &Slack{}
	mustStart(tb, func() error { return s.Start("") }, s.Close)
	return s
}

// Start listens on addr ("" for 127.0.0.1 and a free port).
func (s *Slack) Start(addr string) error {
	if s.Token == "" {
		s.Token = SlackToken
	}
	s.channels = map[string]string{}
	s.uploads = map[string]*SlackFile{}
	s.nextTS = 1767225600
	return s.start(addr, http.HandlerFunc(s.handle))
}

// APIURL is the value for a notifier's api_url.
func (s *Slack) APIURL() string { return "http://" + s.Addr() + "/api/" }

// Fail queues a fault for a method ("chat.postMessage", "chat.update",
// "files.getUploadURLExternal", "upload", "files.completeUploadExternal").
func (s *Slack) Fail(method string, f Fault) { s.fail(method, f) }

// Calls returns every request that arrived, in order.
func (s *Slack) Calls() []SlackCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SlackCall(nil), s.calls...)
}

// CallsTo returns the requests to one method.
func (s *Slack) CallsTo(method string) []SlackCall {
	var out []SlackCall
	for _, c := range s.Calls() {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Messages returns every posted message as it stands now, in the order posted.
func (s *Slack) Messages() []SlackMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SlackMessage, len(s.messages))
	for i, m := range s.messages {
		out[i] = *m
	}
	return out
}

// Roots returns the messages that are not thread replies.
func (s *Slack) Roots() []SlackMessage {
	var out []SlackMessage
	for _, m := range s.Messages() {
		if m.ThreadTS == "" {
			out = append(out, m)
		}
	}
	return out
}

// Replies returns the replies in the thread of the root message ts.
func (s *Slack) Replies(ts string) []SlackMessage {
	var out []SlackMessage
	for _, m := range s.Messages() {
		if m.ThreadTS == ts {
			out = append(out, m)
		}
	}
	return out
}

// Files returns the uploads that were completed (shared), in order.
func (s *Slack) Files() []SlackFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SlackFile(nil), s.files...)
}

// BlocksText returns every text string inside a message's blocks, one per line: enough
// to assert that a reason, a link or a trace id is there.
func (m SlackMessage) BlocksText() string { return blocksText(m.Blocks) }

func blocksText(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if s, ok := t[k].(string); ok && k == "text" {
					out = append(out, s)
				} else {
					walk(t[k])
				}
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		}
	}
	walk(v)
	return strings.Join(out, "\n")
}

func (s *Slack) handle(w http.ResponseWriter, r *http.Request) {
	method, isAPI := strings.CutPrefix(r.URL.Path, "/api/")
	if strings.HasPrefix(r.URL.Path, "/upload/") {
		method = "upload"
	} else if !isAPI {
		http.NotFound(w, r)
		return
	}
	call := SlackCall{Method: method, At: time.Now()}
	var fileID string
	if method == "upload" {
		fileID = strings.TrimPrefix(r.URL.Path, "/upload/")
		call.Authorized = r.Header.Get("Authorization") == "Bearer "+s.Token
		if mr, err := r.MultipartReader(); err == nil {
			for {
				p, err := mr.NextPart()
				if err != nil {
					break
				}
				if p.FormName() == "file" {
					call.File, _ = io.ReadAll(io.LimitReader(p, 64<<20))
				}
			}
		}
	} else {
		r.Body = http.MaxBytesReader(w, r.Body, 8<<20)
		_ = r.ParseForm()
		call.Args = url.Values{}
		for k, v := range r.PostForm {
			if k != "token" {
				call.Args[k] = v
			}
		}
		token := r.PostForm.Get("token")
		if token == "" {
			token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		call.Authorized = token == s.Token
		if b := r.PostForm.Get("blocks"); b != "" {
			call.Blocks = json.RawMessage(b)
		}
	}
	// The call is on record before the client hears the answer.
	s.mu.Lock()
	idx := len(s.calls)
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	record := func(status int, slackErr string) {
		s.mu.Lock()
		s.calls[idx].Status, s.calls[idx].Error = status, slackErr
		s.mu.Unlock()
	}
	fail := func(slackErr string) {
		record(http.StatusOK, slackErr)
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": slackErr})
	}

	if f, ok := s.takeFault(method); ok {
		if f.SlackError != "" && f.Status == 0 {
			fail(f.SlackError)
			return
		}
		record(f.status(), f.SlackError)
		s.answerFault(w, r, f)
		return
	}
	if !call.Authorized {
		fail("invalid_auth")
		return
	}
	var answer map[string]any
	var slackErr string
	switch method {
	case "auth.test":
		answer = map[string]any{"url": "https://vigil-test.slack.com/", "team": "vigil", "user": "vigil", "team_id": "T0VIGIL", "user_id": "U0VIGIL"}
	case "chat.postMessage":
		answer, slackErr = s.postMessage(r.PostForm)
	case "chat.update":
		answer, slackErr = s.update(r.PostForm)
	case "files.getUploadURLExternal":
		answer, slackErr = s.uploadURL(r.PostForm)
	case "upload":
		if !s.receiveUpload(fileID, call.File) {
			record(http.StatusNotFound, "")
			http.Error(w, "no such upload", http.StatusNotFound)
			return
		}
		record(http.StatusOK, "")
		_, _ = fmt.Fprintf(w, "OK - %d", len(call.File))
		return
	case "files.completeUploadExternal":
		answer, slackErr = s.complete(r.PostForm)
	default:
		slackErr = "unknown_method"
	}
	if slackErr != "" {
		fail(slackErr)
		return
	}
	record(http.StatusOK, "")
	answer["ok"] = true
	writeJSON(w, http.StatusOK, answer)
}

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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
