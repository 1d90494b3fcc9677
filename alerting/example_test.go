package alerting_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/configs"
)

// The alerting example loads with the environment its "# ci-env:" lines give, every
// notifier in it builds, and its maintenance windows mean what their comments say.
func TestAlertingExample(t *testing.T) {
	t.Parallel()
	const path = "../configs/examples/alerting.yaml"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, line := range strings.Split(string(data), "\n") {
		if vars, ok := strings.CutPrefix(line, "# ci-env: "); ok {
			env = append(env, strings.Fields(vars)...)
		}
	}
	cfg, err := configs.Load(path, configs.Options{Environ: env})
	if err != nil {
		t.Fatal(err)
	}
	for name, nc := range cfg.Notifiers {
		if _, err := alerting.New(nc, alerting.Options{}); err != nil {
			t.Errorf("notifier %s: %v", name, err)
		}
	}
	m, err := alerting.NewMaintenance(cfg.Maintenance)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at, check, service, want string
	}{
		{"2026-12-07T23:00:00Z", "", "api", "nightly-db-maintenance"}, // Tuesday 00:00 in Prague, from Monday 23:30
		{"2026-12-06T23:00:00Z", "", "api", ""},                       // Monday 00:00: Sunday has no window
		{"2026-12-07T23:00:00Z", "home", "web", ""},                   // web is not named
		{"2026-12-05T21:00:00Z", "login", "web", "datacenter-move"},   // one-off
		{"2026-12-05T21:00:00Z", "api-health", "api", ""},             // not named
	} {
		at, _ := time.Parse(time.RFC3339, tt.at)
		w, ok := m.Active(at, tt.check, tt.service)
		if w.Name != tt.want || ok != (tt.want != "") {
			t.Errorf("at %s, %s/%s: window %q, want %q", tt.at, tt.service, tt.check, w.Name, tt.want)
		}
	}
}
