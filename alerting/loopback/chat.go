package loopback

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// Chat is a loopback chat webhook: a Microsoft Teams Workflows webhook (NewTeams), which
// takes an Adaptive Card in a message envelope and answers 202, or a Discord webhook
// (NewDiscord), which takes embeds and answers 204 (200 with the message on ?wait=true).
// It checks the shape and the limits the service enforces and records what it accepted.
type Chat struct {
	server
	flavour string
	check   func(map[string]any) string

	mu    sync.Mutex
	posts []ChatPost
}

// maxChatBody is the largest request the chat receivers read; a larger one is answered
// 413, as the services answer a request far over their limits.
const maxChatBody = 1 << 20

// ChatPost is one request as it arrived, accepted or not.
type ChatPost struct {
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
	// Payload is Body decoded.
	Payload map[string]any
	Status  int // 0: held until the client left
	At      time.Time
}

// NewTeams starts a Teams Workflows webhook receiver on 127.0.0.1 for the test.
func NewTeams(tb testing.TB) *Chat {
	c := &Chat{flavour: "teams", check: checkTeams}
	mustStart(tb, func() error { return c.start("", http.HandlerFunc(c.handle)) }, c.Close)
	return c
}

// NewDiscord starts a Discord webhook receiver on 127.0.0.1 for the test.
func NewDiscord(tb testing.TB) *Chat {
	c := &Chat{flavour: "discord", check: checkDiscord}
	mustStart(tb, func() error { return c.start("", http.HandlerFunc(c.handle)) }, c.Close)
	return c
}

// URL is the webhook URL to configure; its secret part (a Workflows sig, a Discord token)
// is DiscordToken or TeamsSig, which errors must not show.
func (c *Chat) URL() string {
	if c.flavour == "discord" {
		return "http://" + c.Addr() + "/api/webhooks/1234567890/" + DiscordToken
	}
	return "http://" + c.Addr() + "/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=" + TeamsSig
}

// The secret parts of the Chat URLs.
const (
	DiscordToken = "dIsCoRdToKeN-vigil-test-0123456789abcdef"
	TeamsSig     = "tEaMsSiG-vigil-test-0123456789"
)

// Fail queues a fault for the next requests.
func (c *Chat) Fail(f Fault) { c.fail("", f) }

// Posts returns every request that arrived, in order.
func (c *Chat) Posts() []ChatPost {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.posts)
}

// Accepted returns the requests answered 2xx.
func (c *Chat) Accepted() []ChatPost {
	var out []ChatPost
	for _, p := range c.Posts() {
		if p.Status >= 200 && p.Status < 300 {
			out = append(out, p)
		}
	}
	return out
}

func (c *Chat) handle(w http.ResponseWriter, r *http.Request) {
	p := ChatPost{Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), At: time.Now()}
	p.Body, _ = io.ReadAll(io.LimitReader(r.Body, maxChatBody+1))
	_ = json.Unmarshal(p.Body, &p.Payload)
	c.mu.Lock()
	idx := len(c.posts)
	c.posts = append(c.posts, p)
	c.mu.Unlock()
	record := func(status int) {
		c.mu.Lock()
		c.posts[idx].Status = status
		c.mu.Unlock()
	}
	if f, ok := c.takeFault(""); ok {
		record(f.status())
		c.answerFault(w, r, f)
		return
	}
	secret := "sig=" + TeamsSig
	if c.flavour == "discord" {
		secret = "/" + DiscordToken
	}
	switch {
	case len(p.Body) > maxChatBody:
		record(http.StatusRequestEntityTooLarge)
		answer := map[string]any{"message": "Request entity too large"}
		if c.flavour == "discord" {
			answer["code"] = 40005
		}
		writeJSON(w, http.StatusRequestEntityTooLarge, answer)
		return
	case r.Method != http.MethodPost:
		record(http.StatusMethodNotAllowed)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	case !strings.Contains(r.URL.RequestURI(), secret):
		record(http.StatusUnauthorized)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Invalid Webhook Token", "code": 50027})
		return
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || p.Payload == nil:
		record(http.StatusBadRequest)
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "the body is not a JSON object"})
		return
	}
	if msg := c.check(p.Payload); msg != "" {
		record(http.StatusBadRequest)
		answer := map[string]any{"message": msg}
		if c.flavour == "discord" {
			// As Discord says it: 50035, with what is wrong under errors.
			answer = map[string]any{"message": "Invalid Form Body", "code": 50035,
				"errors": map[string]any{"_errors": []any{map[string]any{"code": "BASE_TYPE_INVALID", "message": msg}}}}
		}
		writeJSON(w, http.StatusBadRequest, answer)
		return
	}
	switch {
	case c.flavour == "teams":
		record(http.StatusAccepted)
		w.WriteHeader(http.StatusAccepted)
	case p.Query.Get("wait") == "true":
		record(http.StatusOK)
		writeJSON(w, http.StatusOK, map[string]any{"id": fmt.Sprintf("%d", 1000+idx), "embeds": p.Payload["embeds"]})
	default:
		record(http.StatusNoContent)
		w.WriteHeader(http.StatusNoContent)
	}
}

// checkTeams checks the message envelope and the card as a Workflows webhook reads them.
func checkTeams(m map[string]any) string {
	if m["type"] != "message" {
		return `want "type": "message"`
	}
	atts, _ := m["attachments"].([]any)
	if len(atts) != 1 {
		return "want one attachment"
	}
	att, _ := atts[0].(map[string]any)
	if att["contentType"] != "application/vnd.microsoft.card.adaptive" {
		return "the attachment is not an Adaptive Card"
	}
	card, _ := att["content"].(map[string]any)
	if card["type"] != "AdaptiveCard" || card["version"] == nil {
		return `the card needs "type": "AdaptiveCard" and a version`
	}
	if body, _ := card["body"].([]any); len(body) == 0 {
		return "the card has no body"
	}
	if b, _ := json.Marshal(m); len(b) > 28<<10 {
		return "the message is over 28 KB"
	}
	return ""
}

// checkDiscord checks the limits Discord enforces on a webhook message's embeds.
func checkDiscord(m map[string]any) string {
	n := func(v any) int { s, _ := v.(string); return utf8.RuneCountInString(s) }
	embeds, _ := m["embeds"].([]any)
	if len(embeds) == 0 && n(m["content"]) == 0 {
		return "Cannot send an empty message"
	}
	if len(embeds) > 10 || n(m["content"]) > 2000 {
		return "over 10 embeds or 2000 characters of content"
	}
	total := 0
	for _, e := range embeds {
		em, _ := e.(map[string]any)
		if n(em["title"]) > 256 || n(em["description"]) > 4096 {
			return "embed title over 256 or description over 4096 characters"
		}
		total += n(em["title"]) + n(em["description"])
		fields, _ := em["fields"].([]any)
		if len(fields) > 25 {
			return "over 25 fields"
		}
		for _, f := range fields {
			fm, _ := f.(map[string]any)
			if n(fm["name"]) == 0 || n(fm["name"]) > 256 || n(fm["value"]) == 0 || n(fm["value"]) > 1024 {
				return "a field's name must be 1 to 256 characters and its value 1 to 1024"
			}
			total += n(fm["name"]) + n(fm["value"])
		}
		if f, _ := em["footer"].(map[string]any); f != nil {
			total += n(f["text"])
		}
	}
	if total > 6000 {
		return fmt.Sprintf("embeds total %d characters, over 6000", total)
	}
	return ""
}
