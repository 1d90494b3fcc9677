package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/browser"
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

// The agent is SIGKILLed while Slack shares the failure screenshot of a browser check into
// the incident's thread: files.completeUploadExternal was carried out, its answer never
// came, and the agent saved nothing of the attempt. After the restart the retry (told by
// the outbox that the earlier claim ended without a result) adopts the root from the
// channel's history, then finds the screenshot in the thread (conversations.replies lists
// the file by its name, which carries a tag of the delivery) and adopts it: one screenshot.
// (The retry uploaded it again: the thread showed the screenshot twice.)
func TestAKilledAgentsSlackScreenshotIsNotUploadedTwice(t *testing.T) {
	if _, err := browser.Find("", nil); err != nil {
		if os.Getenv("VIGIL_REQUIRE_BROWSER") != "" {
			t.Fatalf("VIGIL_REQUIRE_BROWSER is set: %v", err)
		}
		t.Skipf("Chromium is not installed (set VIGIL_REQUIRE_BROWSER=1 to make this a failure): %v", err)
	}
	slack := loopback.NewSlack(t)
	slack.Fail("files.completeUploadExternal", loopback.Fault{AcceptThenHang: true}) // shared; the answer is held
	app := newApp(t)
	k := newKillRigOf(t, app, fmt.Sprintf(`{name: home, kind: browser, url: "%s/", every: 1h, timeout: 20s, retries: 0}`, app.URL),
		fmt.Sprintf("{type: slack, token: %q, channel: %q, api_url: %q, timeout: 30s, max_attempts: 50}",
			loopback.SlackToken, slack.Channel("deploys"), slack.APIURL()))
	k.register()
	k.waitFor("the screenshot was never shared", 90*time.Second, func() bool { return len(slack.Files()) == 1 })
	k.p.kill() // Slack shared it; the answer is held
	k.p = startAgentProc(t, k.cfg, k.addr)

	_, st := k.settled("the page")
	roots, files := slack.Roots(), slack.Files()
	if len(roots) != 1 || len(files) != 1 {
		t.Fatalf("Slack has %d root messages and %d files; want the one root and the one screenshot the killed agent posted", len(roots), len(files))
	}
	if files[0].ThreadTS != roots[0].TS || len(files[0].Data) < 8 || string(files[0].Data[1:4]) != "PNG" {
		t.Errorf("the file is not a PNG in the incident's thread %s: thread %s, %d bytes", roots[0].TS, files[0].ThreadTS, len(files[0].Data))
	}
	if n := len(slack.CallsTo("conversations.replies")); n == 0 {
		t.Error("the retry after the restart did not look in the thread")
	}
	as, err := st.AlertState(t.Context(), "ops", k.deploy)
	if done := k.key + "/file/0"; err != nil || as[done] != files[0].ID || !strings.Contains(as[done+"/lookup"], "adopted") {
		t.Errorf("the State: screenshot %q, lookup %q (%v); want %s, adopted", as[done], as[done+"/lookup"], err, files[0].ID)
	}
	k.stop()
}
