package agent

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/smtptest"
	"github.com/vigil-monitor/vigil/store"
)

// mailNotifier is an email notifier sending to srv over STARTTLS with AUTH.
func mailNotifier(name string, srv *smtptest.Server) string {
	return fmt.Sprintf(`
  %s:
    type: email
    host: %s
    port: %d
    from: "vigil <vigil@example.com>"
    to: [oncall@example.com]
    username: %s
    password: %s
    tls: {ca_file: %q}`, name, srv.Host(), srv.Port(), smtptest.Username, smtptest.Password, srv.CAFile)
}

// lostFailures starts an agent whose service routes failures to Teams, Discord and email
// (and to more, in also), and queues a refusal for good of each channel's next message. (Not
// a 400: that refuses the message's content, and its plain form goes instead, see
// TestAFailedDeployRefusedForItsFormattingStillReachesTheChannels.)
func lostFailures(t *testing.T, tg *target, also, notifiers string) (*harness, map[string]*loopback.Chat, *smtptest.Server) {
	teams := loopback.NewTeams(t)
	teams.Fail(loopback.Fault{Status: 403, Body: []byte("Forbidden: the flow's owner left")})
	discord := loopback.NewDiscord(t)
	discord.Fail(loopback.Fault{Status: 404, Body: []byte(`{"message": "Unknown Webhook", "code": 10015}`), ContentType: "application/json"})
	smtp := smtptest.Start(t, smtptest.Options{})
	smtp.Fail("MAIL", 554, "sender rejected")
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2",
		service: "on_failure: [" + also + "teams, discord, mail]",
		top: "notifiers:" + notifiers + chatNotifier("teams", "teams", teams) + chatNotifier("discord", "discord", discord) +
			mailNotifier("mail", smtp)}.String())
	return h, map[string]*loopback.Chat{"teams": teams, "discord": discord}, smtp
}

// channelStates wants status for each of the three channels, and more.
func channelStates(status string, more map[string]string) map[string]string {
	out := map[string]string{"teams": status, "discord": status, "mail": status}
	for n, s := range more {
		out[n] = s
	}
	return out
}

