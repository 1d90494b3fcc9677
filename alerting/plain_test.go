package alerting_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// Slack refuses a failed deploy's message for its content (invalid_blocks: a block it will
// not take; msg_too_long): the page is posted again at once as text alone, with the reason
// and the status page, and the thread goes on: the rollback's result and the all-clear are
// replies in it, and the root's updates stay text. Every Deliver succeeds, so the outbox
// records the entry delivered. (It was a permanent error: the page dead-lettered, nobody
// on the channel told.)
func TestSlackRefusedBlocksArePostedAsText(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"invalid_blocks", "msg_too_long"} {
		t.Run(code, func(t *testing.T) {
			t.Parallel()
			srv, n, logs := newSlack(t)
			srv.Fail("chat.postMessage", loopback.Fault{SlackError: code})
			st := alerting.State{}
			for _, ev := range []*alerting.Event{deployFailed(), actionResult(), resolvedBy()} {
				if err := n.Deliver(t.Context(), ev, st); err != nil {
					t.Fatalf("%s: %v; want it delivered", ev.Name, err)
				}
			}
			var refused, plain int
			for _, c := range srv.CallsTo("chat.postMessage") {
				switch {
				case c.Error == code:
					refused++
				case c.OK() && c.Args.Get("thread_ts") == "":
					plain++
					if len(c.Blocks) != 0 {
						t.Errorf("the second post has blocks: %s", c.Blocks)
					}
				}
			}
			if refused != 1 || plain != 1 {
				t.Fatalf("%d refused posts and %d roots in text; want one of each", refused, plain)
			}
			roots := srv.Roots()
			if len(roots) != 1 {
				t.Fatalf("%d roots, want 1", len(roots))
			}
			root := roots[0]
			for _, want := range []string{"Deploy of web v2.1.0 in prod failed verification", "TypeError: e.init is not a function",
				"Status: Resolved", "Status page: http://vigil.example/deploys/d-42", "refused the full message (" + code + ")"} {
				if !strings.Contains(root.Text, want) {
					t.Errorf("the root's text lacks %q:\n%s", want, root.Text)
				}
			}
			if root.Updates != 2 || string(root.Blocks) != "[]" {
				t.Errorf("root updated %d times, blocks %s; want 2 updates, text alone", root.Updates, root.Blocks)
			}
			for _, c := range srv.CallsTo("chat.update") {
				if !c.OK() || string(c.Blocks) != "[]" {
					t.Errorf("a root update: %s, blocks %s; want it taken, without blocks", c.Error, c.Blocks)
				}
			}
			replies := srv.Replies(root.TS)
			if len(replies) != 2 || !strings.Contains(replies[0].BlocksText(), "accepted the rollback") ||
				!strings.Contains(replies[1].BlocksText(), "Resolved") {
				t.Errorf("%d replies in the thread; want the rollback's result and the all-clear, in blocks", len(replies))
			}
			if files := srv.Files(); len(files) != 1 || files[0].ThreadTS != root.TS {
				t.Errorf("%d screenshots; want one, in the thread", len(files))
			}
			if !strings.Contains(logs.String(), "refused the message's blocks") || !strings.Contains(logs.String(), code) {
				t.Errorf("the refusal is not logged with its error:\n%s", logs)
			}
			calls := len(srv.Calls())
			for _, ev := range []*alerting.Event{deployFailed(), actionResult(), resolvedBy()} {
				if err := n.Deliver(t.Context(), ev, st); err != nil {
					t.Fatalf("replay of %s: %v", ev.Name, err)
				}
			}
			if got := len(srv.Calls()); got != calls {
				t.Errorf("a replay made %d more calls", got-calls)
			}
		})
	}
}

