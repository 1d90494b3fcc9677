package alertingtest_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/alertingtest"
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

func signed(secret, key, body string, at time.Time) http.Header {
	ts := strconv.FormatInt(at.Unix(), 10)
	return http.Header{
		"Content-Type":                {"application/json"},
		alerting.HeaderTimestamp:      {ts},
		alerting.HeaderSignature:      {alerting.Sign([]byte(secret), ts, []byte(body))},
		alerting.HeaderIdempotencyKey: {key},
		alerting.HeaderEvent:          {"deploy_failed"},
	}
}

func TestWebhookReceiverVerifies(t *testing.T) {
	rx := alertingtest.NewWebhook(t)
	body := `{"event":"deploy_failed"}`
	for name, tc := range map[string]struct {
		h      http.Header
		status int
	}{
		"good":          {signed(alertingtest.WebhookSecret, "d-1:deploy_failed", body, time.Now()), 200},
		"wrong secret":  {signed("nope", "d-1:deploy_failed", body, time.Now()), 401},
		"replayed late": {signed(alertingtest.WebhookSecret, "d-1:deploy_failed", body, time.Now().Add(-time.Hour)), 401},
		"no key":        {signed(alertingtest.WebhookSecret, "", body, time.Now()), 400},
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

func TestServeWebhookCounts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- alertingtest.ServeWebhook(ctx, addr, []byte("shared")) }()
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
	var c alertingtest.WebhookCounts
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
	s := alertingtest.NewSlack(t)
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
	if r := call("chat.postMessage", url.Values{"channel": {"#deploys"}, "blocks": {"not json"}}); r["error"] != "invalid_blocks" {
		t.Errorf("bad blocks: %v", r)
	}
	if r := call("files.completeUploadExternal", url.Values{"files": {`[{"id":"F404"}]`}}); r["error"] != "file_not_found" {
		t.Errorf("completing an upload that never happened: %v", r)
	}
	s.Fail("chat.postMessage", alertingtest.Fault{Status: 429, RetryAfter: "2", Times: 2})
	for range 2 {
		resp := post(t, s.APIURL()+"chat.postMessage", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
			url.Values{"token": {s.Token}, "channel": {"#deploys"}, "text": {"x"}}.Encode())
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" {
			t.Errorf("fault: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if len(s.Messages()) != 1 {
		t.Errorf("%d messages", len(s.Messages()))
	}
}
