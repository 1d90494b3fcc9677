package agent

import (
	"os"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/clock"
	"github.com/vigil-monitor/vigil/internal/pgtest"
)

// A clean stop of the only agent ends the time beats are taken at once: a job whose beat
// came due while no agent ran is not blamed for it when the agent is back, however soon
// (it was, when back within the stopped agent's 30 s of silence: the stopped agent still
// vouched for beats nobody took). A job that then misses a window while the agent runs
// fails. SQLite, on a clock the test moves.
func TestHeartbeatNotBlamedForBeatsDueWhileStopped(t *testing.T) {
	dir := t.TempDir()
	st := openSQLite(t, dir)
	fc := clock.NewFake(time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC))
	h := startAgentWith(t, dir, nightlyAgent, Options{Store: st, Clock: fc})
	wantRun(t, h, "nightly", "inconclusive", "no beat yet")
	h.postBeat()
	for range 4 {
		stepHeartbeat(t, st, fc)
	}
	h.stop()                     // at 03:00:40, a clean stop
	fc.Advance(25 * time.Second) // the job's beat due at 03:01:00 reaches no agent
	h = startAgentWith(t, dir, nightlyAgent, Options{Store: st, Clock: fc})
	wantRun(t, h, "nightly", "inconclusive", "no beat for 1m5s (window 1m0s), but beats have been taken without a break only since 2026-12-01T03:01:05Z (0s ago)")
	for range 6 {
		stepHeartbeat(t, st, fc)
	}
	wantRun(t, h, "nightly", "fail", "no beat for 2m5s (window 1m0s); the last at 2026-12-01T03:00:00Z, one was due by 2026-12-01T03:02:05Z (beats expected without a break since 2026-12-01T03:01:05Z)")
}

// A heartbeat check taken out of the config and put back ten minutes later is judged from
// when it came back, not from its first run (it failed at once, as if beats had been
// taken all along, though the agent refused every one of them meanwhile): from the reload
// itself, which writes the agent's heartbeat checks, not from the heartbeat after it.
// SQLite, on a clock the test moves.
func TestHeartbeatCheckPutBackIsJudgedFromThen(t *testing.T) {
	dir := t.TempDir()
	st := openSQLite(t, dir)
	fc := clock.NewFake(time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC))
	h := startAgentWith(t, dir, nightlyAgent+weeklyCheck, Options{Store: st, Clock: fc})
	reload := func(yaml string) {
		t.Helper()
		if err := os.WriteFile(h.cfgPath, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := h.a.Reload(); err != nil {
			t.Fatal(err)
		}
		stepHeartbeat(t, st, fc)
	}
	wantRun(t, h, "weekly", "inconclusive", "no beat yet")
	for range 7 {
		stepHeartbeat(t, st, fc)
	}
	wantRun(t, h, "weekly", "fail", "no beat since 2026-12-01T03:00:00Z")
	reload(nightlyAgent) // at 03:01:10
	for range 59 {
		stepHeartbeat(t, st, fc) // the agent runs all along, without the check
	}
	reload(nightlyAgent + weeklyCheck) // at 03:11:10
	wantRun(t, h, "weekly", "inconclusive", "no beat yet: beats have been expected since 2026-12-01T03:11:10Z (10s ago)")
	for range 6 {
		stepHeartbeat(t, st, fc)
	}
	wantRun(t, h, "weekly", "fail", "no beat since 2026-12-01T03:11:10Z")
}

// Where agents share a PostgreSQL store, a check taken out of one agent's config by a
// reload, or an agent stopped cleanly, breaks nothing while another agent still has the
// check: a job overdue stays failing. Once the last agent that has it stops cleanly and
// comes back, a job that beat in time is given a window, whatever was due meanwhile.
func TestHeartbeatBreaksWithSharedStore(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Options{})
	dsn := srv.Database(t)
	const nightly = "  - {name: nightly, kind: heartbeat, every: 1s, window: 3s, token: beat-token-0123456789}\n"
	yaml := func(name, checks string) string {
		return onPostgres(dsn, name, "1s", "  - {name: other, kind: heartbeat, every: 1s, window: 3s, token: beat-token-9876543210}\n"+checks)
	}
	start := func(name, checks string) *harness { return startOnPostgres(t, dsn, yaml(name, checks)) }
	one, two := start("eu-1", nightly), start("eu-2", nightly)
	one.postBeat()
	eventually(t, 30*time.Second, "a window without a beat", func() bool { o, _ := one.runCheck("nightly"); return o == "fail" })

	if err := reloadWith(t, two, yaml("eu-2", "")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // two heartbeats of eu-2 without the check
	wantRun(t, one, "nightly", "fail", "(beats expected without a break since ")

	two.stop()
	time.Sleep(time.Second)
	wantRun(t, one, "nightly", "fail", "(beats expected without a break since ")

	// The job beats in time; its next beat comes due while no agent has the check.
	one.postBeat()
	time.Sleep(2 * time.Second)
	one.stop()
	time.Sleep(2 * time.Second)
	one = start("eu-1", nightly)
	wantRun(t, one, "nightly", "inconclusive", "but beats have been taken without a break only since ")
}
