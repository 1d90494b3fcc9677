package alerting_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

func slackConfig(api string) *configs.Notifier {
	return &configs.Notifier{Type: configs.NotifierSlack, Name: "ops", Token: loopback.SlackToken,
		Channel: "#deploys", APIURL: api}
}

func newSlack(t *testing.T) (*loopback.Slack, alerting.Notifier, *vigiltest.Buffer) {
	srv := loopback.NewSlack(t)
	logs := &vigiltest.Buffer{}
	return srv, newNotifier(t, slackConfig(srv.APIURL()), logs), logs
}

func TestSlackDeployFailedMessage(t *testing.T) {
	t.Parallel()
	srv, n, _ := newSlack(t)
	st := alerting.State{}
	if err := n.Deliver(t.Context(), deployFailed(), st); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	roots := srv.Roots()
	if len(roots) != 1 || len(srv.Messages()) != 1 {
		t.Fatalf("Slack got %d messages, %d roots; want 1 root", len(srv.Messages()), len(roots))
	}
	root := roots[0]
	// The blocks are valid Block Kit as slack-go reads it.
	var blocks slack.Blocks
	if err := json.Unmarshal(root.Blocks, &blocks); err != nil || len(blocks.BlockSet) < 4 {
		t.Fatalf("blocks %s: %v", root.Blocks, err)
	}
	if blocks.BlockSet[0].BlockType() != slack.MBTHeader {
		t.Errorf("first block is %s, want a header", blocks.BlockSet[0].BlockType())
	}
	text := root.BlocksText()
	for _, want := range []string{
		"web", "v2.1.0", "prod", "abc1234", // service, version, environment, commit
		"failed verification",
		"TypeError: e.init is not a function at https://web.example/app.min.js:1:2045", // first reason, file:line
		"status == 200 was false: status = 502",
		"<http://vigil.example/runs/981|Run>", "<http://vigil.example/runs/982|Run>", // links to the runs
		"4bf92f3577b34da6a3ce929d0e0e4736",                // trace id
		"<http://vigil.example/deploys/d-42|Status page>", // the status page
		"rollback-web", "calling rollback",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("root message lacks %q:\n%s", want, text)
		}
	}
	if root.Text == "" || !strings.Contains(root.Text, "failed verification") {
		t.Errorf("notification text %q", root.Text)
	}
	// The screenshot went into the thread, bytes intact.
	files := srv.Files()
	if len(files) != 1 {
		t.Fatalf("%d files shared, want 1", len(files))
	}
	if !bytes.Equal(files[0].Data, png) {
		t.Errorf("screenshot arrived with %d bytes, want the %d sent", len(files[0].Data), len(png))
	}
	if files[0].ThreadTS != root.TS || files[0].Channel != root.Channel || !strings.HasSuffix(files[0].Filename, ".png") {
		t.Errorf("file %+v is not in the thread of %s/%s", files[0], root.Channel, root.TS)
	}
	if st["ts"] != root.TS || st["channel"] != root.Channel {
		t.Errorf("state %v does not hold the thread", st)
	}
	for _, c := range srv.Calls() {
		if !c.Authorized {
			t.Errorf("%s arrived without the token", c.Method)
		}
	}
}

