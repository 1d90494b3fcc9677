package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/pgtest"
	"github.com/vigil-monitor/vigil/store"
)

// previousRelease is the commit the rolling-upgrade test builds the older vigil from: the
// last one before migrations 17-19 (heartbeat takers, the outbox's tally, its queued_at).
const previousRelease = "5fa84372d6924f388b9d2d1e2398b98410f13b96"

var (
	oldBinOnce sync.Once
	oldBinPath string
	oldBinErr  error
	oldBinSkip string
)

// olderVigil builds the vigil of commit from the repository's history, once per test run.
// It skips the test, saying why, where there is no git or no such commit (a source
// archive, a shallow clone): CI runs on a full clone. VIGIL_OLD_BINARY names a binary
// built already.
func olderVigil(t *testing.T, commit string) string {
	t.Helper()
	if p := os.Getenv("VIGIL_OLD_BINARY"); p != "" {
		return p
	}
	oldBinOnce.Do(func() {
		if _, err := exec.LookPath("git"); err != nil {
			oldBinSkip = "no git on PATH: the older vigil is built from the repository's history"
			return
		}
		if out, err := exec.Command("git", "cat-file", "-e", commit+"^{commit}").CombinedOutput(); err != nil {
			oldBinSkip = fmt.Sprintf("commit %s is not in this clone's history (a shallow clone or a source archive? `git fetch --unshallow`): %v %s",
				commit, err, strings.TrimSpace(string(out)))
			return
		}
		dir, err := os.MkdirTemp("", "vigil-old-")
		if err != nil {
			oldBinErr = err
			return
		}
		oldBinPath = filepath.Join(dir, "vigil") // TestMain removes dir
		src := filepath.Join(dir, "src")
		if out, err := exec.Command("git", "worktree", "add", "--detach", src, commit).CombinedOutput(); err != nil {
			oldBinErr = fmt.Errorf("git worktree add %s: %v\n%s", commit, err, out)
			return
		}
		defer exec.Command("git", "worktree", "remove", "--force", src).Run()
		build := exec.Command("go", "build", "-o", oldBinPath, "./cmd/vigil")
		build.Dir = src
		if out, err := build.CombinedOutput(); err != nil {
			oldBinErr = fmt.Errorf("building vigil %s: %v\n%s", commit, err, out)
		}
	})
	if oldBinSkip != "" {
		t.Skip(oldBinSkip)
	}
	if oldBinErr != nil {
		t.Fatal(oldBinErr)
	}
	return oldBinPath
}

