package alerting_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/configs"
)

// startedThenCancelled is the story of a deploy whose rollout was called off: the events
// the agent writes for it, in order.
func startedThenCancelled() []*alerting.Event {
	evs := incidents()["deploy-started-then-cancelled"]
	return []*alerting.Event{evs[0], evs[1]}
}

// A channel without threads (Teams, Discord, email) that posted a deploy's start posts
// its cancel, with the reason; one that did not post the start (its default events) posts
// nothing for the cancel either, unless its events list deploy_cancelled.
func TestACancelFollowsTheStartItsChannelPosted(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		events []string
		posts  int
	}{
		{"events [deploy_started]", []string{configs.EventDeployStarted}, 2},
		{"default events", nil, 0},
		{"events [deploy_cancelled]", []string{configs.EventDeployCancelled}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			rx := loopback.NewTeams(t)
			cfg := teamsConfig(rx)
			cfg.Events = c.events
			n := newNotifier(t, cfg, nil)
			st := alerting.State{}
			for _, ev := range startedThenCancelled() {
				if !n.Wants(ev.Name) {
					continue
				}
				if err := n.Deliver(t.Context(), ev, st); err != nil && !errors.Is(err, alerting.ErrSkipped) {
					t.Fatalf("%s: %v", ev.Name, err)
				}
			}
			posts := rx.Posts()
			if len(posts) != c.posts {
				t.Fatalf("%d cards posted; want %d", len(posts), c.posts)
			}
			if c.posts > 0 && !strings.Contains(string(posts[len(posts)-1].Body), "Cancelled: Argo Rollouts aborted web") {
				t.Errorf("the cancel's card does not give the reason: %s", posts[len(posts)-1].Body)
			}
		})
	}
}

// Who takes a deploy_cancelled: never a rollback or halt webhook, whatever its events say,
// nor PagerDuty, Opsgenie or Alertmanager (nothing was paged); a plain webhook that took
// deploy_started does, as does Slack (to close the thread its start opened).
func TestWhoWantsACancel(t *testing.T) {
	t.Parallel()
	hook := func(action string, events ...string) *configs.Notifier {
		return &configs.Notifier{Type: configs.NotifierWebhook, Name: "hook", URL: "http://127.0.0.1:1/hook", Secret: loopback.WebhookSecret,
			Action: action, Events: events}
	}
	for _, c := range []struct {
		name string
		cfg  *configs.Notifier
		want bool
	}{
		{"rollback webhook", hook(alerting.ActionRollback, configs.Events...), false},
		{"halt webhook", hook(alerting.ActionHalt), false},
		{"plain webhook, default events", hook(""), true},
		{"plain webhook, events [deploy_started]", hook("", configs.EventDeployStarted), true},
		{"plain webhook, events [deploy_failed]", hook("", configs.EventDeployFailed), false},
		{"pagerduty, default events", pagerDutyConfig(""), false},
		{"slack, default events", &configs.Notifier{Type: configs.NotifierSlack, Name: "ops", Token: loopback.SlackToken, Channel: "#d"}, true},
	} {
		if got := newNotifier(t, c.cfg, nil).Wants(configs.EventDeployCancelled); got != c.want {
			t.Errorf("%s: Wants(deploy_cancelled) = %v; want %v", c.name, got, c.want)
		}
	}
}