func TestSlackLaterEventsUpdateTheSameThread(t *testing.T) {
	t.Parallel()
	srv, n, _ := newSlack(t)
	st := alerting.State{}
	for _, ev := range []*alerting.Event{deployFailed(), actionResult(), resolvedBy()} {
		if err := n.Deliver(t.Context(), ev, st); err != nil {
			t.Fatalf("Deliver(%s): %v", ev.Name, err)
		}
	}
	roots := srv.Roots()
	if len(roots) != 1 {
		t.Fatalf("%d root messages, want 1: later events must stay in the thread", len(roots))
	}
	root := roots[0]
	replies := srv.Replies(root.TS)
	if len(replies) != 2 {
		t.Fatalf("%d replies in the thread, want 2", len(replies))
	}
	if !strings.Contains(replies[0].BlocksText(), "rollback-web accepted the rollback of web v2.1.0: production goes back to v2.0.9") {
		t.Errorf("action_result reply:\n%s", replies[0].BlocksText())
	}
	if r := replies[1].BlocksText(); !strings.Contains(r, "Resolved") || !strings.Contains(r, "v2.0.9") {
		t.Errorf("resolution reply:\n%s", r)
	}
	if root.Updates != 2 {
		t.Errorf("root updated %d times, want 2", root.Updates)
	}
	text := root.BlocksText()
	for _, want := range []string{"Resolved", "accepted the rollback of web v2.1.0: production goes back to v2.0.9", "Failed", "TypeError: e.init"} {
		if !strings.Contains(text, want) {
			t.Errorf("updated root lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(root.Text, "Resolved") {
		t.Errorf("updated notification text %q", root.Text)
	}
	// Delivering the same events again (an outbox replay) changes nothing.
	calls := len(srv.Calls())
	for _, ev := range []*alerting.Event{deployFailed(), actionResult(), resolvedBy()} {
		if err := n.Deliver(t.Context(), ev, st); err != nil {
			t.Fatalf("replay of %s: %v", ev.Name, err)
		}
	}
	if got := len(srv.Calls()); got != calls {
		t.Errorf("a replay made %d more calls", got-calls)
	}
}

func TestSlackCheckIncident(t *testing.T) {
	t.Parallel()
	srv, n, _ := newSlack(t)
	st := alerting.State{}
	if err := n.Deliver(t.Context(), checkEvent(configs.EventCheckFailed, "1"), st); err != nil {
		t.Fatal(err)
	}
	if err := n.Deliver(t.Context(), checkEvent(configs.EventCheckRecovered, "1"), st); err != nil {
		t.Fatal(err)
	}
	roots := srv.Roots()
	if len(roots) != 1 || len(srv.Replies(roots[0].TS)) != 1 {
		t.Fatalf("roots %d, want 1 with 1 reply; messages %+v", len(roots), srv.Messages())
	}
	if !strings.Contains(roots[0].BlocksText(), "Recovered") || !strings.Contains(roots[0].BlocksText(), "#app[data-ready] never appeared") {
		t.Errorf("root:\n%s", roots[0].BlocksText())
	}
}

func TestSlackQuietWithoutThread(t *testing.T) {
	t.Parallel()
	srv, n, _ := newSlack(t)
	// A deploy that passes with no open incident, and a recovery nobody heard the failure
	// of, post nothing unless events lists them.
	fresh := resolvedBy()
	fresh.Incident = "d-43"
	for _, ev := range []*alerting.Event{fresh, checkEvent(configs.EventCheckRecovered, "9")} {
		if err := n.Deliver(t.Context(), ev, alerting.State{}); !errors.Is(err, alerting.ErrSkipped) {
			t.Fatalf("%s without a thread: %v; want it skipped", ev.Name, err)
		}
	}
	if len(srv.Calls()) != 0 {
		t.Fatalf("Slack got %d calls", len(srv.Calls()))
	}
	cfg := slackConfig(srv.APIURL())
	cfg.Events = []string{configs.EventDeployPassed, configs.EventDeployStarted}
	loud := newNotifier(t, cfg, nil)
	if err := loud.Deliver(t.Context(), fresh, alerting.State{}); err != nil {
		t.Fatal(err)
	}
	if len(srv.Roots()) != 1 || !strings.Contains(srv.Roots()[0].BlocksText(), "passed verification") {
		t.Fatalf("listed deploy_passed: %+v", srv.Messages())
	}
}

func TestSlackWants(t *testing.T) {
	t.Parallel()
	n := newNotifier(t, slackConfig("http://127.0.0.1:1/api/"), nil)
	want := map[string]bool{
		configs.EventDeployFailed: true, configs.EventDeployHalted: true, configs.EventDeployInconclusive: true,
		configs.EventCheckFailed: true, configs.EventCheckRecovered: true, configs.EventDeployPassed: true,
		alerting.EventActionResult: true, configs.EventDeployStarted: false,
	}
	for ev, w := range want {
		if n.Wants(ev) != w {
			t.Errorf("default Wants(%s) = %v", ev, !w)
		}
	}
	cfg := slackConfig("http://127.0.0.1:1/api/")
	cfg.Events = []string{configs.EventCheckFailed}
	n = newNotifier(t, cfg, nil)
	if n.Wants(configs.EventDeployFailed) || !n.Wants(configs.EventCheckFailed) || !n.Wants(configs.EventCheckRecovered) {
		t.Errorf("events [check_failed] filters wrongly")
	}
}

func TestSlackRateLimited(t *testing.T) {
	t.Parallel()
	srv, n, _ := newSlack(t)
	srv.Fail("chat.postMessage", loopback.Fault{Status: 429, RetryAfter: "3"})
	st := alerting.State{}
	err := n.Deliver(t.Context(), deployFailed(), st)
	if d, ok := alerting.RetryAfter(err); !ok || d != 3*time.Second {
		t.Fatalf("RetryAfter(%v) = %v %v, want 3s", err, d, ok)
	}
	if alerting.Permanent(err) || len(srv.Messages()) != 0 {
		t.Fatalf("429: permanent %v, messages %d", alerting.Permanent(err), len(srv.Messages()))
	}
	// A Retry-After past what a Duration holds was read as whatever the overflow gave; it is
	// at most a day, as for every other receiver (the outbox waits at most 5 minutes).
	srv.Fail("chat.postMessage", loopback.Fault{Status: 429, RetryAfter: "99999999999"})
	err = n.Deliver(t.Context(), deployFailed(), st)
	if d, ok := alerting.RetryAfter(err); !ok || d != 24*time.Hour || !strings.Contains(err.Error(), "rate limited by Slack") {
		t.Fatalf("a huge Retry-After: RetryAfter(%v) = %v %v, want 24h", err, d, ok)
	}
	if err := n.Deliver(t.Context(), deployFailed(), st); err != nil {
		t.Fatalf("retry: %v", err)
	}
	// Rate limited in the middle: the message is out, the upload is asked to wait.
	srv.Fail("files.getUploadURLExternal", loopback.Fault{Status: 429, RetryAfter: "11"})
	st2 := alerting.State{}
	ev := deployFailed()
	ev.Incident, ev.Key = "d-50", "d-50:deploy_failed"
	err = n.Deliver(t.Context(), ev, st2)
	if d, ok := alerting.RetryAfter(err); !ok || d != 11*time.Second {
		t.Fatalf("upload 429: RetryAfter(%v) = %v %v", err, d, ok)
	}
	if err := n.Deliver(t.Context(), ev, st2); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if len(srv.Roots()) != 2 || len(srv.Messages()) != 2 || len(srv.Files()) != 2 {
		t.Errorf("after retries: %d roots, %d messages, %d files; want 2, 2, 2 (nothing posted twice)",
			len(srv.Roots()), len(srv.Messages()), len(srv.Files()))
	}
}

func TestSlackServerErrorIsRetryable(t *testing.T) {
	t.Parallel()
	srv, n, _ := newSlack(t)
	srv.Fail("chat.postMessage", loopback.Fault{Status: 500, Times: 2, Body: []byte("<html>oops</html>")})
	st := alerting.State{}
	for i := range 2 {
		err := n.Deliver(t.Context(), deployFailed(), st)
		if err == nil || alerting.Permanent(err) {
			t.Fatalf("attempt %d: %v, want a retryable error", i, err)
		}
		if _, ok := alerting.RetryAfter(err); ok || !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "oops") {
			t.Errorf("attempt %d: %v", i, err)
		}
	}
	if err := n.Deliver(t.Context(), deployFailed(), st); err != nil {
		t.Fatal(err)
	}
	if len(srv.Messages()) != 1 {
		t.Errorf("%d messages", len(srv.Messages()))
	}
}

func TestSlackPermanentErrors(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"invalid_auth", "channel_not_found", "not_in_channel", "token_revoked"} {
		srv, n, logs := newSlack(t)
		srv.Fail("chat.postMessage", loopback.Fault{SlackError: code})
		err := n.Deliver(t.Context(), deployFailed(), alerting.State{})
		if !alerting.Permanent(err) || !strings.Contains(err.Error(), code) {
			t.Errorf("%s: Deliver = %v, want a permanent error naming it", code, err)
		}
		assertNoSecret(t, []string{loopback.SlackToken}, err.Error(), logs.String())
	}
	// A wrong token is invalid_auth at the server, not an injected fault.
	srv := loopback.NewSlack(t)
	cfg := slackConfig(srv.APIURL())
	cfg.Token = "xoxb-wrong-secret-token"
	err := newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{})
	if !alerting.Permanent(err) || !strings.Contains(err.Error(), "invalid_auth") {
		t.Fatalf("wrong token: %v", err)
	}
	assertNoSecret(t, []string{"xoxb-wrong-secret-token"}, err.Error())
	// A transient Slack error code is retried.
	srv.Fail("chat.postMessage", loopback.Fault{SlackError: "internal_error"})
	err = newNotifier(t, slackConfig(srv.APIURL()), nil).Deliver(t.Context(), deployFailed(), alerting.State{})
	if err == nil || alerting.Permanent(err) {
		t.Fatalf("internal_error: %v, want retryable", err)
	}
}

