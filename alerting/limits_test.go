package alerting_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/configs"
)

// hostileDeploy is a failed deploy built from check results nobody bounded: 40 failing
// checks, each with a 200 KB reason (Slack's mrkdwn, a code fence, NUL, a bidi override,
// characters outside the BMP) and baseline; the same as the verdict's reason, the halt and
// a withheld webhook's why; a pipeline that passed a 5000-character version and twelve
// links of 4 KB each; 300 owners; trace links of 3 KB.
func hostileDeploy() *alerting.Event {
	ev := deployFailed()
	huge := strings.Repeat("é<!channel>```\x00\u202e𝒳 ", 200<<10/20)
	ev.Summary, ev.Halt = "home: "+huge, huge
	ev.Deploy.Version = strings.Repeat("v", 5000)
	ev.Deploy.Links = nil
	for i := range 12 {
		ev.Deploy.Links = append(ev.Deploy.Links, alerting.Link{Name: strings.Repeat("n", 4000),
			URL: "https://ci.example/" + strings.Repeat("x", 4000) + string(rune('a'+i))})
	}
	ev.Actions[0].Withheld = huge
	var failed []alerting.FailedCheck
	for i := range 40 {
		fc := ev.FailedChecks[i%2]
		fc.Name = strings.Repeat("c", 300) + string(rune('A'+i))
		fc.Summary, fc.Baseline = huge, huge
		fc.TraceURL = "https://trace.example/" + strings.Repeat("t", 3000)
		failed = append(failed, fc)
	}
	ev.FailedChecks = failed
	ev.Owners = make([]string, 300)
	for i := range ev.Owners {
		ev.Owners[i] = "U0AAAAAAAA"
	}
	return ev
}

// A check result of any size and content makes a message each chat service takes as it is
// built, within Block Kit's limits (Slack), 28 KB (Teams) and Discord's embed limits: the
// loopback receivers refuse what the services refuse. (Slack refused the root with
// invalid_blocks, a context element over 3000 characters: a withheld webhook's why and the
// pipeline's links were not cut; Teams got a card of several MB, nothing of it cut to a
// budget.)
//
// The test is of sizes, not time: Discord and Teams get a minute an attempt, as rendering
// 8 MB of hostile text under -race on a loaded machine took over the default 10 s.
func TestAHostileCheckResultFitsEveryChatService(t *testing.T) {
	t.Parallel()
	slack := loopback.NewSlack(t)
	n := newNotifier(t, slackConfig(slack.APIURL()), nil)
	st := alerting.State{}
	for _, ev := range []*alerting.Event{hostileDeploy(), actionResult(), resolvedBy()} {
		if err := n.Deliver(t.Context(), ev, st); err != nil {
			t.Errorf("Slack, %s: %v", ev.Name, err)
		}
	}
	for _, c := range slack.Calls() {
		if !c.OK() {
			t.Errorf("Slack refused %s: %s", c.Method, c.Error)
		}
	}
	if roots := slack.Roots(); len(roots) != 1 || len(roots[0].Blocks) < 10 || len(slack.Replies(roots[0].TS)) != 2 || roots[0].Updates != 2 {
		t.Errorf("Slack has %d roots; want one in blocks, with 2 replies and 2 updates", len(roots))
	}

	discord := loopback.NewDiscord(t)
	if err := newNotifier(t, &configs.Notifier{Type: configs.NotifierDiscord, URL: discord.URL(), Timeout: time.Minute}, nil).
		Deliver(t.Context(), hostileDeploy(), alerting.State{}); err != nil {
		t.Errorf("Discord: %v", err)
	}
	if posts := discord.Posts(); len(posts) != 1 || posts[0].Payload["embeds"] == nil {
		t.Errorf("Discord got %d posts; want the embed, taken at once", len(posts))
	}

	teams := loopback.NewTeams(t)
	if err := newNotifier(t, &configs.Notifier{Type: configs.NotifierTeams, URL: teams.URL(), Timeout: time.Minute}, nil).
		Deliver(t.Context(), hostileDeploy(), alerting.State{}); err != nil {
		t.Errorf("Teams: %v", err)
	}
	if posts := teams.Posts(); len(posts) != 1 || !strings.Contains(string(posts[0].Body), "more failing checks; see the status page") {
		t.Errorf("Teams got %d posts; want the card, taken at once, counting the checks it leaves out", len(posts))
	}
}
