package alerting_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/configs"
)

// endedWithoutVerdict are the stories of a deploy that ends without a verdict, the events
// the agent writes for each in order, and what the closing event's message says.
var endedWithoutVerdict = []struct {
	story, event, says string
}{
	{"deploy-started-then-cancelled", configs.EventDeployCancelled, "Cancelled: Argo Rollouts aborted web"},
	{"deploy-started-then-superseded", configs.EventDeploySuperseded, "Superseded by v2.1.1"},
}

// A channel without threads (Teams, Discord, email) that posted a deploy's start posts
// its cancel (with the reason) or its supersede (with the newer version); one that did not
// post the start (its default events) posts nothing for either, unless its events list it.
func TestACancelOrSupersedeFollowsTheStartItsChannelPosted(t *testing.T) {
	t.Parallel()
	for _, end := range endedWithoutVerdict {
		for _, c := range []struct {
			name   string
			events []string
			posts  int
		}{
			{"events [deploy_started]", []string{configs.EventDeployStarted}, 2},
			{"default events", nil, 0},
			{"events [" + end.event + "]", []string{end.event}, 1},
		} {
			t.Run(end.event+"/"+c.name, func(t *testing.T) {
				rx := loopback.NewTeams(t)
				cfg := teamsConfig(rx)
				cfg.Events = c.events
				n := newNotifier(t, cfg, nil)
				st := alerting.State{}
				for _, ev := range incidents()[end.story] {
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
				if c.posts > 0 && !strings.Contains(string(posts[len(posts)-1].Body), end.says) {
					t.Errorf("the %s card does not say %q: %s", end.event, end.says, posts[len(posts)-1].Body)
				}
			})
		}
	}
}

// Who takes a deploy_cancelled or a deploy_superseded: never a rollback or halt webhook,
// whatever its events say, nor PagerDuty, Opsgenie or Alertmanager (nothing was paged); a
// plain webhook that took deploy_started does, as does Slack (to close the thread its start
// opened).
func TestWhoWantsACancelOrASupersede(t *testing.T) {
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
		{"opsgenie, default events", opsgenieConfig(loopback.NewOpsgenie(t)), false},
		{"alertmanager, default events", alertmanagerConfig("http://127.0.0.1:1"), false},
		{"slack, default events", &configs.Notifier{Type: configs.NotifierSlack, Name: "ops", Token: loopback.SlackToken, Channel: "#d"}, true},
	} {
		for _, end := range endedWithoutVerdict {
			if got := newNotifier(t, c.cfg, nil).Wants(end.event); got != c.want {
				t.Errorf("%s: Wants(%s) = %v; want %v", c.name, end.event, got, c.want)
			}
		}
	}
}