func TestSlackRetryAfterPartialSuccessPostsNoDuplicate(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"files.getUploadURLExternal", "upload", "files.completeUploadExternal", "chat.update"} {
		t.Run(step, func(t *testing.T) {
			srv, n, _ := newSlack(t)
			st := alerting.State{}
			first := []*alerting.Event{deployFailed()}
			if step == "chat.update" {
				if err := n.Deliver(t.Context(), deployFailed(), st); err != nil {
					t.Fatal(err)
				}
				first = []*alerting.Event{actionResult()}
			}
			srv.Fail(step, loopback.Fault{Status: 500})
			err := n.Deliver(t.Context(), first[0], st)
			if err == nil || alerting.Permanent(err) {
				t.Fatalf("%s failing: Deliver = %v, want retryable", step, err)
			}
			// The caller saved st even though Deliver failed; the retry uses it.
			if err := n.Deliver(t.Context(), first[0], st); err != nil {
				t.Fatalf("retry: %v", err)
			}
			posts := 0
			for _, c := range srv.CallsTo("chat.postMessage") {
				if c.OK() {
					posts++
				}
			}
			wantPosts := 1
			if step == "chat.update" {
				wantPosts = 2 // the root, then one reply
			}
			if posts != wantPosts || len(srv.Roots()) != 1 {
				t.Errorf("%d messages posted, %d roots; want %d and 1", posts, len(srv.Roots()), wantPosts)
			}
			if len(srv.Files()) != 1 {
				t.Errorf("%d screenshots shared, want 1", len(srv.Files()))
			}
			if step == "chat.update" && !strings.Contains(srv.Roots()[0].BlocksText(), "production goes back to v2.0.9") {
				t.Errorf("root not updated after the retry")
			}
		})
	}
}

