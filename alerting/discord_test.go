package alerting_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/configs"
)

func discordConfig(rx *loopback.Chat) *configs.Notifier {
	return &configs.Notifier{Type: configs.NotifierDiscord, Name: "discord", URL: rx.URL()}
}

// embed returns the one embed of a Discord post.
func embed(t *testing.T, p loopback.ChatPost) map[string]any {
	t.Helper()
	es, _ := p.Payload["embeds"].([]any)
	if len(es) != 1 {
		t.Fatalf("want one embed: %s", p.Body)
	}
	return es[0].(map[string]any)
}

// A failed deploy is an embed with the evidence; the rollback's result and the resolving
// deploy follow it. No mention can ping, and ?wait=true makes Discord report errors.
func TestDiscordEmbeds(t *testing.T) {
	t.Parallel()
	rx := loopback.NewDiscord(t)
	n := newNotifier(t, discordConfig(rx), nil)
	st := alerting.State{}
	for _, ev := range []*alerting.Event{deployFailed(), actionResult(), resolvedBy()} {
		if err := n.Deliver(t.Context(), ev, st); err != nil {
			t.Fatalf("%s: %v", ev.Name, err)
		}
	}
	posts := rx.Accepted()
	if len(posts) != 3 {
		t.Fatalf("%d messages accepted, want 3", len(posts))
	}
	for _, p := range posts {
		if p.Query.Get("wait") != "true" {
			t.Errorf("posted without wait=true: %v", p.Query)
		}
		am, _ := p.Payload["allowed_mentions"].(map[string]any)
		if parse, ok := am["parse"].([]any); !ok || len(parse) != 0 {
			t.Errorf("allowed_mentions %v; want parse: []", p.Payload["allowed_mentions"])
		}
	}
	e := embed(t, posts[0])
	if e["color"] != float64(0xE01E5A) || e["url"] != "http://vigil.example/deploys/d-42" || e["timestamp"] != "2026-01-01T12:00:03Z" {
		t.Errorf("colour %v, url %v, timestamp %v", e["color"], e["url"], e["timestamp"])
	}
	body := string(posts[0].Body)
	for _, want := range []string{"Deploy of web v2.1.0 in prod failed verification", `"name":"Version","value":"v2.1.0"`,
		"TypeError: e.init is not a function", "[Run](http://vigil.example/runs/981)", "4bf92f3577b34da6a3ce929d0e0e4736",
		"status == 200 was false: status = 502", "4 of 6 checks passed", "https://wiki.example/runbooks/home", "https://ci.example/runs/7", "180 ms before the deploy", "calling rollback", "screenshot on the run page"} {
		if !strings.Contains(body, want) {
			t.Errorf("the message lacks %q:\n%s", want, body)
		}
	}
	if e := embed(t, posts[2]); e["color"] != float64(0x2EB67D) || !strings.HasPrefix(e["title"].(string), "✅ Deploy of web v2.0.9") {
		t.Errorf("the resolution: colour %v title %v", e["color"], e["title"])
	}
}

// @everyone and Markdown in a check's text stay text; many long reasons still fit
// Discord's limits (the receiver refuses what Discord would).
func TestDiscordHostileText(t *testing.T) {
	t.Parallel()
	rx := loopback.NewDiscord(t)
	ev := deployFailed()
	ev.FailedChecks[0].Name = "@everyone [free](http://evil.example)"
	for i := range 30 {
		ev.FailedChecks = append(ev.FailedChecks, alerting.FailedCheck{Name: fmt.Sprintf("check-%d", i), Outcome: "fail",
			Summary: strings.Repeat("a long reason ``` with fences ", 100), RunURL: fmt.Sprintf("http://vigil.example/runs/%d", i)})
	}
	if err := newNotifier(t, discordConfig(rx), nil).Deliver(t.Context(), ev, alerting.State{}); err != nil {
		t.Fatal(err)
	}
	body := string(rx.Accepted()[0].Body)
	if strings.Contains(body, "@everyone") {
		t.Errorf("a check name reads as a mention: %s", body)
	}
	ev = deployFailed()
	ev.Summary = "see [free](http://evil.example) **now**"
	if err := newNotifier(t, discordConfig(rx), nil).Deliver(t.Context(), ev, alerting.State{}); err != nil {
		t.Fatal(err)
	}
	if d := embed(t, rx.Accepted()[1])["description"].(string); !strings.Contains(d, `see \[free\](http://evil.example) \*\*now\*\*`) {
		t.Errorf("Markdown in a reason is not escaped: %q", d)
	}
	if !strings.Contains(body, "more failing checks") {
		t.Errorf("the checks left out are not counted: %s", body)
	}
}

