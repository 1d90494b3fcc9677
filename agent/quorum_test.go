package agent

import (
	"fmt"
	"strings"
	"testing"
	"time"

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
			v := combine(c.d, c.reports, c.q, c.final, nil)
			if v.status != c.status || !strings.Contains(v.reason, c.reason) {
				t.Errorf("got %q %q; want %q with %q", v.status, v.reason, c.status, c.reason)
			}
		})
	}
}

// Several agents in one location: each reports, and the location's verdict folds them
// before the quorum counts it.
func TestCombineAgentsOfOneLocation(t *testing.T) {
	rep := func(loc, agent, status string) *store.LocationReport {
		return &store.LocationReport{Location: loc, Agent: agent, Status: status, Reason: agent + " says " + status, Halt: agent + " halts"}
	}
	one := &store.Deploy{Locations: []string{"eu"}}
	two := &store.Deploy{Locations: []string{"eu", "us"}}
	both := map[string][]string{"eu": {"eu-1", "eu-2"}}
	cases := []struct {
		name    string
		d       *store.Deploy
		reports []*store.LocationReport
		awaited map[string][]string
		q       configs.Quorum
		final   bool
		status  string
		reason  string // a part of the reason
		halt    string
	}{
		{"one agent passed, the other awaited: the location waits", one,
			[]*store.LocationReport{rep("eu", "eu-1", store.StatusPassed)}, both, configs.Quorum{Fail: 1}, false, "", "", ""},
		{"the other agent's failure after a pass fails the deploy", one,
			[]*store.LocationReport{rep("eu", "eu-1", store.StatusPassed), rep("eu", "eu-2", store.StatusFailed)}, both, configs.Quorum{Fail: 1}, false,
			store.StatusFailed, "eu-2 says failed (agents: eu-1 passed, eu-2 failed)", "eu-2 halts"},
		{"a failure does not wait for the other agent", one,
			[]*store.LocationReport{rep("eu", "eu-2", store.StatusFailed)}, both, configs.Quorum{Fail: 1}, false,
			store.StatusFailed, "eu-2 says failed (agents: eu-2 failed, eu-1 never reported)", "eu-2 halts"},
		{"both passed", one,
			[]*store.LocationReport{rep("eu", "eu-1", store.StatusPassed), rep("eu", "eu-2", store.StatusPassed)}, both, configs.Quorum{Fail: 1}, false,
			store.StatusPassed, "eu-1 says passed (agents: eu-1 passed, eu-2 passed)", ""},
		{"once the wait is over, the agents that reported decide, naming the silent one", one,
			[]*store.LocationReport{rep("eu", "eu-1", store.StatusPassed)}, both, configs.Quorum{Fail: 1}, true,
			store.StatusPassed, "eu-1 says passed (agents: eu-1 passed, eu-2 never reported)", ""},
		{"an agent not awaited (started after the deploy) is not waited for", one,
			[]*store.LocationReport{rep("eu", "eu-1", store.StatusPassed)}, map[string][]string{"eu": {"eu-1"}}, configs.Quorum{Fail: 1}, false,
			store.StatusPassed, "eu-1 says passed", ""},
		{"one agent could not judge, the other passed: the location passed", one,
			[]*store.LocationReport{rep("eu", "eu-1", store.StatusInconclusive), rep("eu", "eu-2", store.StatusPassed)}, both, configs.Quorum{Fail: 1}, false,
			store.StatusPassed, "eu-2 says passed", ""},
		{"a location folded from two agents counts once in the quorum", two,
			[]*store.LocationReport{rep("eu", "eu-1", store.StatusFailed), rep("eu", "eu-2", store.StatusFailed), rep("us", "us-1", store.StatusPassed)},
			both, configs.Quorum{Fail: 2}, false, store.StatusPassed, "passed in 1 of 2 locations; failing in 1, short of fail: 2", ""},
		{"a location with a pending agent is missing until the wait is over", two,
			[]*store.LocationReport{rep("eu", "eu-1", store.StatusPassed), rep("us", "us-1", store.StatusPassed)}, both, configs.Quorum{Fail: 1}, false,
			"", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := combine(c.d, c.reports, c.q, c.final, c.awaited)
			if v.status != c.status || !strings.Contains(v.reason, c.reason) || v.halt != c.halt {
				t.Errorf("got %q %q halt %q; want %q with %q, halt %q", v.status, v.reason, v.halt, c.status, c.reason, c.halt)
			}
		})
	}
	// the failing verdict carries every failing agent's report, for its evidence
	v := combine(one, []*store.LocationReport{rep("eu", "eu-1", store.StatusFailed), rep("eu", "eu-2", store.StatusFailed)}, configs.Quorum{Fail: 1}, false, both)
	if len(v.from) != 2 {
		t.Errorf("a failure seen by both agents rests on %d reports; want 2", len(v.from))
	}
}

// The agents a location waits for: alive, with the service, running since before the
// deploy was registered.
func TestAwaitedAgents(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	d := &store.Deploy{Service: "web", CreatedAt: at}
	member := func(name, loc string, started time.Duration, services ...string) *store.Member {
		return &store.Member{Name: name, Location: loc, Started: at.Add(started), Services: services}
	}
	members := []*store.Member{
		member("eu-1", "eu", -time.Hour, "web"),
		member("eu-2", "eu", 0, "web", "api"),    // started as the deploy was registered
		member("eu-3", "eu", time.Second, "web"), // started after: a restart, not waited for
		member("eu-4", "eu", -time.Hour, "api"),  // without the service
		member("eu-5", "eu", -time.Hour, "web"),  // silent
		member("us-1", "us", -time.Minute, "web"),
	}
	state := func(m *store.Member) memberState {
		if m.Name == "eu-5" {
			return memberSilent
		}
		return memberAlive
	}
	got := awaited(members, state, d)
	want := map[string][]string{"eu": {"eu-1", "eu-2"}, "us": {"us-1"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("awaited %v; want %v", got, want)
	}
}