// A screenshot upload that keeps failing is given up after three attempts, the message
// posted and the entry delivered: the page is not dead-lettered for its evidence, nor its
// incident's recovery held behind it for the entry's eight attempts.
func TestSlackScreenshotIsBestEffort(t *testing.T) {
	t.Parallel()
	srv, n, logs := newSlack(t)
	srv.Fail("upload", loopback.Fault{Status: 500, Times: 100})
	st := alerting.State{}
	var err error
	for range 3 {
		if err = n.Deliver(t.Context(), deployFailed(), st); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("the third attempt with the upload failing: %v; want the message delivered without its screenshot", err)
	}
	if len(srv.Roots()) != 1 || len(srv.Files()) != 0 || !strings.Contains(logs.String(), "screenshot not posted") {
		t.Errorf("%d roots, %d files; the give-up logged: %v", len(srv.Roots()), len(srv.Files()), strings.Contains(logs.String(), "screenshot not posted"))
	}
}

func TestSlackRootGoneStillReplies(t *testing.T) {
	t.Parallel()
	srv, n, logs := newSlack(t)
	st := alerting.State{}
	if err := n.Deliver(t.Context(), deployFailed(), st); err != nil {
		t.Fatal(err)
	}
	srv.Fail("chat.update", loopback.Fault{SlackError: "message_not_found"})
	if err := n.Deliver(t.Context(), actionResult(), st); err != nil {
		t.Fatalf("a deleted root must not fail the reply: %v", err)
	}
	if len(srv.Replies(st["ts"])) != 1 || !strings.Contains(logs.String(), "message_not_found") {
		t.Errorf("replies %d, logs %s", len(srv.Replies(st["ts"])), logs)
	}
}