// A refusal of a reply's blocks posts that reply as text and leaves the root in blocks; a
// refusal of the root's update makes the root text, and its later updates are text at
// once (no refused update first).
func TestSlackRefusedReplyAndUpdate(t *testing.T) {
	t.Parallel()
	srv, n, _ := newSlack(t)
	st := alerting.State{}
	if err := n.Deliver(t.Context(), deployFailed(), st); err != nil {
		t.Fatal(err)
	}
	srv.Fail("chat.postMessage", loopback.Fault{SlackError: "invalid_blocks"})
	if err := n.Deliver(t.Context(), actionResult(), st); err != nil {
		t.Fatalf("a reply refused for its blocks: %v", err)
	}
	replies := srv.Replies(st["ts"])
	if len(replies) != 1 || len(replies[0].Blocks) != 0 || !strings.Contains(replies[0].Text, "accepted the rollback") {
		t.Fatalf("replies %+v; want the rollback's result as text", replies)
	}
	if root := srv.Roots()[0]; root.Updates != 1 || !strings.Contains(root.BlocksText(), "accepted the rollback") {
		t.Errorf("the root is no longer in blocks after a reply was refused:\n%s", root.Blocks)
	}

	srv.Fail("chat.update", loopback.Fault{SlackError: "invalid_blocks"})
	if err := n.Deliver(t.Context(), resolvedBy(), st); err != nil {
		t.Fatalf("a root update refused for its blocks: %v", err)
	}
	later := checkEvent(configs.EventCheckRecovered, "9")
	later.Key, later.Incident = "d-42:check_recovered", "d-42"
	if err := n.Deliver(t.Context(), later, st); err != nil {
		t.Fatal(err)
	}
	var updates []string
	for _, c := range srv.CallsTo("chat.update") {
		switch {
		case c.Error != "":
			updates = append(updates, c.Error)
		case string(c.Blocks) == "[]":
			updates = append(updates, "text")
		default:
			updates = append(updates, "blocks")
		}
	}
	if strings.Join(updates, " ") != "blocks invalid_blocks text text" {
		t.Errorf("root updates %q; want blocks, refused blocks, then text alone twice", updates)
	}
	if root := srv.Roots()[0]; !strings.Contains(root.Text, "Status: Recovered") || string(root.Blocks) != "[]" {
		t.Errorf("root %q, blocks %s", root.Text, root.Blocks)
	}
}

// A refusal that is not about the content (a wrong token, a missing channel, a bot not in
// it) stays permanent, and nothing is posted in its place. When Slack refuses the text too,
// that is permanent, and the error says both, with what Slack found wrong.
func TestSlackRefusalsThatStayPermanent(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"invalid_auth", "channel_not_found", "not_in_channel"} {
		srv, n, _ := newSlack(t)
		srv.Fail("chat.postMessage", loopback.Fault{SlackError: code})
		err := n.Deliver(t.Context(), deployFailed(), alerting.State{})
		if !alerting.Permanent(err) || !strings.Contains(err.Error(), code) || len(srv.CallsTo("chat.postMessage")) != 1 {
			t.Errorf("%s: %v after %d posts; want a permanent error after one", code, err, len(srv.CallsTo("chat.postMessage")))
		}
	}

	srv, n, logs := newSlack(t)
	srv.Fail("chat.postMessage", loopback.Fault{Status: 200, ContentType: "application/json",
		Body: []byte(`{"ok":false,"error":"invalid_blocks","response_metadata":{"messages":["[ERROR] must be less than 3001 characters [json-pointer:/blocks/3/text/text]"]}}`)})
	srv.Fail("chat.postMessage", loopback.Fault{SlackError: "msg_too_long"})
	st := alerting.State{}
	err := n.Deliver(t.Context(), deployFailed(), st)
	if !alerting.Permanent(err) || !strings.Contains(err.Error(), `(as text, Slack having refused its blocks: invalid_blocks): Slack said "msg_too_long"`) {
		t.Fatalf("the text refused too: %v; want a permanent error", err)
	}
	if !strings.Contains(logs.String(), "json-pointer:/blocks/3/text/text") {
		t.Errorf("the log does not say what Slack found wrong:\n%s", logs)
	}
	// The next attempt sends the text at once.
	if err := n.Deliver(t.Context(), deployFailed(), st); err != nil {
		t.Fatal(err)
	}
	if calls := srv.CallsTo("chat.postMessage"); len(calls) != 3 || len(calls[2].Blocks) != 0 {
		t.Errorf("%d posts; want the refused blocks, the refused text, then the text", len(calls))
	}
}

