package agent

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/clock"
	"github.com/vigil-monitor/vigil/internal/pgtest"
	"github.com/vigil-monitor/vigil/store"
)

// Where agents share a PostgreSQL store, a reload's heartbeat checks reach the store as
// the reload is applied, not at the agent's next heartbeat: the other agents judge the
// checks by the set in force. A check moved from one agent's config to another's by two
// reloads is forgotten by the first at once and judged by the second from its reload (it
// failed there, judged from the first agent's start, which still vouched for beats it no
// longer took); a check added is taken from the reload on. Heartbeats of 5m: no tick comes
// during the test, so every change seen is the reload's own.
func TestHeartbeatReloadReachesOtherAgentsAtOnce(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Options{})
	dsn := srv.Database(t)
	const (
		weekly = "  - {name: weekly, kind: heartbeat, every: 1s, window: 5s, token: beat-token-9876543210}\n"
		daily  = "  - {name: daily, kind: heartbeat, every: 1s, window: 3s, token: beat-token-5555555555}\n"
	)
	yaml := func(name, checks string) string {
		return onPostgres(dsn, name, "5m", "  - {name: nightly, kind: heartbeat, every: 1s, window: 3s, token: beat-token-0123456789}\n"+checks)
	}
	start := func(name, checks string) *harness { return startOnPostgres(t, dsn, yaml(name, checks)) }
	reload := func(h *harness, name, checks string) {
		t.Helper()
		if err := reloadWith(t, h, yaml(name, checks)); err != nil {
			t.Fatal(err)
		}
	}
	// taken is since when the other agent (two) reads that check's beats are taken.
	var two *harness
	taken := func(check string) store.BeatsTaking {
		t.Helper()
		tk, err := two.a.store.BeatsTaken(t.Context(), check, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}

	one := start("eu-1", weekly)
	two = start("eu-2", "")
	if tk := taken("weekly"); tk.Since.IsZero() {
		t.Fatalf("weekly after eu-1 joined: %+v, want its beats taken", tk)
	}
	time.Sleep(5500 * time.Millisecond) // a window in which the job never beat, while eu-1 took beats

	reload(one, "eu-1", "") // weekly leaves eu-1 ...
	if tk := taken("weekly"); !tk.Since.IsZero() || len(tk.Before) != 0 {
		t.Fatalf("weekly right after eu-1's reload took it out: %+v, want it forgotten (no agent takes its beats)", tk)
	}
	reload(two, "eu-2", weekly) // ... for eu-2, which judges it from now
	wantRun(t, two, "weekly", "inconclusive", "no beat yet: beats have been expected since ")

	before := time.Now()
	reload(one, "eu-1", daily)
	if tk := taken("daily"); tk.Since.IsZero() || tk.Since.Before(before.Add(-time.Second)) {
		t.Fatalf("daily right after eu-1's reload added it: %+v, want its beats taken since the reload (%s)", tk, before.Format(time.RFC3339Nano))
	}
}

// heldBeat is a store whose next heartbeat write, once armed, waits until released: a
// store slow to take one.
type heldBeat struct {
	Store
	armed   atomic.Bool
	held    chan struct{} // closed when a write is held
	release chan struct{}
	written atomic.Int64
}

func (s *heldBeat) Heartbeat(ctx context.Context, m *store.Member) (string, error) {
	if s.armed.CompareAndSwap(true, false) {
		close(s.held)
		<-s.release
	}
	defer s.written.Add(1)
	return s.Store.Heartbeat(ctx, m)
}

// A heartbeat written from the config before a reload, and slow to reach the store, does
// not land after the reload's own write: it would give the store back, until the next
// heartbeat, the check the reload took out. The reload's write waits for it. SQLite, on a
// clock the test moves.
func TestHeartbeatBeforeAReloadDoesNotLandAfterIt(t *testing.T) {
	dir := t.TempDir()
	st := openSQLite(t, dir)
	hs := &heldBeat{Store: st, held: make(chan struct{}), release: make(chan struct{})}
	fc := clock.NewFake(time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC))
	h := startAgentWith(t, dir, nightlyAgent+weeklyCheck, Options{Store: hs, Clock: fc})
	hs.armed.Store(true)
	fc.Advance(10 * time.Second) // the heartbeat, built with weekly, is held
	select {
	case <-hs.held:
	case <-time.After(20 * time.Second):
		t.Fatal("the heartbeat was not written within 20s")
	}
	if err := os.WriteFile(h.cfgPath, []byte(nightlyAgent), 0o600); err != nil {
		t.Fatal(err)
	}
	reloaded := make(chan error, 1)
	go func() { reloaded <- h.a.Reload() }()
	select {
	case err := <-reloaded: // a reload that did not wait for the heartbeat under way
		reloaded <- err
	case <-time.After(time.Second):
	}
	close(hs.release)
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the reload did not return within 20s")
	}
	eventually(t, 20*time.Second, "the held heartbeat and the reload's written", func() bool { return hs.written.Load() >= 3 })
	if tk, err := st.BeatsTaken(t.Context(), "weekly", fc.Now()); err != nil || !tk.Since.IsZero() {
		t.Fatalf("weekly after the reload took it out: %+v %v; want it forgotten", tk, err)
	}
}