// A rolling upgrade of vigil on one PostgreSQL store, as `helm upgrade` rolls the chart's
// replicas one at a time: agent vigil-0 of the previous release verifies a failing deploy
// and watches a heartbeat check that misses its beat; vigil-1 of this version starts
// meanwhile and migrates the store under it (17-19); vigil-0 writes the deploy's pages
// into the new schema while Slack paces them (429 Retry-After), and is stopped, as the
// rollout stops it, before they go out. Then vigil-1 delivers what vigil-0 left: every
// page once, none dead-lettered, the rollback webhook once, the verdict kept, the outbox's
// tally equal to its rows. Last, a `helm rollback`: the older binary on the migrated store
// refuses to start, naming both schema versions.
//
// Before queuedAt read an entry with no queued_at as queued at its creation, vigil-0's
// page, taken over by vigil-1, was read as queued in 1970, past the hour of free pacing,
// and dead-lettered after max_attempts 429s: "ops deploy_failed: dead after 3 attempts".
func TestRollingUpgradeFromThePreviousRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the previous release of vigil from git history")
	}
	dsn := pgtest.Start(t, pgtest.Options{}).Database(t)
	old, cur := olderVigil(t, previousRelease), vigilBinary(t)
	a := newApp(t)
	a.mode.Store("broken")
	slack := loopback.NewSlack(t)
	hook := loopback.NewWebhook(t)
	const beatToken = "upgrade-beat-token-0123456789"
	cfg := filepath.Join(t.TempDir(), "vigil.yaml")
	body := fmt.Sprintf(`
agent: {location: eu, heartbeat: 200ms, outbox_lease: 3s}
store: {driver: postgres, dsn: %q, pool: {max_conns: 4}}
defaults: {notify: [ops]}
checks:
  - {name: home, kind: http, every: 1h, retries: 0, request: {url: "%s/"}, assert: ["status == 200"]}
  - {name: nightly, kind: heartbeat, every: 1s, window: 2s, token: %q}
services:
  web: {checks: [home], verify: {interval: 1s, count: 10, failure_limit: 5}, on_failure: [ops, rollback]}
notifiers:
  ops: {type: slack, token: %q, channel: "#deploys", api_url: %q, max_attempts: 3}
  rollback: {type: webhook, url: %q, secret: %q, action: rollback, max_attempts: 50}
`, dsn, a.URL, beatToken, loopback.SlackToken, slack.APIURL(), hook.URL(), loopback.WebhookSecret)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func(bin, name string) *agentProc {
		addr := freeAddr(t)
		cmd := exec.Command(bin, "agent", "-c", cfg, "--listen", addr, "--log-level", "debug")
		cmd.Env = append(os.Environ(), "VIGIL_AGENT__NAME="+name)
		return runAgentCmd(t, cmd, addr)
	}
	waitFor := func(what string, limit time.Duration, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(limit); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s within %s", what, limit)
			}
		}
	}

	// The previous release runs; a job beats once through it, then stops beating.
	pa := start(old, "vigil-0")
	req, _ := http.NewRequest("POST", pa.url+"/api/v1/heartbeats/nightly", strings.NewReader(`{"status":"ok"}`))
	req.Header.Set("Authorization", "Bearer "+beatToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("a beat to the previous release: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// Slack paces every message for a while: nothing goes out before vigil-0 stops.
	slack.Fail("chat.postMessage", loopback.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1", Times: 14})
	resp, err := http.Post(pa.url+"/api/v1/deploys", "application/json", strings.NewReader(`{"service":"web","version":"v2"}`))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	if reg.ID == "" {
		t.Fatalf("registering through the previous release: %s", resp.Status)
	}

	// This version starts beside it, with the deploy in flight, and migrates the store.
	pb := start(cur, "vigil-1")
	st, err := store.OpenPostgres(t.Context(), dsn, store.PoolOptions{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	paced := func() int {
		n := 0
		for _, c := range slack.CallsTo("chat.postMessage") {
			n += b2i(c.Status == http.StatusTooManyRequests)
		}
		return n
	}
	waitFor("the deploy's verdict and a paced Slack message", 60*time.Second, func() bool {
		d, err := st.Deploy(t.Context(), reg.ID)
		return err == nil && d.Status != store.StatusVerifying && paced() > 0
	})
	reports, _ := st.LocationReports(t.Context(), reg.ID)
	for _, r := range reports {
		t.Logf("%s reported %s on the deploy", r.Agent, r.Status)
	}
	// The rollout replaces vigil-0.
	if code := pa.terminate(); code != 0 {
		t.Errorf("the previous release's SIGTERM: exit %d, want 0", code)
	}

	// vigil-1 delivers what is left, once Slack takes messages again.
	waitFor("the outbox to settle", 120*time.Second, func() bool {
		n, err := st.Outbox(t.Context(), store.OutboxPending, 10)
		return err == nil && len(n) == 0 && hook.Count(reg.ID+":deploy_failed") > 0
	})
	entries, err := st.Outbox(t.Context(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int{}
	for _, e := range entries {
		rows[e.Status]++
		if e.Status != store.OutboxDelivered {
			t.Errorf("%s %s (%s): %s after %d attempts (%s); want delivered", e.Notifier, e.Event, e.Key, e.Status, e.Attempts, e.LastError)
		}
	}
	if tally, err := st.OutboxCounts(t.Context()); err != nil || !maps.Equal(tally, rows) {
		t.Errorf("the outbox's tally: %v, %v; its rows: %v", tally, err, rows)
	}
	if d, err := st.Deploy(t.Context(), reg.ID); err != nil || d.Status != store.StatusFailed {
		t.Errorf("the deploy after the hand-over: %+v, %v; want failed", d, err)
	}
	if n := hook.Count(reg.ID + ":deploy_failed"); n != 1 {
		t.Errorf("the rollback webhook was accepted %d times; want 1", n)
	}
	roots := map[string]int{}
	for _, m := range slack.Roots() {
		switch {
		case strings.Contains(m.Text, reg.ID):
			roots["deploy"]++
		case strings.Contains(m.Text, "nightly"):
			roots["nightly"]++
		default:
			roots[m.Text]++
		}
	}
	if roots["deploy"] != 1 || roots["nightly"] != 1 || len(roots) != 2 {
		t.Errorf("Slack messages: %v; want one of the deploy's failure, one of nightly's missed beat", roots)
	}

	// helm rollback: the previous release on the store this one migrated.
	pb.terminate()
	cmd := exec.Command(old, "agent", "-c", cfg, "--listen", freeAddr(t))
	cmd.Env = append(os.Environ(), "VIGIL_AGENT__NAME=vigil-0")
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the previous release on the migrated store ran on:\n%s", out)
	}
	if !regexp.MustCompile(`the database is at schema version (19|[2-9]\d), newer than this vigil knows \(16\)`).Match(out) || err == nil {
		t.Errorf("the previous release on the migrated store: %v\n%s\nwant a refusal naming schema versions 19 or later and 16", err, out)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
