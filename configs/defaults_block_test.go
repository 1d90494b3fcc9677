package configs_test

import (
	"slices"
	"testing"

	"github.com/vigil-monitor/vigil/configs"
)

// The defaults block's thresholds, no_data and notify reach every check that does not set
// them, and defaults.notify is also whom locations tell of a silent agent when
// locations.notify is not set; a check's own values and a written locations.notify win.
// (TestDefaultsAndExpansion holds every, timeout, retries, failure_window and notify.)
func TestDefaultsBlockThresholdsNoDataAndLocationsNotify(t *testing.T) {
	const checks = `
defaults: {failure_threshold: 3, success_threshold: 2, no_data: alert, notify: [ops]}
checks:
  - {name: a, kind: http, request: {url: "http://127.0.0.1:8080/"}}
  - {name: b, kind: http, failure_threshold: 1, success_threshold: 1, no_data: ignore, request: {url: "http://127.0.0.1:8080/"}}
notifiers:
  ops: {type: webhook, url: "http://127.0.0.1:9/hook", secret: shh}
  pager: {type: webhook, url: "http://127.0.0.1:9/pager", secret: shh}
`
	for _, tc := range []struct {
		name, locations string
		wantNotify      []string
	}{
		{"locations.notify unset", "", []string{"ops"}},
		{"locations.notify set", "locations: {notify: [pager]}\n", []string{"pager"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(t, write(t, tc.locations+checks), configs.Options{})
			if err != nil {
				t.Fatal(err)
			}
			a, b := cfg.CheckByName("a"), cfg.CheckByName("b")
			if a.FailureThreshold != 3 || a.SuccessThreshold != 2 || a.NoData != configs.NoDataAlert {
				t.Errorf("a did not take the defaults: failure_threshold %d, success_threshold %d, no_data %q; want 3, 2, alert",
					a.FailureThreshold, a.SuccessThreshold, a.NoData)
			}
			if b.FailureThreshold != 1 || b.SuccessThreshold != 1 || b.NoData != configs.NoDataIgnore {
				t.Errorf("b lost its own values: failure_threshold %d, success_threshold %d, no_data %q; want 1, 1, ignore",
					b.FailureThreshold, b.SuccessThreshold, b.NoData)
			}
			if !slices.Equal(cfg.Locations.Notify, tc.wantNotify) {
				t.Errorf("locations.notify is %v; want %v", cfg.Locations.Notify, tc.wantNotify)
			}
		})
	}
}
