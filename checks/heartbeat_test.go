package checks

import (
	"context"
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
	book := NewHeartbeats(clock.Now, nil)
	c := heartbeatCheck(t, book)

	// Just started: no beat yet is no verdict yet.
	wantOutcome(t, run(t, c, Input{}), Inconclusive, "no beat yet: beats have been expected since 2026-12-01T03:00:00Z (0s ago)")
	clock.Advance(61 * time.Minute)
	wantOutcome(t, run(t, c, Input{}), Fail, "no beat since 2026-12-01T03:00:00Z, when beats began to be expected (1h1m0s ago, window 1h0m0s)")

	book.Record(t.Context(), "nightly", Beat{Version: "v1"})
	clock.Advance(10 * time.Minute)
	res := run(t, c, Input{})
	wantOutcome(t, res, Pass)
	if res.Vars["since_last_s"] != 600.0 || res.Vars["beats"] != 1 || res.Vars["last_version"] != "v1" {
		t.Errorf("vars = %v", res.Vars)
	}
	book.Record(t.Context(), "other", Beat{}) // another check's beats are not this one's
	clock.Advance(55 * time.Minute)
	wantOutcome(t, run(t, c, Input{}), Fail, "no beat for 1h5m0s (window 1h0m0s); the last at 2026-12-01T04:01:00Z, one was due by 2026-12-01T05:01:00Z")

	book.Record(t.Context(), "nightly", Beat{Status: "fail", Message: "backup: disk full"})
	wantOutcome(t, run(t, c, Input{}), Fail, "reported a failure: backup: disk full")
}

// bookStore keeps beats in another record: a store of beats from before the agent started,
// taken without a break since *from.
type bookStore struct {
	h    *Heartbeats
	from *time.Time
}

func (s bookStore) SaveBeat(ctx context.Context, name string, b Beat) error {
	_, err := s.h.Record(ctx, name, b)
	return err
}

func (s bookStore) Beats(ctx context.Context, name string, since time.Time) ([]Beat, *Beat, error) {
	return s.h.since(ctx, name, since)
}

func (s bookStore) Taken(context.Context, string, time.Time) (Taking, error) {
	return Taking{Since: *s.from}, nil
}

// With a store, an agent reads the beats from before it started: a recent one passes at
// once. An old one is judged over the time the store's agents took beats without a break,
// not over this process's: after a long outage it is no verdict for a window (beats posted
// while no agent ran were lost, not missed), then a failure; across a restart that broke
// nothing, a failure stays one at once. A beat recorded now is in the store.
func TestHeartbeatStoredBeatsAfterARestart(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)}
	from := clock.Now()
	before := NewHeartbeats(clock.Now, nil)
	before.Record(t.Context(), "nightly", Beat{Version: "v1"})
	clock.Advance(10 * time.Minute)
	wantOutcome(t, run(t, heartbeatCheck(t, NewHeartbeats(clock.Now, bookStore{before, &from})), Input{}), Pass)

	clock.Advance(26 * time.Hour)
	from = clock.Now() // no agent took beats for 26h
	book := NewHeartbeats(clock.Now, bookStore{before, &from})
	c := heartbeatCheck(t, book)
	wantOutcome(t, run(t, c, Input{}), Inconclusive,
		"no beat for 26h10m0s (window 1h0m0s), but beats have been taken without a break only since 2026-12-02T05:10:00Z (0s ago)")
	clock.Advance(time.Hour + time.Minute)
	wantOutcome(t, run(t, c, Input{}), Fail,
		"no beat for 27h11m0s (window 1h0m0s); the last at 2026-12-01T03:00:00Z, one was due by 2026-12-02T06:10:00Z (beats expected without a break since 2026-12-02T05:10:00Z)")
	// A restart the store's agents took beats across: the new process fails at once.
	clock.Advance(5 * time.Second)
	wantOutcome(t, run(t, heartbeatCheck(t, NewHeartbeats(clock.Now, bookStore{before, &from})), Input{}), Fail, "no beat for 27h11m5s")
	if _, err := book.Record(t.Context(), "nightly", Beat{Version: "v2"}); err != nil {
		t.Fatal(err)
	}
	wantOutcome(t, run(t, c, Input{}), Pass)
	if _, last, _ := before.since(t.Context(), "nightly", time.Time{}); last == nil || last.Version != "v2" {
		t.Errorf("the store's last beat: %+v", last)
	}
}

// A deploy can require a beat from its own version: none yet is inconclusive while the
// window since the deploy lasts, and a failure after it.
func TestHeartbeatDeployVersion(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)}
	book := NewHeartbeats(clock.Now, nil)
	c := heartbeatCheck(t, book)
	book.Record(t.Context(), "nightly", Beat{Version: "v1"})
	deploy := &Deploy{ID: "d1", Service: "jobs", Version: "v2", StartedAt: clock.Now()}

	clock.Advance(time.Minute)
	book.Record(t.Context(), "nightly", Beat{Version: "v1"}) // an old worker still beating
	res := run(t, c, Input{Deploy: deploy})
	wantOutcome(t, res, Inconclusive, "no beat from version v2 yet: the deploy began 1m0s ago")
	wantNotServed(t, res, true)

	book.Record(t.Context(), "nightly", Beat{Version: "v2"})
	res = run(t, c, Input{Deploy: deploy})
	wantOutcome(t, res, Pass)
	if res.Vars["deploy_version_beats"] != 1 {
		t.Errorf("deploy_version_beats = %v", res.Vars["deploy_version_beats"])
	}

	late := &Deploy{ID: "d2", Service: "jobs", Version: "v3", StartedAt: clock.Now()}
	for range 7 {
		clock.Advance(10 * time.Minute)
		book.Record(t.Context(), "nightly", Beat{Version: "v2"})
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
	book := NewHeartbeats(clock.Now, nil)
	for range 3 * heartbeatKeep {
		book.Record(t.Context(), "nightly", Beat{})
	}
	recent, last, _ := book.since(t.Context(), "nightly", time.Time{})
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
