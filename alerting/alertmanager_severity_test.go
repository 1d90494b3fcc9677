package alerting_test

import (
	"encoding/json"
	"testing"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/configs"
)

// An Alertmanager notifier's severity is the severity label of the alerts it fires (its
// routes and inhibit rules match on it); an inconclusive verdict is at most a warning, as
// with PagerDuty.
func TestAlertmanagerSeverityByEvent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ configured, event, want string }{
		{"", configs.EventDeployFailed, "critical"},
		{"warning", configs.EventDeployFailed, "warning"},
		{"info", configs.EventDeployHalted, "info"},
		{"error", configs.EventDeployInconclusive, "warning"},
		{"info", configs.EventDeployInconclusive, "info"},
	} {
		rec := newRecorder(t)
		cfg := alertmanagerConfig(rec.srv.URL)
		cfg.Severity = tc.configured
		ev := &alerting.Event{Name: tc.event, Key: "d-1:" + tc.event, Incident: "d-1",
			Deploy: &alerting.Deploy{ID: "d-1", Service: "web", Version: "v2"}, Summary: "why"}
		if err := newNotifier(t, cfg, nil).Deliver(t.Context(), ev, alerting.State{}); err != nil {
			t.Fatal(err)
		}
		var alerts []struct {
			Labels map[string]string `json:"labels"`
		}
		if err := json.Unmarshal(rec.bodies()[0], &alerts); err != nil || len(alerts) != 1 {
			t.Fatalf("body %s: %v", rec.bodies()[0], err)
		}
		if got := alerts[0].Labels["severity"]; got != tc.want {
			t.Errorf("%s with severity %q: the alert's severity label is %q; want %q", tc.event, tc.configured, got, tc.want)
		}
	}
}
