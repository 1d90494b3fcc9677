package alerting_test

import (
	"testing"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/configs"
)

// action_result, what a rollback or halt webhook did, follows a deploy's incident to the
// notifiers people read, whatever their events list says; PagerDuty, Alertmanager and
// webhooks never take it (README, Events).
func TestActionResultReachesPeopleWhateverTheirEvents(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cfg   *configs.Notifier
		wants bool
	}{
		{slackConfig("http://127.0.0.1:9/api"), true},
		{teamsConfig(loopback.NewTeams(t)), true},
		{discordConfig(loopback.NewDiscord(t)), true},
		{opsgenieConfig(loopback.NewOpsgenie(t)), true},
		{pagerDutyConfig("http://127.0.0.1:9/v2/enqueue"), false},
		{alertmanagerConfig("http://127.0.0.1:9"), false},
		{webhookConfig("http://127.0.0.1:9/hook"), false},
	} {
		for _, events := range [][]string{nil, {configs.EventDeployFailed}} {
			tt.cfg.Events = events
			if got := newNotifier(t, tt.cfg, nil).Wants(alerting.EventActionResult); got != tt.wants {
				t.Errorf("%s with events %v: Wants(action_result) = %v, want %v", tt.cfg.Type, events, got, tt.wants)
			}
		}
	}
}