// Discord answers 400 50035 Invalid Form Body to an embed it will not take: the message is
// posted again as content alone (no embed), with the status page, mentions still off; the
// incident is the channel's then, so its all-clear follows. Teams refusing a card (400)
// gets the simplest card. A 401 or 404 stays permanent, nothing posted in its place.
func TestChatRefusedEmbedOrCardIsPostedPlain(t *testing.T) {
	t.Parallel()
	discord := loopback.NewDiscord(t)
	logs := &vigiltest.Buffer{}
	d := newNotifier(t, discordConfig(discord), logs)
	discord.Fail(loopback.Fault{Status: 400, ContentType: "application/json",
		Body: []byte(`{"message":"Invalid Form Body","code":50035,"errors":{"embeds":{"0":{"description":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH","message":"Must be 4096 or fewer in length."}]}}}}}`)})
	st := alerting.State{}
	for _, ev := range []*alerting.Event{deployFailed(), resolvedBy()} {
		if err := d.Deliver(t.Context(), ev, st); err != nil {
			t.Fatalf("Discord, %s: %v; want it delivered", ev.Name, err)
		}
	}
	got := discord.Accepted()
	if len(got) != 2 || len(discord.Posts()) != 3 {
		t.Fatalf("Discord took %d of %d posts; want the plain form and the all-clear, after the refusal", len(got), len(discord.Posts()))
	}
	plain := got[0].Payload
	content, _ := plain["content"].(string)
	if plain["embeds"] != nil || !strings.Contains(content, "failed verification") || !strings.Contains(content, "TypeError: e.init") ||
		!strings.Contains(content, "<http://vigil.example/deploys/d-42>") || !strings.Contains(content, "50035 Invalid Form Body") {
		t.Errorf("the plain form: %s", got[0].Body)
	}
	if am, _ := json.Marshal(plain["allowed_mentions"]); string(am) != `{"parse":[]}` {
		t.Errorf("allowed_mentions %s", am)
	}
	if got[1].Payload["embeds"] == nil {
		t.Errorf("the all-clear lost its embed: %s", got[1].Body)
	}
	if !strings.Contains(logs.String(), "the full message was refused") || !strings.Contains(logs.String(), "50035") {
		t.Errorf("the refusal is not logged:\n%s", logs)
	}

	teams := loopback.NewTeams(t)
	m := newNotifier(t, teamsConfig(teams), nil)
	teams.Fail(loopback.Fault{Status: 400, ContentType: "application/json",
		Body: []byte(`{"error":{"code":"InvalidRequestContent","message":"The card is not valid."}}`)})
	if err := m.Deliver(t.Context(), deployFailed(), alerting.State{}); err != nil {
		t.Fatalf("Teams: %v; want it delivered", err)
	}
	if got := teams.Accepted(); len(got) != 1 || strings.Contains(string(got[0].Body), "Action.OpenUrl") ||
		!strings.Contains(string(got[0].Body), "failed verification") || !strings.Contains(string(got[0].Body), "http://vigil.example/deploys/d-42") {
		t.Errorf("Teams took %d cards; want the plain one", len(got))
	}
	// A 413 (a card far over the size a workflow takes) is a refusal of the content too.
	teams.Fail(loopback.Fault{Status: 413})
	discord.Fail(loopback.Fault{Status: 413, ContentType: "application/json", Body: []byte(`{"message":"Request entity too large","code":40005}`)})
	for name, c := range map[string]struct {
		n  alerting.Notifier
		rx *loopback.Chat
	}{"teams": {m, teams}, "discord": {d, discord}} {
		before := len(c.rx.Accepted())
		if err := c.n.Deliver(t.Context(), checkEvent(configs.EventCheckFailed, "10"), alerting.State{}); err != nil ||
			len(c.rx.Accepted()) != before+1 || !strings.Contains(string(c.rx.Accepted()[before].Body), "413 Request Entity Too Large") {
			t.Errorf("%s answering 413: %v; want the plain form taken", name, err)
		}
	}

	for _, status := range []int{401, 404} {
		before := len(discord.Posts())
		discord.Fail(loopback.Fault{Status: status})
		if err := d.Deliver(t.Context(), checkEvent(configs.EventCheckFailed, "8"), alerting.State{}); !alerting.Permanent(err) ||
			len(discord.Posts()) != before+1 {
			t.Errorf("%d: %v after %d posts; want a permanent error after one", status, err, len(discord.Posts())-before)
		}
	}
}
