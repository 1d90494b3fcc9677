package loopback

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// SlackToken is the bot token the Slack server accepts by default.
const SlackToken = "xoxb-vigil-test-token"

// Slack is a loopback Slack Web API server. It speaks the methods vigil uses —
// chat.postMessage (with message metadata), chat.update, conversations.history,
// conversations.replies, users.conversations, files.getUploadURLExternal, the upload URL it hands out, files.completeUploadExternal,
// auth.test — checks the token, refuses a message over Block Kit's limits as Slack does
// (invalid_blocks with response_metadata, msg_too_long; see checkBlocks), and records every
// call with its decoded arguments.
type Slack struct {
	server
	// Token is the bot token it accepts; anything else is invalid_auth.
	Token string
	// NoHistoryScope: the token lacks channels:history and groups:history, so
	// conversations.history answers missing_scope, as Slack does. Set before the first request.
	NoHistoryScope bool
	// NoReadScope: the token lacks channels:read and groups:read, so users.conversations
	// answers missing_scope. Set before the first request.
	NoReadScope bool

	mu       sync.Mutex
	calls    []SlackCall
	messages []*SlackMessage
	channels map[string]string // name -> id
	uploads  map[string]*SlackFile
	files    []SlackFile
	lastTS   int64 // the last message's ts, in microseconds
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

// SlackMessage is a message as it stands now (after any chat.update): one posted with
// chat.postMessage, or the message files.completeUploadExternal shares files with (Files set).
type SlackMessage struct {
	Channel  string // channel id
	TS       string
	ThreadTS string // "" for a root message
	Text     string
	Blocks   json.RawMessage
	// Metadata is the message metadata it was posted with ({"event_type","event_payload"}),
	// nil without.
	Metadata json.RawMessage
	// Updates counts the chat.update calls that changed it.
	Updates int
	// Files are the files the message shares, as files.completeUploadExternal posted them
	// (without their bytes); nil for a chat.postMessage.
	Files []SlackFile
}

// SlackFile is an upload shared by files.completeUploadExternal.
type SlackFile struct {
	ID       string
	Filename string
	Title    string
	Channel  string
	ThreadTS string
	// TS is the message that shares it in the channel or thread ("" without a channel).
	TS   string
	Data []byte
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
	return s.start(addr, http.HandlerFunc(s.handle))
}

// APIURL is the value for a notifier's api_url.
func (s *Slack) APIURL() string { return "http://" + s.Addr() + "/api/" }

// Channel returns the id of the channel named name (without "#"), creating it: for a
// notifier configured with a channel id, as conversations.history needs.
func (s *Slack) Channel(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channelID("#" + name)
}

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

// Messages returns every message posted with chat.postMessage as it stands now, in the
// order posted. The messages that share uploads, which conversations.history and
// conversations.replies list as Slack does, are not among them: Files has the uploads.
func (s *Slack) Messages() []SlackMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SlackMessage, 0, len(s.messages))
	for _, m := range s.messages {
		if m.Files == nil {
			out = append(out, *m)
		}
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

// Files returns the uploads that were completed (shared), in order: each share is also a
// message in its channel or thread, which conversations.history and conversations.replies
// list with its files, after files.completeUploadExternal and never before.
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

	f, faulted := s.takeFault(method)
	dropped := faulted && f.Drop        // carried out, then the answer is lost
	held := faulted && f.AcceptThenHang // carried out, then the answer is held
	if faulted && !dropped && !held {
		if f.SlackError != "" && f.Status == 0 {
			if f.RetryAfter != "" { // Slack's ratelimited can come as a 200 with Retry-After
				w.Header().Set("Retry-After", f.RetryAfter)
			}
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
	case "conversations.history":
		answer, slackErr = s.history(r.PostForm)
	case "conversations.replies":
		answer, slackErr = s.replies(r.PostForm)
	case "users.conversations":
		answer, slackErr = s.userChannels(r.PostForm)
	case "files.getUploadURLExternal":
		answer, slackErr = s.uploadURL(r.PostForm)
	case "upload":
		if !s.receiveUpload(fileID, call.File) {
			record(http.StatusNotFound, "")
			http.Error(w, "no such upload", http.StatusNotFound)
			return
		}
		if dropped || held { // the bytes are in; the answer is lost or held
			record(0, "")
			if held {
				s.answerFault(w, r, f)
			} else {
				drop(w)
			}
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
	if dropped || held {
		record(0, slackErr)
		if held {
			s.answerFault(w, r, f)
		} else {
			drop(w)
		}
		return
	}
	if slackErr != "" {
		record(http.StatusOK, slackErr)
		refusal := map[string]any{"ok": false, "error": slackErr}
		for k, v := range answer {
			refusal[k] = v
		}
		writeJSON(w, http.StatusOK, refusal)
		return
	}
	record(http.StatusOK, "")
	answer["ok"] = true
	writeJSON(w, http.StatusOK, answer)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
