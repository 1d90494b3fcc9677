package loopback_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
)

func post(t *testing.T, u string, h http.Header, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// signature is the README's formula, written out: "sha256=" + hex(HMAC-SHA256(secret,
// timestamp + "." + body)).
func signature(secret, ts, body string) string {
	return "sha256=" + hex.EncodeToString(hmacOf(secret, ts+"."+body))
}

func signed(secret, key, body string, at time.Time) http.Header {
	ts := strconv.FormatInt(at.Unix(), 10)
	return http.Header{
		"Content-Type":                {"application/json"},
		alerting.HeaderTimestamp:      {ts},
		alerting.HeaderSignature:      {signature(secret, ts, body)},
		alerting.HeaderIdempotencyKey: {key},
		alerting.HeaderEvent:          {"deploy_failed"},
	}
}

func TestWebhookReceiverVerifies(t *testing.T) {
	rx := loopback.NewWebhook(t)
	body := `{"event":"deploy_failed"}`
	for name, tc := range map[string]struct {
		h      http.Header
		status int
	}{
		"good":          {signed(loopback.WebhookSecret, "d-1:deploy_failed", body, time.Now()), 200},
		"wrong secret":  {signed("nope", "d-1:deploy_failed", body, time.Now()), 401},
		"replayed late": {signed(loopback.WebhookSecret, "d-1:deploy_failed", body, time.Now().Add(-time.Hour)), 401},
		"no key":        {signed(loopback.WebhookSecret, "", body, time.Now()), 400},
		"unsigned":      {http.Header{"Content-Type": {"application/json"}}, 401},
	} {
		if got := post(t, rx.URL(), tc.h, body).StatusCode; got != tc.status {
			t.Errorf("%s: status %d, want %d", name, got, tc.status)
		}
	}
	if rx.Count("d-1:deploy_failed") != 1 || len(rx.Rejected()) != 4 {
		t.Errorf("count %d, rejected %d", rx.Count("d-1:deploy_failed"), len(rx.Rejected()))
	}
}

// The receiver accepts the README's test vector and nothing signed any other way: what the
// delivery tests' receiver checks is the documented formula, not whatever alerting.Sign does.
func TestWebhookReceiverAcceptsTheReadmeVector(t *testing.T) {
	const (
		secret = "vigil-example-secret"
		ts     = "1767225600"
		body   = `{"event":"deploy_failed","deploy":{"id":"d-42","service":"web","version":"v2","environment":"prod"},"failed_checks":[{"name":"home","summary":"TypeError: e.init is not a function at app.min.js:1:2045","run_url":"https://vigil.example/runs/981"}],"location":"local","sent_at":"2026-01-01T00:00:00Z"}`
		sig    = "sha256=4b7557941b9aaa6c674619a991fb7429f03993c6a0cb0a870dd1cf50da1ac0b7"
	)
	if got := signature(secret, ts, body); got != sig {
		t.Fatalf("the formula gives %s for the README's vector, not %s", got, sig)
	}
	rx := loopback.NewWebhook(t)
	rx.Secret = []byte(secret)
	rx.Tolerance = time.Since(time.Unix(1767225600, 0)) + time.Hour // the vector's timestamp is fixed
	h := func(sig string) http.Header {
		return http.Header{"Content-Type": {"application/json"}, alerting.HeaderTimestamp: {ts},
			alerting.HeaderSignature: {sig}, alerting.HeaderIdempotencyKey: {"d-42:deploy_failed"}}
	}
	for name, tc := range map[string]struct {
		sig    string
		status int
	}{
		"the vector":                    {sig, 200},
		"rotating: old, then the right": {"sha256=" + strings.Repeat("0", 64) + ", " + sig, 200},
		"no dot between ts and body":    {"sha256=" + hex.EncodeToString(hmacOf(secret, ts+body)), 401},
		"the body alone":                {"sha256=" + hex.EncodeToString(hmacOf(secret, body)), 401},
	} {
		if got := post(t, rx.URL(), h(tc.sig), body).StatusCode; got != tc.status {
			t.Errorf("%s: status %d, want %d", name, got, tc.status)
		}
	}
	if n := rx.Count("d-42:deploy_failed"); n != 2 {
		t.Errorf("accepted %d, want 2", n)
	}
}

// AcceptThenHang: the delivery counts as accepted although the sender never hears so.
func TestWebhookAcceptThenHang(t *testing.T) {
	rx := loopback.NewWebhook(t)
	rx.Fail(loopback.Fault{AcceptThenHang: true})
	body := `{"event":"deploy_failed"}`
	client := &http.Client{Timeout: 200 * time.Millisecond}
	if resp, err := client.Do(mustReq(t, http.MethodPost, rx.URL(), signed(loopback.WebhookSecret, "d-1:deploy_failed", body, time.Now()), body)); err == nil {
		resp.Body.Close()
		t.Fatalf("the answer was not held: %s", resp.Status)
	}
	if rx.Count("d-1:deploy_failed") != 1 || rx.Attempts("d-1:deploy_failed") != 1 || !rx.Deliveries()[0].Accepted {
		t.Errorf("accepted %d, attempts %d; want 1 and 1", rx.Count("d-1:deploy_failed"), rx.Attempts("d-1:deploy_failed"))
	}
	if got := post(t, rx.URL(), signed(loopback.WebhookSecret, "d-1:deploy_failed", body, time.Now()), body).StatusCode; got != 200 {
		t.Errorf("the next delivery: %d", got)
	}
	if rx.Count("d-1:deploy_failed") != 2 {
		t.Errorf("accepted %d, want 2", rx.Count("d-1:deploy_failed"))
	}
}

func hmacOf(secret, msg string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func TestServeWebhookCounts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- loopback.ServeWebhook(ctx, addr, []byte("shared")) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	var resp *http.Response
	for i := 0; ; i++ {
		resp, err = http.DefaultClient.Do(mustReq(t, http.MethodPost, "http://"+addr+"/hook", signed("shared", "k1", "{}", time.Now()), "{}"))
		if err == nil {
			break
		}
		if i > 100 {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = resp.Body.Close()
	resp, err = http.Get("http://" + addr + "/counts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c loopback.WebhookCounts
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || c.Accepted["k1"] != 1 {
		t.Fatalf("counts %+v, %v", c, err)
	}
}

func mustReq(t *testing.T, method, u string, h http.Header, body string) *http.Request {
	req, err := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	return req
}

func TestSlackServerIsStrictLikeSlack(t *testing.T) {
	s := loopback.NewSlack(t)
	call := func(method string, args url.Values) map[string]any {
		args.Set("token", s.Token)
		resp := post(t, s.APIURL()+method, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, args.Encode())
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return out
	}
	posted := call("chat.postMessage", url.Values{"channel": {"#deploys"}, "text": {"hi"}})
	if posted["ok"] != true || !strings.HasPrefix(posted["channel"].(string), "C") {
		t.Fatalf("postMessage %v", posted)
	}
	ts := posted["ts"].(string)
	if r := call("chat.update", url.Values{"channel": {"#deploys"}, "ts": {ts}, "text": {"x"}}); r["error"] != "channel_not_found" {
		t.Errorf("chat.update by channel name: %v", r)
	}
	if r := call("chat.postMessage", url.Values{"channel": {"#deploys"}, "text": {"x"}, "thread_ts": {"1.2"}}); r["error"] != "thread_not_found" {
		t.Errorf("reply to no thread: %v", r)
	}
	if r := call("chat.postMessage", url.Values{"channel": {"#deploys"}, "blocks": {"not json"}}); r["error"] != "invalid_blocks_format" {
		t.Errorf("bad blocks: %v", r)
	}
	// Block Kit's limits, refused as Slack refuses them.
	section := func(n int) string {
		return `{"type":"section","text":{"type":"mrkdwn","text":"` + strings.Repeat("é", n) + `"}}`
	}
	for _, c := range []struct{ name, blocks, text, want string }{
		{"section of 3000 characters", "[" + section(3000) + "]", "", ""},
		{"section of 3001 characters", "[" + section(3000) + "," + section(3001) + "]", "", "must be less than 3001 characters [json-pointer:/blocks/1/text/text]"},
		{"empty section", "[" + section(0) + "]", "", "must be more than 0 characters"},
		{"header of 151", `[{"type":"header","text":{"type":"plain_text","text":"` + strings.Repeat("h", 151) + `"}}]`, "", "less than 151"},
		{"11 fields", `[{"type":"section","fields":[` + strings.TrimSuffix(strings.Repeat(`{"type":"mrkdwn","text":"f"},`, 11), ",") + `]}]`, "", "no more than 10 items"},
		{"51 blocks", "[" + strings.TrimSuffix(strings.Repeat(section(1)+",", 51), ",") + "]", "", "no more than 50 items"},
		{"11 context elements", `[{"type":"context","elements":[` + strings.TrimSuffix(strings.Repeat(`{"type":"mrkdwn","text":"c"},`, 11), ",") + `]}]`, "", "1 to 10 items"},
		{"text of 40,001", "", strings.Repeat("t", 40001), "msg_too_long"},
	} {
		args := url.Values{"channel": {"#deploys"}, "text": {c.text}}
		if c.blocks != "" {
			args.Set("blocks", c.blocks)
		}
		r := call("chat.postMessage", args)
		switch {
		case c.want == "" && r["ok"] != true:
			t.Errorf("%s: refused: %v", c.name, r)
		case c.want == "msg_too_long" && r["error"] != "msg_too_long":
			t.Errorf("%s: %v, want msg_too_long", c.name, r)
		case c.want != "" && c.want != "msg_too_long" && (r["error"] != "invalid_blocks" || !strings.Contains(fmt.Sprint(r["response_metadata"]), c.want)):
			t.Errorf("%s: %v, want invalid_blocks saying %q", c.name, r, c.want)
		}
	}
	if r := call("files.completeUploadExternal", url.Values{"files": {`[{"id":"F404"}]`}}); r["error"] != "file_not_found" {
		t.Errorf("completing an upload that never happened: %v", r)
	}
	s.Fail("chat.postMessage", loopback.Fault{Status: 429, RetryAfter: "2", Times: 2})
	for range 2 {
		resp := post(t, s.APIURL()+"chat.postMessage", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
			url.Values{"token": {s.Token}, "channel": {"#deploys"}, "text": {"x"}}.Encode())
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" {
			t.Errorf("fault: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if len(s.Messages()) != 2 {
		t.Errorf("%d messages, want the first and the 3000 characters' one", len(s.Messages()))
	}
}

// conversations.history as Slack answers it: a channel id (a name is channel_not_found),
// root messages newest first after oldest, a page at a time with a cursor, metadata only
// with include_all_metadata, missing_scope for a token without the history scopes; and a
// Drop fault posts the message and closes the connection without an answer.
func TestSlackServerHistoryLikeSlack(t *testing.T) {
	s := loopback.NewSlack(t)
	call := func(method string, args url.Values) (map[string]any, error) {
		args.Set("token", s.Token)
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.APIURL()+method, strings.NewReader(args.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var out map[string]any
		return out, json.NewDecoder(resp.Body).Decode(&out)
	}
	meta := `{"event_type":"vigil_notification","event_payload":{"idempotency_key":"d-1:deploy_failed"}}`
	s.Fail("chat.postMessage", loopback.Fault{Drop: true})
	if r, err := call("chat.postMessage", url.Values{"channel": {"#deploys"}, "text": {"first"}, "metadata": {meta}}); err == nil {
		t.Fatalf("a dropped post was answered: %v", r)
	}
	if len(s.Roots()) != 1 {
		t.Fatalf("the dropped post was not carried out: %d roots", len(s.Roots()))
	}
	root := s.Roots()[0]
	if _, err := call("chat.postMessage", url.Values{"channel": {root.Channel}, "text": {"reply"}, "thread_ts": {root.TS}}); err != nil {
		t.Fatal(err)
	}
	if _, err := call("chat.postMessage", url.Values{"channel": {"#deploys"}, "text": {"second"}}); err != nil {
		t.Fatal(err)
	}
	if r, _ := call("conversations.history", url.Values{"channel": {"#deploys"}}); r["error"] != "channel_not_found" {
		t.Errorf("history by channel name: %v", r)
	}
	texts := func(r map[string]any) (out []string) {
		msgs, _ := r["messages"].([]any)
		for _, m := range msgs {
			out = append(out, m.(map[string]any)["text"].(string))
		}
		return out
	}
	r, _ := call("conversations.history", url.Values{"channel": {root.Channel}})
	if fmt.Sprint(texts(r)) != "[second first]" || r["ok"] != true {
		t.Errorf("history: %v; want the two roots, newest first, and no reply", r)
	}
	if strings.Contains(fmt.Sprint(r), "vigil_notification") {
		t.Errorf("metadata without include_all_metadata: %v", r)
	}
	r, _ = call("conversations.history", url.Values{"channel": {root.Channel}, "limit": {"1"}, "include_all_metadata": {"true"}})
	if fmt.Sprint(texts(r)) != "[second]" || r["has_more"] != true {
		t.Fatalf("first page of 1: %v", r)
	}
	cursor := r["response_metadata"].(map[string]any)["next_cursor"].(string)
	r, _ = call("conversations.history", url.Values{"channel": {root.Channel}, "limit": {"1"}, "include_all_metadata": {"true"}, "cursor": {cursor}})
	msgs, _ := r["messages"].([]any)
	if len(msgs) != 1 || r["has_more"] != false {
		t.Fatalf("second page: %v", r)
	}
	m := msgs[0].(map[string]any)
	if md, _ := m["metadata"].(map[string]any); md["event_type"] != "vigil_notification" || m["thread_ts"] != root.TS {
		t.Errorf("the first root with include_all_metadata: %v; want its metadata and its thread", m)
	}
	if r, _ := call("conversations.history", url.Values{"channel": {root.Channel}, "oldest": {root.TS}}); fmt.Sprint(texts(r)) != "[second]" {
		t.Errorf("history after oldest %s: %v", root.TS, r)
	}
	// conversations.replies: the thread, its parent first, oldest first, metadata on ask.
	if _, err := call("chat.postMessage", url.Values{"channel": {root.Channel}, "text": {"reply 2"}, "thread_ts": {root.TS}, "metadata": {meta}}); err != nil {
		t.Fatal(err)
	}
	r, _ = call("conversations.replies", url.Values{"channel": {root.Channel}, "ts": {root.TS}, "include_all_metadata": {"1"}})
	if msgs, _ := r["messages"].([]any); fmt.Sprint(texts(r)) != "[first reply reply 2]" || r["ok"] != true ||
		msgs[2].(map[string]any)["thread_ts"] != root.TS || msgs[2].(map[string]any)["metadata"] == nil {
		t.Errorf("replies: %v; want the parent, then the replies with their thread_ts and metadata", r)
	}
	r, _ = call("conversations.replies", url.Values{"channel": {root.Channel}, "ts": {root.TS}, "limit": {"2"}})
	if fmt.Sprint(texts(r)) != "[first reply]" || r["has_more"] != true || strings.Contains(fmt.Sprint(r), "vigil_notification") {
		t.Errorf("replies, a page of 2 without include_all_metadata: %v", r)
	}
	if r, _ := call("conversations.replies", url.Values{"channel": {root.Channel}, "ts": {"1.000001"}}); r["error"] != "thread_not_found" {
		t.Errorf("replies of no message: %v", r)
	}
	// users.conversations: the bot's channels, by id and name, a page at a time.
	r, _ = call("users.conversations", url.Values{"types": {"public_channel,private_channel"}, "limit": {"1"}})
	if chs, _ := r["channels"].([]any); len(chs) != 1 || chs[0].(map[string]any)["id"] != root.Channel ||
		chs[0].(map[string]any)["name"] != "deploys" || r["response_metadata"].(map[string]any)["next_cursor"] != "" {
		t.Errorf("users.conversations: %v; want the one channel, deploys, and no next page", r)
	}
	s = &loopback.Slack{NoHistoryScope: true, NoReadScope: true}
	if err := s.Start(""); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r, _ := call("users.conversations", url.Values{}); r["error"] != "missing_scope" || r["needed"] != "channels:read" {
		t.Errorf("users.conversations with a token without channels:read: %v", r)
	}
	for _, m := range []string{"conversations.history", "conversations.replies"} {
		if r, _ := call(m, url.Values{"channel": {root.Channel}, "ts": {root.TS}}); r["error"] != "missing_scope" || r["needed"] != "channels:history" {
			t.Errorf("%s with a token without channels:history: %v", m, r)
		}
	}
}
