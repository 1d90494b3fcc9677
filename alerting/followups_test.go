package alerting_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/smtptest"
)

// channel is a notifier without threads and what its receiver took.
type channel struct {
	n        alerting.Notifier
	refuse   func()          // the next message is refused for good
	accepted func() []string // the bodies taken, in order
}

func channels(t *testing.T) map[string]channel {
	teams, discord := loopback.NewTeams(t), loopback.NewDiscord(t)
	srv := smtptest.Start(t, smtptest.Options{})
	bodies := func(c *loopback.Chat) func() []string {
		return func() []string {
			var out []string
			for _, p := range c.Accepted() {
				out = append(out, string(p.Body))
			}
			return out
		}
	}
	return map[string]channel{
		// A 403, not a 400: a 400 refuses the message's content, and its plain form is sent instead.
		"teams":   {newNotifier(t, teamsConfig(teams), nil), func() { teams.Fail(loopback.Fault{Status: 403}) }, bodies(teams)},
		"discord": {newNotifier(t, discordConfig(discord), nil), func() { discord.Fail(loopback.Fault{Status: 403}) }, bodies(discord)},
		"email": {newNotifier(t, emailConfig(srv), nil), func() { srv.Fail("MAIL", 554, "sender rejected") }, func() []string {
			var out []string
			for _, m := range srv.Messages() {
				out = append(out, string(m.Data))
			}
			return out
		}},
	}
}

// A channel without threads whose failure message was refused for good (the outbox
// dead-letters it, then delivers what follows): the rollback's result is sent on its own,
// readable without the lost message, and the channel having heard of the incident so, its
// all-clear follows. Without such news the all-clear is not sent, and Deliver says so with
// ErrSkipped and why, instead of a nil that reads as delivered. A follow-up of an incident
// the channel was never meant to hear of is skipped too.
func TestChannelFollowUpsAfterALostFailure(t *testing.T) {
	t.Parallel()
	for name, c := range channels(t) {
		t.Run(name, func(t *testing.T) {
			st := alerting.State{}
			c.refuse()
			if err := c.n.Deliver(t.Context(), deployFailed(), st); !alerting.Permanent(err) || errors.Is(err, alerting.ErrSkipped) {
				t.Fatalf("the refused failure: %v; want a permanent error", err)
			}
			for _, ev := range []*alerting.Event{actionResult(), resolvedBy()} {
				if err := c.n.Deliver(t.Context(), ev, st); err != nil {
					t.Fatalf("%s: %v; want it sent", ev.Name, err)
				}
			}
			if got := c.accepted(); len(got) != 2 || !strings.Contains(got[0], "accepted the rollback") {
				t.Fatalf("%d messages taken; want the rollback's result on its own, then the all-clear", len(got))
			}

			lost := alerting.State{}
			c.refuse()
			if err := c.n.Deliver(t.Context(), checkEvent(configs.EventCheckFailed, "6"), lost); !alerting.Permanent(err) {
				t.Fatalf("the refused failure: %v", err)
			}
			err := c.n.Deliver(t.Context(), checkEvent(configs.EventCheckRecovered, "6"), lost)
			var skip *alerting.SkippedError
			if !errors.As(err, &skip) || !errors.Is(err, alerting.ErrSkipped) || !alerting.Permanent(err) ||
				!strings.Contains(skip.Why, "check_failed never reached the channel (it was dead-lettered)") {
				t.Errorf("the all-clear: %v; want it skipped, saying the failure it follows was lost", err)
			}

			// Never meant to hear of the incident: nothing follows it.
			fresh := alerting.State{}
			for _, ev := range []*alerting.Event{actionResult(), checkEvent(configs.EventCheckRecovered, "5")} {
				if err := c.n.Deliver(t.Context(), ev, fresh); !errors.Is(err, alerting.ErrSkipped) || !strings.Contains(err.Error(), "did not post") {
					t.Errorf("%s of an incident it did not post: %v; want it skipped", ev.Name, err)
				}
			}
			if n := len(c.accepted()); n != 2 {
				t.Errorf("%d messages taken; want nothing more after the rollback's result and its all-clear", n)
			}
		})
	}
}

// An update of a check incident whose first failure was lost (a reminder: still failing)
// is a failure of its own and is sent; the incident is then the channel's, and its
// recovery is sent as its resolution.
func TestChannelReminderAfterALostFailure(t *testing.T) {
	t.Parallel()
	for name, c := range channels(t) {
		t.Run(name, func(t *testing.T) {
			st := alerting.State{}
			c.refuse()
			if err := c.n.Deliver(t.Context(), checkEvent(configs.EventCheckFailed, "7"), st); !alerting.Permanent(err) {
				t.Fatalf("the refused failure: %v", err)
			}
			reminder := checkEvent(configs.EventCheckFailed, "7")
			reminder.Key, reminder.Reminder, reminder.Summary = "check:home:7:check_failed:1", 1, "still failing (reminder 1)"
			for _, ev := range []*alerting.Event{reminder, checkEvent(configs.EventCheckRecovered, "7")} {
				if err := c.n.Deliver(t.Context(), ev, st); err != nil {
					t.Fatalf("%s: %v; want it sent", ev.Key, err)
				}
			}
			if got := c.accepted(); len(got) != 2 || !strings.Contains(got[0], "reminder 1") {
				t.Errorf("%d messages taken; want the reminder and the recovery", len(got))
			}
		})
	}
}

