package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// A failed deploy whose message each chat service refuses for its content — Slack's
// invalid_blocks, Discord's 400 50035 Invalid Form Body, a Teams 400 — reaches every channel
// in its plain form, and its outbox entries are delivered, not dead; the next good deploy's
// all-clear follows it (in Slack, in the thread of the plain root, which it updates). (The
// three entries were dead-lettered: nobody on the channels heard of the failed deploy.)
func TestAFailedDeployRefusedForItsFormattingStillReachesTheChannels(t *testing.T) {
	tg := newTarget(t)
	slack := loopback.NewSlack(t)
	slack.Fail("chat.postMessage", loopback.Fault{SlackError: "invalid_blocks"})
	discord := loopback.NewDiscord(t)
	discord.Fail(loopback.Fault{Status: 400, ContentType: "application/json",
		Body: []byte(`{"message":"Invalid Form Body","code":50035,"errors":{"embeds":{"0":{"description":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH","message":"Must be 4096 or fewer in length."}]}}}}}`)})
	teams := loopback.NewTeams(t)
	teams.Fail(loopback.Fault{Status: 400, ContentType: "application/json", Body: []byte(`{"error":{"code":"InvalidRequestContent"}}`)})
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2",
		service: "on_failure: [slack, teams, discord]",
		top:     "notifiers:" + slackNotifier(slack) + chatNotifier("teams", "teams", teams) + chatNotifier("discord", "discord", discord)}.String())

	tg.set("broken")
	bad := h.deploy("web", "v2")
	if d := h.verdict(bad, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("status %v", d["status"])
	}
	h.outboxSettled(bad+":deploy_failed", map[string]string{"slack": store.OutboxDelivered, "teams": store.OutboxDelivered,
		"discord": store.OutboxDelivered})
	roots := slack.Roots()
	if len(roots) != 1 || len(roots[0].Blocks) != 0 || !strings.Contains(roots[0].Text, "failed verification") ||
		!strings.Contains(roots[0].Text, "/deploys/"+bad) {
		t.Fatalf("Slack roots %+v; want the failure as text, with its status page", roots)
	}
	if got := discord.Accepted(); len(got) != 1 || got[0].Payload["embeds"] != nil || !strings.Contains(string(got[0].Body), "failed verification") {
		t.Errorf("Discord took %d messages; want the failure as content alone", len(got))
	}
	if got := teams.Accepted(); len(got) != 1 || !strings.Contains(string(got[0].Body), "failed verification") {
		t.Errorf("Teams took %d cards; want the failure's plain card", len(got))
	}
	if !strings.Contains(h.logs.String(), "invalid_blocks") || !strings.Contains(h.logs.String(), "50035") {
		t.Errorf("the refusals are not in the log")
	}

	tg.set("good")
	good := h.deploy("web", "v3")
	if d := h.verdict(good, 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("status %v", d["status"])
	}
	h.outboxSettled(good+":deploy_passed", map[string]string{"slack": store.OutboxDelivered, "teams": store.OutboxDelivered,
		"discord": store.OutboxDelivered})
	root := slack.Roots()[0]
	if replies := slack.Replies(root.TS); len(replies) != 1 || !strings.Contains(replies[0].BlocksText(), "Resolved") {
		t.Errorf("%d replies in the plain root's thread; want the resolution", len(replies))
	}
	if root.Updates != 1 || !strings.Contains(root.Text, "Status: Resolved") || string(root.Blocks) != "[]" {
		t.Errorf("root after the all-clear: %d updates, %q, blocks %s; want it updated, still text", root.Updates, root.Text, root.Blocks)
	}
	if len(discord.Accepted()) != 2 || len(teams.Accepted()) != 2 {
		t.Errorf("Discord took %d, Teams %d; want the failure and its resolution each", len(discord.Accepted()), len(teams.Accepted()))
	}
}