func TestDiscordHostileReceiver(t *testing.T) {
	t.Parallel()
	rx := loopback.NewDiscord(t)
	testHostileReceiver(t, receiver{fail: rx.Fail, secrets: []string{loopback.DiscordToken}, plain: true,
		build: func(t *testing.T, timeout time.Duration) alerting.Notifier {
			cfg := discordConfig(rx)
			cfg.Timeout = timeout
			return newNotifier(t, cfg, nil)
		}})
}

// Discord's 429 says how long in its body too; a fraction of a second rounds up.
func TestDiscordRateLimitBody(t *testing.T) {
	t.Parallel()
	rx := loopback.NewDiscord(t)
	rx.Fail(loopback.Fault{Status: 429, ContentType: "application/json",
		Body: []byte(`{"message": "You are being rate limited.", "retry_after": 1.2, "global": false}`)})
	err := newNotifier(t, discordConfig(rx), nil).Deliver(t.Context(), deployFailed(), alerting.State{})
	if d, ok := alerting.RetryAfter(err); !ok || d != 2*time.Second || alerting.Permanent(err) {
		t.Fatalf("Deliver = %v; RetryAfter %v %v, want 2s", err, d, ok)
	}
}

// A deleted webhook, dry run, a bad url: errors that say what to do, never the token.
func TestDiscordErrorsAndDryRun(t *testing.T) {
	t.Parallel()
	rx := loopback.NewDiscord(t)
	cfg := discordConfig(rx)
	cfg.URL = strings.Replace(cfg.URL, loopback.DiscordToken, "revoked-token-0123456789", 1)
	err := newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{})
	if err == nil || !alerting.Permanent(err) || !strings.Contains(err.Error(), "copy the channel's webhook URL again") {
		t.Fatalf("a refused token: %v", err)
	}
	assertNoSecret(t, []string{"revoked-token-0123456789"}, err.Error())
	cfg = discordConfig(rx)
	cfg.DryRun = true
	err = newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{})
	if !errors.Is(err, alerting.ErrDryRun) || !strings.Contains(err.Error(), "/api/webhooks/1234567890/****") {
		t.Fatalf("dry run: %v", err)
	}
	assertNoSecret(t, []string{loopback.DiscordToken}, err.Error())
	if n := len(rx.Accepted()); n != 0 {
		t.Errorf("%d messages accepted", n)
	}
	_, err = alerting.New(&configs.Notifier{Type: configs.NotifierDiscord, Name: "d"}, alerting.Options{})
	if err == nil || !strings.Contains(err.Error(), "notifiers.d.url") {
		t.Errorf("New without url: %v", err)
	}
}

// The embed's colour by verdict: yellow for inconclusive, blue for what is neither a
// failure nor a pass (an action's result). Red and green: TestDiscordEmbeds.
func TestDiscordColours(t *testing.T) {
	t.Parallel()
	rx := loopback.NewDiscord(t)
	inconclusive := deployFailed()
	inconclusive.Name, inconclusive.Key = configs.EventDeployInconclusive, "d-42:deploy_inconclusive"
	n := newNotifier(t, discordConfig(rx), nil)
	st := alerting.State{}
	for _, ev := range []*alerting.Event{inconclusive, actionResult()} {
		if err := n.Deliver(t.Context(), ev, st); err != nil {
			t.Fatalf("%s: %v", ev.Name, err)
		}
	}
	posts := rx.Accepted()
	if c := embed(t, posts[0])["color"]; c != float64(0xECB22E) {
		t.Errorf("inconclusive: colour %v", c)
	}
	if c := embed(t, posts[1])["color"]; c != float64(0x4A90D9) {
		t.Errorf("action result: colour %v", c)
	}
}

// Many failing checks with short reasons stay under Discord's 25 fields (the size limit
// does not trim them): the facts, the first checks and a count of the rest.
func TestDiscordFieldLimit(t *testing.T) {
	t.Parallel()
	rx := loopback.NewDiscord(t)
	ev := deployFailed()
	ev.LastDeploy = &alerting.LastDeploy{ID: "d-41", Service: "web", Version: "v2.0.9", Status: "passed",
		RegisteredAt: time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC), Before: 7200}
	for i := range 40 {
		ev.FailedChecks = append(ev.FailedChecks, alerting.FailedCheck{Name: fmt.Sprintf("c%d", i), Outcome: "fail", Summary: "502"})
	}
	if err := newNotifier(t, discordConfig(rx), nil).Deliver(t.Context(), ev, alerting.State{}); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	e := embed(t, rx.Accepted()[0])
	fields, _ := e["fields"].([]any)
	last, _ := fields[len(fields)-1].(map[string]any)
	if len(fields) > 25 || !strings.Contains(fmt.Sprint(last["value"]), "more failing checks") {
		t.Errorf("%d fields, the last %v", len(fields), last)
	}
}
