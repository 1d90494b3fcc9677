package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
)

// The agent is SIGKILLed (OOM, a node drain) while Slack is posting the incident's root
// message: Slack posted it, the answer never came, and the agent saved nothing about the
// attempt (its notifier State is saved after an attempt ends). After the restart the
// outbox tells the retry that an earlier claim ended without a result, so the root is
// looked for in the channel's history by its metadata and adopted: one root, the State's
// thread. A channel configured by name is found among the bot's channels for its id,
// which the restarted agent never heard from a post. (The retry posted a second root: the
// incident's thread split.)
func TestAKilledAgentsSlackRootIsNotPostedTwice(t *testing.T) {
	for _, byName := range []bool{false, true} {
		t.Run(map[bool]string{false: "channel id", true: "channel name"}[byName], func(t *testing.T) {
			killedWhilePosting(t, byName)
		})
	}
}

func killedWhilePosting(t *testing.T, byName bool) {
	slack := loopback.NewSlack(t)
	channel := slack.Channel("deploys")
	if byName {
		channel = "#deploys"
	}
	slack.Fail("chat.postMessage", loopback.Fault{AcceptThenHang: true}) // posted; the answer is held
	k := newKillRig(t, newApp(t), fmt.Sprintf("{type: slack, token: %q, channel: %q, api_url: %q, timeout: 30s, max_attempts: 50}",
		loopback.SlackToken, channel, slack.APIURL()))
	k.register()
	k.waitFor("the root message was never posted", 30*time.Second, func() bool { return len(slack.Roots()) == 1 })
	k.p.kill() // Slack posted it; the answer is held
	k.p = startAgentProc(t, k.cfg, k.addr)

	_, st := k.settled("the page")
	roots := slack.Roots()
	if len(roots) != 1 {
		t.Errorf("the incident has %d root messages; want the one the killed agent posted", len(roots))
	}
	if n := len(slack.CallsTo("conversations.history")); n == 0 {
		t.Error("the retry after the restart did not look in the channel's history")
	}
	as, err := st.AlertState(t.Context(), "ops", k.deploy)
	if err != nil || len(roots) == 0 || as["ts"] != roots[0].TS || !strings.Contains(as[k.key+"/root_lookup"], "adopted") {
		t.Errorf("the State: thread %q, lookup %q (%v); want the posted root, adopted", as["ts"], as[k.key+"/root_lookup"], err)
	}
	k.stop()
}