func TestSlackEscapesUntrustedText(t *testing.T) {
	t.Parallel()
	srv, n, _ := newSlack(t)
	ev := deployFailed()
	ev.FailedChecks[1].Summary = "body contained <!channel> & <http://evil.example|click>"
	if err := n.Deliver(t.Context(), ev, alerting.State{}); err != nil {
		t.Fatal(err)
	}
	text := srv.Roots()[0].BlocksText()
	if strings.Contains(text, "<!channel>") || !strings.Contains(text, "&lt;!channel&gt; &amp; &lt;http://evil.example|click&gt;") {
		t.Errorf("untrusted text is not escaped:\n%s", text)
	}
}

func TestSlackHostileAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		fault    loopback.Fault
		want     string
		deadline time.Duration
	}{
		{"garbage 200", loopback.Fault{Status: 200, Body: []byte("<html>captive portal</html>")}, "not a Web API answer", 2 * time.Second},
		{"empty 200", loopback.Fault{Status: 200}, "not a Web API answer", 2 * time.Second},
		// A generous deadline: the cap, not the deadline, must end the huge answers.
		{"huge 200", loopback.Fault{Status: 200, Body: []byte(`{"ok":true,"x":"`), BodySize: 64 << 20}, "over 4 MiB", 20 * time.Second},
		{"huge 502", loopback.Fault{Status: 502, BodySize: 64 << 20}, "502", 20 * time.Second},
		{"hang", loopback.Fault{Hang: true}, "timeout", 300 * time.Millisecond},
		{"stalled body", loopback.Fault{Status: 200, Stall: true}, "timeout", 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, n, _ := newSlack(t)
			srv.Fail("chat.postMessage", tt.fault)
			start := time.Now()
			err := n.Deliver(ctxTimeout(t, tt.deadline), deployFailed(), alerting.State{})
			if err == nil || alerting.Permanent(err) {
				t.Fatalf("Deliver = %v, want a retryable error", err)
			}
			// Not a speed: the deadline ended the attempt (a hang would run to the test's
			// timeout); the margin is for a loaded machine under -race.
			if took := time.Since(start); took > tt.deadline+10*time.Second {
				t.Errorf("took %v, past its %v deadline", took, tt.deadline)
			}
			if !strings.Contains(err.Error(), tt.want) || len(err.Error()) > 600 {
				t.Errorf("error %.400q does not say %q", err, tt.want)
			}
		})
	}
}

func TestSlackDryRun(t *testing.T) {
	t.Parallel()
	srv := loopback.NewSlack(t)
	cfg := slackConfig(srv.APIURL())
	cfg.DryRun = true
	err := newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{})
	if !errors.Is(err, alerting.ErrDryRun) || len(srv.Calls()) != 0 {
		t.Fatalf("dry run: %v, %d calls", err, len(srv.Calls()))
	}
	assertNoSecret(t, []string{loopback.SlackToken}, err.Error())
}

