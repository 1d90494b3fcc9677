package checks

import (
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/configs"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const heartbeatYAML = `
checks:
  - name: nightly
    kind: heartbeat
    window: 1h
    token: 0123456789abcdef0123
    require_deploy_version: true
`

func heartbeatCheck(t *testing.T, book *Heartbeats) *Check {
	t.Helper()
	cfg, err := configs.Parse(t.TempDir()+"/vigil.yaml", []byte(heartbeatYAML), configs.Options{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := Build(cfg, Deps{Heartbeats: book})
	if err != nil {
		t.Fatal(err)
	}
	return list[0]
}

func TestHeartbeatWindow(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)}
	book := NewHeartbeats(clock.Now)
	c := heartbeatCheck(t, book)

	// Just started: no beat yet is no verdict yet.
	wantOutcome(t, run(t, c, Input{}), Inconclusive, "no beat yet: the agent started 0s ago")
	clock.Advance(61 * time.Minute)
	wantOutcome(t, run(t, c, Input{}), Fail, "no beat in the 1h1m0s since the agent started")

	book.Record("nightly", Beat{Version: "v1"})
	clock.Advance(10 * time.Minute)
	res := run(t, c, Input{})
	wantOutcome(t, res, Pass)
	if res.Vars["since_last_s"] != 600.0 || res.Vars["beats"] != 1 || res.Vars["last_version"] != "v1" {
		t.Errorf("vars = %v", res.Vars)
	}
	book.Record("other", Beat{}) // another check's beats are not this one's
	clock.Advance(55 * time.Minute)
	wantOutcome(t, run(t, c, Input{}), Fail, "no beat for 1h5m0s (window 1h0m0s); the last at 2026-12-01T04:01:00Z")

	book.Record("nightly", Beat{Status: "fail", Message: "backup: disk full"})
	wantOutcome(t, run(t, c, Input{}), Fail, "reported a failure: backup: disk full")
}

// A deploy can require a beat from its own version: none yet is inconclusive while the
// window since the deploy lasts, and a failure after it.
func TestHeartbeatDeployVersion(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)}
	book := NewHeartbeats(clock.Now)
	c := heartbeatCheck(t, book)
	book.Record("nightly", Beat{Version: "v1"})
	deploy := &Deploy{ID: "d1", Service: "jobs", Version: "v2", StartedAt: clock.Now()}

	clock.Advance(time.Minute)
	book.Record("nightly", Beat{Version: "v1"}) // an old worker still beating
	wantOutcome(t, run(t, c, Input{Deploy: deploy}), Inconclusive, "no beat from version v2 yet: the deploy began 1m0s ago")

	book.Record("nightly", Beat{Version: "v2"})
	res := run(t, c, Input{Deploy: deploy})
	wantOutcome(t, res, Pass)
	if res.Vars["deploy_version_beats"] != 1 {
		t.Errorf("deploy_version_beats = %v", res.Vars["deploy_version_beats"])
	}

	late := &Deploy{ID: "d2", Service: "jobs", Version: "v3", StartedAt: clock.Now()}
	for range 7 {
		clock.Advance(10 * time.Minute)
		book.Record("nightly", Beat{Version: "v2"})
	}
	wantOutcome(t, run(t, c, Input{Deploy: late}), Fail, "no beat from version v3 in the 1h10m0s since the deploy")
}

// Outside the agent there are no beats to read: an error that says where to run it.
func TestHeartbeatWithoutAgentIsError(t *testing.T) {
	c := heartbeatCheck(t, nil)
	wantOutcome(t, run(t, c, Input{}), Error, "run them in vigil agent")
}

// The record keeps a bounded number of beats per check, whatever is posted.
func TestHeartbeatsBounded(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	book := NewHeartbeats(clock.Now)
	for range 3 * heartbeatKeep {
		book.Record("nightly", Beat{})
	}
	recent, last := book.since("nightly", time.Time{})
	if len(recent) != heartbeatKeep || last == nil || last.Status != "ok" {
		t.Fatalf("kept %d beats, last %v", len(recent), last)
	}
}

func TestHeartbeatConfigErrors(t *testing.T) {
	base := "\nchecks:\n  - name: nightly\n    kind: heartbeat\n"
	wantBuildError(t, base+"    token: 0123456789abcdef0123\n", "checks[0].window: missing")
	wantBuildError(t, base+"    window: 1h\n", "checks[0].token: missing", "openssl rand -hex 16")
	wantBuildError(t, base+"    window: 1h\n    token: short\n", "checks[0].token: too short")
	wantBuildError(t, base+"    window: 30s\n    every: 1m\n    token: 0123456789abcdef0123\n", "checks[0].window: 30s is shorter than the check's every")
}
