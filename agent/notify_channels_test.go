package agent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/amtest"
	"github.com/vigil-monitor/vigil/internal/smtptest"
	"github.com/vigil-monitor/vigil/store"
)

func opsgenieNotifier(o *loopback.Opsgenie) string {
	return fmt.Sprintf(`
  genie:
    type: opsgenie
    api_key: %s
    api_url: %s`, loopback.OpsgenieAPIKey, o.URL())
}

func chatNotifier(name, typ string, c *loopback.Chat) string {
	return fmt.Sprintf(`
  %s:
    type: %s
    url: %q`, name, typ, c.URL())
}

// A failed deploy reaches the channel notifiers through the outbox exactly once each, the
// first attempt failing and retried; the next good deploy closes the Opsgenie alert.
func TestFailedDeployReachesTheChannelsOnce(t *testing.T) {
	tg := newTarget(t)
	genie := loopback.NewOpsgenie(t)
	genie.Fail(loopback.Fault{Status: 503})
	teams := loopback.NewTeams(t)
	teams.Fail(loopback.Fault{Status: 429, RetryAfter: "1"})
	discord := loopback.NewDiscord(t)
	discord.Fail(loopback.Fault{Hang: true})
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2",
		service: "on_failure: [genie, teams, discord]",
		top: "notifiers:" + opsgenieNotifier(genie) + chatNotifier("teams", "teams", teams) +
			chatNotifier("discord", "discord", discord) + "\n    timeout: 500ms"}.String())

	tg.set("broken")
	bad := h.deploy("web", "v2")
	if d := h.verdict(bad, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("status %v", d["status"])
	}
	alias := "vigil:" + bad
	eventually(t, 30*time.Second, "the Opsgenie alert", func() bool { return genie.Alert(alias) != nil })
	h.outboxSettled(bad+":deploy_failed", map[string]string{"genie": store.OutboxDelivered, "teams": store.OutboxDelivered,
		"discord": store.OutboxDelivered})
	if got := discord.Accepted(); len(got) != 1 || len(discord.Posts()) != 2 {
		t.Errorf("Discord accepted %d of %d posts; want the failure once, after the attempt that timed out", len(got), len(discord.Posts()))
	}
	if got := teams.Accepted(); len(got) != 1 || !strings.Contains(string(got[0].Body), "failed verification") {
		t.Errorf("Teams accepted %d cards; want the failure once", len(got))
	}
	if n := len(teams.Posts()); n != 2 {
		t.Errorf("Teams got %d posts; want the 429 and its retry", n)
	}
	if a := genie.Alert(alias); a.Count != 1 || !a.Open {
		t.Errorf("alert %+v: want one create, open", a)
	}
	if c := genie.Calls(); len(c) < 2 || c[0].Status != 503 {
		t.Errorf("the first create should have failed with 503 and been retried: %d calls", len(c))
	}
	if n := len(genie.Aliases()); n != 1 {
		t.Errorf("%d alerts; want 1", n)
	}

	tg.set("good")
	good := h.deploy("web", "v3")
	if d := h.verdict(good, 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("status %v", d["status"])
	}
	eventually(t, 30*time.Second, "the alert closed", func() bool { return !genie.Alert(alias).Open })
	h.outboxSettled(good+":deploy_passed", map[string]string{"genie": store.OutboxDelivered, "teams": store.OutboxDelivered,
		"discord": store.OutboxDelivered})
	if got := discord.Accepted(); len(got) != 2 {
		t.Errorf("Discord accepted %d messages; want the failure and its resolution", len(got))
	}
	if got := teams.Accepted(); len(got) != 2 || !strings.Contains(string(got[1].Body), "Resolved") {
		t.Errorf("Teams accepted %d cards; want the failure and its resolution", len(got))
	}
	if a := genie.Alert(alias); a.Closes != 1 || a.Count != 1 {
		t.Errorf("alert %+v: want closed once", a)
	}
}

// A failed deploy is mailed once through the outbox over STARTTLS with AUTH, the first
// attempt refused with a 451; the next good deploy's mail answers it in the same thread.
func TestFailedDeployIsMailedOnce(t *testing.T) {
	tg := newTarget(t)
	srv := smtptest.Start(t, smtptest.Options{})
	srv.Fail("MAIL", 451, "greylisted, try again")
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2",
		service: "on_failure: [mail]",
		top: fmt.Sprintf(`notifiers:
  mail:
    type: email
    host: %s
    port: %d
    from: "vigil <vigil@example.com>"
    to: [oncall@example.com]
    username: %s
    password: %s
    tls: {ca_file: %q}`, srv.Host(), srv.Port(), smtptest.Username, smtptest.Password, srv.CAFile)}.String())

	tg.set("broken")
	bad := h.deploy("web", "v2")
	if d := h.verdict(bad, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("status %v", d["status"])
	}
	h.outboxSettled(bad+":deploy_failed", map[string]string{"mail": store.OutboxDelivered})
	msgs := srv.Messages()
	if len(msgs) != 1 || !msgs[0].TLS || !strings.Contains(string(msgs[0].Data), "Message-ID: <"+bad+".deploy_failed@example.com>") {
		t.Fatalf("%d messages; want the failure once, over TLS", len(msgs))
	}

	tg.set("good")
	good := h.deploy("web", "v3")
	if d := h.verdict(good, 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("status %v", d["status"])
	}
	h.outboxSettled(good+":deploy_passed", map[string]string{"mail": store.OutboxDelivered})
	msgs = srv.Messages()
	if len(msgs) != 2 || !strings.Contains(string(msgs[1].Data), "In-Reply-To: <"+bad+".deploy_failed@example.com>") {
		t.Fatalf("%d messages; the resolution should answer the failure", len(msgs))
	}
}

// A failed deploy fires one alert in a real Alertmanager through the outbox; the next good
// deploy resolves it.
func TestFailedDeployFiresInAlertmanager(t *testing.T) {
	am := amtest.Start(t)
	tg := newTarget(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2",
		service: "on_failure: [am]",
		top: fmt.Sprintf(`notifiers:
  am:
    type: alertmanager
    url: %s
    labels: {team: web}`, am.URL)}.String())

	tg.set("broken")
	bad := h.deploy("web", "v2")
	if d := h.verdict(bad, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("status %v", d["status"])
	}
	h.outboxSettled(bad+":deploy_failed", map[string]string{"am": store.OutboxDelivered})
	var alerts []amtest.Alert
	eventually(t, 20*time.Second, "the alert in Alertmanager", func() bool {
		alerts, _ = am.Alerts(t.Context(), `vigil_incident="`+bad+`"`)
		return len(alerts) == 1
	})
	if l := alerts[0].Labels; l["alertname"] != "VigilDeployFailed" || l["service"] != "web" || l["team"] != "web" {
		t.Errorf("labels %v", l)
	}

	tg.set("good")
	good := h.deploy("web", "v3")
	if d := h.verdict(good, 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("status %v", d["status"])
	}
	h.outboxSettled(good+":deploy_passed", map[string]string{"am": store.OutboxDelivered})
	eventually(t, 20*time.Second, "the alert resolved", func() bool {
		alerts, err := am.Alerts(t.Context(), `vigil_incident="`+bad+`"`)
		return err == nil && len(alerts) == 0
	})
}
