package agent

import (
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/store"
)

func TestCombine(t *testing.T) {
	rep := func(loc, status string) *store.LocationReport {
		return &store.LocationReport{Location: loc, Status: status, Reason: loc + " says " + status}
	}
	three := &store.Deploy{Locations: []string{"ap", "eu", "us"}}
	cases := []struct {
		name    string
		d       *store.Deploy
		reports []*store.LocationReport
		q       configs.Quorum
		final   bool
		status  string
		reason  string // a part of the reason
	}{
		{"one location: its verdict, word for word", &store.Deploy{Locations: []string{"eu"}},
			[]*store.LocationReport{rep("eu", store.StatusFailed)}, configs.Quorum{Fail: 1}, false, store.StatusFailed, "eu says failed"},
		{"fail reached before the others report", three,
			[]*store.LocationReport{rep("eu", store.StatusFailed), rep("us", store.StatusFailed)}, configs.Quorum{Fail: 2}, false,
			store.StatusFailed, "failing in 2 of 3 locations (fail: 2)"},
		{"waits while a location is missing", three,
			[]*store.LocationReport{rep("eu", store.StatusPassed), rep("us", store.StatusFailed)}, configs.Quorum{Fail: 2}, false, "", ""},
		{"one failing of three is short of fail: 2", three,
			[]*store.LocationReport{rep("eu", store.StatusPassed), rep("us", store.StatusPassed), rep("ap", store.StatusFailed)},
			configs.Quorum{Fail: 2}, false, store.StatusPassed, "passed in 2 of 3 locations; failing in 1, short of fail: 2"},
		{"a silent location under min: every one is inconclusive, naming it", three,
			[]*store.LocationReport{rep("eu", store.StatusPassed), rep("us", store.StatusPassed)}, configs.Quorum{Fail: 1}, true,
			store.StatusInconclusive, "ap never reported within the window"},
		{"min: 2 is met without the silent location", three,
			[]*store.LocationReport{rep("eu", store.StatusPassed), rep("us", store.StatusPassed)}, configs.Quorum{Min: 2, Fail: 1}, true,
			store.StatusPassed, "ap never reported"},
		{"an inconclusive location does not count as an answer", three,
			[]*store.LocationReport{rep("eu", store.StatusPassed), rep("us", store.StatusInconclusive)}, configs.Quorum{Min: 2, Fail: 1}, true,
			store.StatusInconclusive, "us could not judge"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := combine(c.d, c.reports, c.q, c.final)
			if v.status != c.status || !strings.Contains(v.reason, c.reason) {
				t.Errorf("got %q %q; want %q with %q", v.status, v.reason, c.status, c.reason)
			}
		})
	}
}