func TestSlackDeployStartedOpensTheThread(t *testing.T) {
	t.Parallel()
	srv := loopback.NewSlack(t)
	cfg := slackConfig(srv.APIURL())
	cfg.Events = []string{configs.EventDeployStarted, configs.EventDeployFailed, configs.EventDeployPassed}
	n := newNotifier(t, cfg, nil)
	started := func(id string) *alerting.Event {
		return &alerting.Event{Name: configs.EventDeployStarted, Key: id + ":deploy_started", Incident: id,
			Deploy: &alerting.Deploy{ID: id, Service: "web", Version: "v2.1.0", Environment: "prod"}, Service: "web"}
	}

	// Started, then failed: one thread, whose root now shows the failure's evidence.
	st := alerting.State{}
	for _, ev := range []*alerting.Event{started("d-42"), deployFailed()} {
		if err := n.Deliver(t.Context(), ev, st); err != nil {
			t.Fatal(err)
		}
	}
	roots := srv.Roots()
	if len(roots) != 1 || len(srv.Replies(roots[0].TS)) != 1 || len(srv.Files()) != 1 {
		t.Fatalf("%d roots, %d files, want 1 root with 1 reply and 1 file: %+v", len(roots), len(srv.Files()), srv.Messages())
	}
	if text := roots[0].BlocksText(); !strings.Contains(text, "failed verification") || !strings.Contains(text, "TypeError: e.init") ||
		strings.Contains(text, "Verifying the deploy") {
		t.Errorf("root after the failure:\n%s", text)
	}

	// Started, then passed: "Passed verification", not "Resolved", on the root and in
	// the reply; the root's header is the verdict, no longer "Verifying".
	st = alerting.State{}
	passed := &alerting.Event{Name: configs.EventDeployPassed, Key: "d-43:deploy_passed", Incident: "d-43",
		Deploy:  &alerting.Deploy{ID: "d-43", Service: "web", Version: "v2.1.0", Environment: "prod"},
		Service: "web", Summary: "6 of 6 checks passed"}
	for _, ev := range []*alerting.Event{started("d-43"), passed} {
		if err := n.Deliver(t.Context(), ev, st); err != nil {
			t.Fatal(err)
		}
	}
	roots = srv.Roots()
	if len(roots) != 2 {
		t.Fatalf("%d roots", len(roots))
	}
	text := roots[1].BlocksText()
	if !strings.Contains(text, "Passed verification") || !strings.Contains(text, "Deploy of web v2.1.0 in prod passed verification") ||
		strings.Contains(text, "Resolved") || strings.Contains(text, "Verifying the deploy") {
		t.Errorf("root of a passing deploy:\n%s", text)
	}
	replies := srv.Replies(roots[1].TS)
	if len(replies) != 1 || !strings.Contains(replies[0].BlocksText(), "Passed verification") || strings.Contains(replies[0].BlocksText(), "Resolved") {
		t.Errorf("replies to a passing deploy: %+v", replies)
	}
}

// A deploy_passed a notifier posts on its own (no failure before it) says it passed.
func TestSlackPassOnItsOwnIsNotAResolution(t *testing.T) {
	t.Parallel()
	srv := loopback.NewSlack(t)
	cfg := slackConfig(srv.APIURL())
	cfg.Events = []string{configs.EventDeployPassed}
	n := newNotifier(t, cfg, nil)
	fresh := resolvedBy()
	fresh.Incident = "d-43"
	if err := n.Deliver(t.Context(), fresh, alerting.State{}); err != nil {
		t.Fatal(err)
	}
	roots := srv.Roots()
	if len(roots) != 1 {
		t.Fatalf("%d roots", len(roots))
	}
	if text := roots[0].BlocksText(); !strings.Contains(text, "Passed verification") || strings.Contains(text, "Resolved") {
		t.Errorf("root:\n%s", text)
	}
}
