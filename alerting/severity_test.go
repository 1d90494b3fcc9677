package alerting_test

import (
	"testing"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// An inconclusive verdict is not an outage: it pages at most as a warning, whatever the
// notifier's severity; failed and halted deploys page at the configured severity.
func TestPagerDutySeverityByEvent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ configured, event, want string }{
		{"critical", configs.EventDeployFailed, "critical"},
		{"critical", configs.EventDeployHalted, "critical"},
		{"critical", configs.EventDeployInconclusive, "warning"},
		{"error", configs.EventDeployInconclusive, "warning"},
		{"info", configs.EventDeployInconclusive, "info"},
	} {
		rx := loopback.NewPagerDuty(t)
		cfg := pagerDutyConfig(rx.URL())
		cfg.Severity = tc.configured
		n := newNotifier(t, cfg, &vigiltest.Buffer{})
		ev := &alerting.Event{Name: tc.event, Key: "d-1:" + tc.event, Incident: "d-1",
			Deploy: &alerting.Deploy{ID: "d-1", Service: "web", Version: "v2"}, Summary: "why"}
		if err := n.Deliver(t.Context(), ev, alerting.State{}); err != nil {
			t.Fatal(err)
		}
		if got := rx.Events()[0].Payload.Severity; got != tc.want {
			t.Errorf("%s with severity %s: sent %s; want %s", tc.event, tc.configured, got, tc.want)
		}
	}
}