// Slack, whose follow-ups reply in the failure's thread: with the failure lost there is no
// thread; the rollback's result is posted on its own (as it always was), the all-clear is
// skipped with why.
func TestSlackFollowUpsAfterALostFailure(t *testing.T) {
	t.Parallel()
	srv, n, _ := newSlack(t)
	srv.Fail("chat.postMessage", loopback.Fault{SlackError: "channel_not_found"})
	st := alerting.State{}
	if err := n.Deliver(t.Context(), deployFailed(), st); !alerting.Permanent(err) {
		t.Fatalf("the refused failure: %v", err)
	}
	if err := n.Deliver(t.Context(), actionResult(), st); err != nil || len(srv.Roots()) != 1 {
		t.Fatalf("the rollback's result: %v, %d roots; want it posted on its own", err, len(srv.Roots()))
	}
	// The rollback's result opened a thread: the all-clear answers it.
	if err := n.Deliver(t.Context(), resolvedBy(), st); err != nil {
		t.Fatalf("the all-clear in the rollback's thread: %v", err)
	}

	lost := alerting.State{}
	srv.Fail("chat.postMessage", loopback.Fault{SlackError: "channel_not_found"})
	if err := n.Deliver(t.Context(), checkEvent(configs.EventCheckFailed, "8"), lost); !alerting.Permanent(err) {
		t.Fatalf("the refused failure: %v", err)
	}
	calls := len(srv.Calls())
	err := n.Deliver(t.Context(), checkEvent(configs.EventCheckRecovered, "8"), lost)
	if !errors.Is(err, alerting.ErrSkipped) || !strings.Contains(err.Error(), "never reached the channel (it was dead-lettered)") || len(srv.Calls()) != calls {
		t.Errorf("the all-clear of a lost failure: %v, %d calls; want it skipped, nothing sent", err, len(srv.Calls())-calls)
	}
}

// The notifiers that close an alert they opened (Alertmanager, Opsgenie; PagerDuty for a
// deploy): a closing with no alert of theirs sends nothing and says it skipped it; the same
// closing once more after it went out (an attempt whose answer vigil did not record) is
// the delivery it was.
func TestClosingWithoutAnAlertIsSkipped(t *testing.T) {
	t.Parallel()
	am := newRecorder(t)
	genie := loopback.NewOpsgenie(t)
	pd, pdn, _ := newPagerDuty(t)
	sent := map[string]func() int{
		"alertmanager": func() int { return len(am.bodies()) },
		"opsgenie":     func() int { return len(genie.Calls()) },
		"pagerduty":    func() int { return len(pd.Events()) },
	}
	for name, n := range map[string]alerting.Notifier{"alertmanager": newNotifier(t, alertmanagerConfig(am.srv.URL), nil),
		"opsgenie": newNotifier(t, opsgenieConfig(genie), nil), "pagerduty": pdn} {
		t.Run(name, func(t *testing.T) {
			if err := n.Deliver(t.Context(), resolvedBy(), alerting.State{}); !errors.Is(err, alerting.ErrSkipped) || sent[name]() != 0 {
				t.Fatalf("a closing with no alert: %v, %d requests; want it skipped, nothing sent", err, sent[name]())
			}
			st := alerting.State{}
			for _, ev := range []*alerting.Event{deployFailed(), resolvedBy(), resolvedBy()} {
				if err := n.Deliver(t.Context(), ev, st); err != nil {
					t.Fatalf("%s: %v", ev.Key, err)
				}
			}
			if got := sent[name](); got != 2 {
				t.Errorf("%d requests; want the alert and its closing, once", got)
			}
		})
	}
}

// A notifier in dry run sends nothing and says what it would have sent. After a failure it
// announced, the incident's all-clear would follow it, so that is announced too, not
// skipped for want of a thread or an alert that a dry run never makes (the outbox would
// have read "skipped: no thread" where the real notifier posts a reply). An all-clear
// with no announced failure before it is skipped, as it would be for real.
func TestDryRunFollowUpsAreAnnounced(t *testing.T) {
	t.Parallel()
	teams, discord, genie := loopback.NewTeams(t), loopback.NewDiscord(t), loopback.NewOpsgenie(t)
	slack, pd, am := loopback.NewSlack(t), loopback.NewPagerDuty(t), newRecorder(t)
	mail := smtptest.Start(t, smtptest.Options{})
	sent := func() int {
		return len(teams.Accepted()) + len(discord.Accepted()) + len(genie.Calls()) + len(slack.Calls()) + len(pd.Events()) +
			len(am.bodies()) + len(mail.Messages())
	}
	for _, cfg := range []*configs.Notifier{teamsConfig(teams), discordConfig(discord), emailConfig(mail), opsgenieConfig(genie),
		slackConfig(slack.APIURL()), pagerDutyConfig(pd.URL()), alertmanagerConfig(am.srv.URL)} {
		cfg.DryRun = true
		n := newNotifier(t, cfg, nil)
		st := alerting.State{}
		for _, ev := range []*alerting.Event{deployFailed(), resolvedBy()} {
			if err := n.Deliver(t.Context(), ev, st); !errors.Is(err, alerting.ErrDryRun) {
				t.Errorf("%s, %s after the failure it announced: %v; want it announced as a dry run", cfg.Type, ev.Name, err)
			}
		}
		if err := n.Deliver(t.Context(), resolvedBy(), alerting.State{}); !errors.Is(err, alerting.ErrSkipped) {
			t.Errorf("%s, an all-clear with no failure announced: %v; want it skipped", cfg.Type, err)
		}
	}
	if n := sent(); n != 0 {
		t.Errorf("%d requests or messages reached a receiver; a dry run sends none", n)
	}
}
