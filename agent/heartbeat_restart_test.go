package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/clock"
	"github.com/vigil-monitor/vigil/internal/pgtest"
	"github.com/vigil-monitor/vigil/store"
)

// nightlyAgent is agent eu-1 on a store of its own, beating every 10s, with the heartbeat
// check nightly; weeklyCheck is a second heartbeat check, to add to its checks.
const (
	nightlyAgent = `agent: {api_token: s3cret-token, name: eu-1, heartbeat: 10s}
checks:
  - {name: nightly, kind: heartbeat, every: 1m, window: 1m, token: beat-token-0123456789}
`
	weeklyCheck = "  - {name: weekly, kind: heartbeat, every: 1m, window: 1m, token: beat-token-9876543210}\n"
)

// runCheck runs a check through the API and returns its outcome and its whole answer.
func (h *harness) runCheck(name string) (string, string) {
	h.t.Helper()
	_, out := h.request("POST", "/api/v1/checks/"+name+"/run", "")
	outcome, _ := out["outcome"].(string)
	return outcome, fmt.Sprint(out)
}

// postBeat posts a plain beat for the check nightly.
func (h *harness) postBeat() {
	h.t.Helper()
	if status, out := h.request("POST", "/api/v1/heartbeats/nightly", "", "Authorization", "Bearer beat-token-0123456789"); status != 202 {
		h.t.Fatalf("a beat: %d %v", status, out)
	}
}

func wantRun(t *testing.T, h *harness, check, outcome, reason string) {
	t.Helper()
	if got, out := h.runCheck(check); got != outcome || !strings.Contains(out, reason) {
		t.Fatalf("%s: %s, want %s with %q:\n%s", check, got, outcome, reason, out)
	}
}

// A heartbeat check failing before a restart of a few seconds still fails right after it:
// the job missed its beat while the agent was there to take it, and a missed beat is
// judged over the times the store's agents took beats without a break, not over the new
// process's uptime (it was inconclusive for a window after any restart, which hid a job
// failing for days and stalled its incident). A check added with the restart is given a
// window, and so is a job that beat in time before an outage (beats posted then were
// lost, not missed). SQLite, on a clock the test moves.
func TestHeartbeatFailingStaysFailingAcrossARestart(t *testing.T) {
	dir := t.TempDir()
	st := openSQLite(t, dir)
	fc := clock.NewFake(time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC))
	start := func(yaml string) *harness { return startAgentWith(t, dir, yaml, Options{Store: st, Clock: fc}) }
	step := func() { t.Helper(); stepHeartbeat(t, st, fc) }

	h := start(nightlyAgent)
	wantRun(t, h, "nightly", "inconclusive", "no beat yet")
	h.postBeat()
	for range 7 {
		step()
	}
	wantRun(t, h, "nightly", "fail", "no beat for 1m10s (window 1m0s); the last at 2026-12-01T03:00:00Z")

	h.stop()
	fc.Advance(3 * time.Second) // a restart of a few seconds
	h = start(nightlyAgent + weeklyCheck)
	wantRun(t, h, "nightly", "fail", "no beat for 1m13s (window 1m0s); the last at 2026-12-01T03:00:00Z, one was due by 2026-12-01T03:01:00Z (beats expected without a break from 2026-12-01T03:00:00Z to 2026-12-01T03:01:10Z)")
	wantRun(t, h, "weekly", "inconclusive", "no beat yet: beats have been expected since 2026-12-01T03:01:13Z (0s ago)")
	h.postBeat()

	h.stop()
	fc.Advance(time.Hour) // an outage: no agent took beats
	h = start(nightlyAgent)
	wantRun(t, h, "nightly", "inconclusive", "no beat for 1h0m0s (window 1m0s), but beats have been taken without a break only since 2026-12-01T04:01:13Z (0s ago)")
	for range 7 {
		step()
	}
	wantRun(t, h, "nightly", "fail", "one was due by 2026-12-01T04:02:13Z (beats expected without a break since 2026-12-01T04:01:13Z)")
}

// onPostgres is the config of agent name in location eu on the PostgreSQL at dsn, beating
// every heartbeat, with checks (YAML list items, one a line).
func onPostgres(dsn, name, heartbeat, checks string) string {
	return fmt.Sprintf(`
agent: {api_token: s3cret-token, location: eu, name: %s, heartbeat: %s}
store: {driver: postgres, dsn: %q}
checks:
%s`, name, heartbeat, dsn, checks)
}

// startOnPostgres runs an agent on yaml with a pool of its own on the PostgreSQL at dsn,
// as an agent on another host would have, stopped (then its pool closed) at cleanup.
func startOnPostgres(t *testing.T, dsn, yaml string) *harness {
	t.Helper()
	st, err := store.OpenPostgres(context.Background(), dsn, store.PoolOptions{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // after the agent stops: cleanups run last first
	return startAgentWith(t, t.TempDir(), yaml, Options{Store: st})
}

// stepHeartbeat moves the clock by a heartbeat (10s) and waits for the agent to write it.
func stepHeartbeat(t *testing.T, st *store.SQLite, fc *clock.Fake) {
	t.Helper()
	fc.Advance(10 * time.Second)
	eventually(t, 20*time.Second, "the heartbeat at "+fc.Now().Format(time.TimeOnly), func() bool {
		ms, err := st.Members(t.Context())
		return err == nil && len(ms) == 1 && ms[0].Heartbeat.Equal(fc.Now())
	})
}

// Where agents share a PostgreSQL store, one alive is enough: an agent restarted after
// longer than its own silence still fails a job that missed its beat while the other agent
// took beats; and once no agent ran for longer than that, a job that missed its beat while
// one did still fails at once (TestHeartbeatBreaksWithSharedStore: one that did not gets a
// window).
func TestHeartbeatTakenByAnyAgentOnPostgres(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Options{})
	dsn := srv.Database(t)
	watch, err := store.OpenPostgres(context.Background(), dsn, store.PoolOptions{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { watch.Close() })
	start := func(name string) *harness {
		return startOnPostgres(t, dsn, onPostgres(dsn, name, "200ms",
			"  - {name: nightly, kind: heartbeat, every: 1s, window: 3s, token: beat-token-0123456789}\n"))
	}
	// gone waits until the named agents' last heartbeats are older than their silence
	// (3 × 200ms), by the database's clock: no restart within it.
	gone := func(names ...string) {
		t.Helper()
		eventually(t, 20*time.Second, fmt.Sprintf("%v to fall silent", names), func() bool {
			ms, err := watch.Members(t.Context())
			if err != nil {
				return false
			}
			n := 0
			for _, m := range ms {
				if slices.Contains(names, m.Name) && m.ReadAt.Sub(m.Heartbeat) > time.Second {
					n++
				}
			}
			return n == len(names)
		})
	}

	one, two := start("eu-1"), start("eu-2")
	wantRun(t, one, "nightly", "inconclusive", "no beat yet")
	one.postBeat()
	eventually(t, 30*time.Second, "a window without a beat", func() bool { o, _ := two.runCheck("nightly"); return o == "fail" })

	two.stop()
	gone("eu-2")
	two = start("eu-2")
	wantRun(t, two, "nightly", "fail", "(beats expected without a break since ")

	one.stop()
	two.stop()
	gone("eu-1", "eu-2")
	one = start("eu-1")
	wantRun(t, one, "nightly", "fail", "(beats expected without a break from ")
}