// The channels without threads (Teams, Discord, email) refuse a failed deploy's message for
// good, so it is dead-lettered. The all-clear of that failure, which nobody on those
// channels saw, is not sent, and it is recorded as skipped, with why, in the API, the
// metric and the log, where it was recorded as delivered though nothing was sent. So is a
// deploy that passes with no incident. The dead failure is not sent after the all-clear it
// missed.
func TestTheAllClearOfALostFailureIsSkippedNotDelivered(t *testing.T) {
	tg := newTarget(t)
	h, chats, smtp := lostFailures(t, tg, "", "")

	tg.set("broken")
	bad := h.deploy("web", "v2")
	if d := h.verdict(bad, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("status %v", d["status"])
	}
	openers := h.outboxSettled(bad+":deploy_failed", channelStates(store.OutboxDead, nil))

	tg.set("good")
	good := h.deploy("web", "v3")
	if d := h.verdict(good, 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("status %v", d["status"])
	}
	for _, e := range h.outboxSettled(good+":deploy_passed", channelStates(store.OutboxSkipped, nil)) {
		if e.Incident != bad || !strings.Contains(e.LastError, "deploy_failed never reached the channel (it was dead-lettered)") || e.DoneAt.IsZero() {
			t.Errorf("%s: incident %s, done %v, reason %q; want %s's all-clear skipped because its failure was dead-lettered",
				e.Notifier, e.Incident, e.DoneAt, e.LastError, bad)
		}
	}
	// A deploy that passes with no incident open has nothing to follow: skipped too.
	plain := h.deploy("web", "v4")
	if d := h.verdict(plain, 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("status %v", d["status"])
	}
	for _, e := range h.outboxSettled(plain+":deploy_passed", channelStates(store.OutboxSkipped, nil)) {
		if !strings.Contains(e.LastError, "did not post a failure of its incident") {
			t.Errorf("%s: reason %q; want that it follows no failure this notifier posted", e.Notifier, e.LastError)
		}
	}
	h.deliverNow()
	if n, m, k := len(chats["teams"].Posts()), len(chats["discord"].Posts()), len(smtp.Messages()); n != 1 || m != 1 || k != 0 {
		t.Errorf("requests: Teams %d, Discord %d, mails %d; want 1, 1 and 0 (the refused failures)", n, m, k)
	}

	// What operators read: the API's state filter and counts, the metric, the log.
	_, out := h.request("GET", "/api/v1/outbox?state=skipped", "")
	if list, _ := out["entries"].([]any); len(list) != 6 {
		t.Errorf("GET /api/v1/outbox?state=skipped: %d entries; want 6: %v", len(list), out)
	} else if e := list[0].(map[string]any); e["state"] != store.OutboxSkipped || !strings.Contains(fmt.Sprint(e["last_error"]), "did not post") {
		t.Errorf("the newest skipped entry as the API shows it: %v", e)
	}
	if c, _ := out["counts"].(map[string]any); c[store.OutboxSkipped] != float64(6) || c[store.OutboxDead] != float64(3) || c[store.OutboxDelivered] != nil {
		t.Errorf("outbox counts %v; want 6 skipped, 3 dead, none delivered", c)
	}
	body := getOK(t, h.url+"/metrics")
	for _, n := range []string{"teams", "discord", "mail"} {
		if want := fmt.Sprintf(`vigil_notifications_total{notifier=%q,outcome="skipped"} 2`, n); !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
		// The series is there from the start, at 0 (an alert's increase() sees its first).
		if want := fmt.Sprintf(`vigil_notifications_total{notifier=%q,outcome="delivered"} 0`, n); !strings.Contains(body, want) {
			t.Errorf("/metrics counts a delivery to %s, which was sent nothing (want %s)", n, want)
		}
	}
	if n := strings.Count(h.logs.String(), `msg="notification skipped"`); n != 6 {
		t.Errorf("the log has %d notification skipped lines; want 6", n)
	}

	// The dead failure is not sent after the all-clear it missed.
	for _, e := range openers {
		if code, out := h.request("POST", fmt.Sprintf("/api/v1/outbox/%d/retry", e.ID), ""); code != http.StatusConflict {
			t.Errorf("retrying %s's dead deploy_failed: %d %v; want 409, its incident is over", e.Notifier, code, out)
		}
	}
}

// The same lost failures with a rollback webhook: the rollback's result needs nothing from
// the lost message and is news of its own (a machine changed production), so it is sent
// on its own, where it was recorded as delivered and never sent; the channels having heard
// of the incident so, its all-clear follows it.
func TestARollbackIsToldWhereItsFailureWasLost(t *testing.T) {
	tg := newTarget(t)
	hook := loopback.NewWebhook(t)
	h, chats, smtp := lostFailures(t, tg, "rollback, ", webhookNotifier("rollback", "rollback", hook))

	tg.set("broken")
	bad := h.deploy("web", "v2")
	if d := h.verdict(bad, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("status %v", d["status"])
	}
	h.outboxSettled(bad+":deploy_failed", channelStates(store.OutboxDead, map[string]string{"rollback": store.OutboxDelivered}))
	h.outboxSettled(bad+":deploy_failed:rollback", channelStates(store.OutboxDelivered, nil))
	tg.set("good")
	good := h.deploy("web", "v3")
	if d := h.verdict(good, 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("status %v", d["status"])
	}
	h.outboxSettled(good+":deploy_passed", channelStates(store.OutboxDelivered, nil))

	for name, c := range chats {
		got := c.Accepted()
		if len(got) != 2 || !strings.Contains(string(got[0].Body), "accepted the rollback") || !strings.Contains(string(got[1].Body), "Resolved") {
			t.Errorf("%s accepted %d messages; want the rollback's result on its own, then the all-clear (%d requests in all)", name, len(got), len(c.Posts()))
		}
	}
	msgs := smtp.Messages()
	if len(msgs) != 2 || !strings.Contains(string(msgs[0].Data), "accepted the rollback") || !strings.Contains(string(msgs[1].Data), "In-Reply-To: ") {
		t.Errorf("%d mails; want the rollback's result on its own, then the all-clear answering it", len(msgs))
	}
}
