package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

func gateConfig(appURL, extra string) string {
	return fmt.Sprintf(`
agent: {api_token: gate-token}
checks:
  - {name: home, kind: http, every: 1h, retries: 0, request: {url: "%[1]s/"}, assert: ["status == 200"]}
  - {name: pool, kind: promql, every: 1h, retries: 0, server: "%[1]s", query: "max(pool_active)", assert: ["value < 50"]}
services:
  web: {checks: [home], verify: {interval: 100ms, count: 3}}
  compare: {checks: [pool], verify: {interval: 100ms, count: 3}}
  slow: {checks: [home], verify: {interval: 1h, count: 2}}
%s`, appURL, extra)
}

// gateSetup is the sample app and an agent config for it (gateConfig with a SQLite store)
// in a new temporary folder: the app and the config's path.
func gateSetup(t *testing.T) (*app, string) {
	t.Helper()
	a := newApp(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(cfg, []byte(gateConfig(a.URL, "store: {dsn: "+filepath.Join(dir, "v.db")+"}")), 0o600); err != nil {
		t.Fatal(err)
	}
	return a, cfg
}

// vigil gate's exit codes against a real agent process: what a pipeline acts on.
func TestGateExitCodes(t *testing.T) {
	a, cfg := gateSetup(t)
	p := startAgentProc(t, cfg, "")
	bin := vigilBinary(t)
	gate := func(mode string, args ...string) (int, string) {
		a.mode.Store(mode)
		cmd := exec.Command(bin, append([]string{"gate"}, args...)...)
		cmd.Env = append(os.Environ(), "VIGIL_API_TOKEN=gate-token")
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	for _, c := range []struct {
		name, mode string
		args       []string
		code       int
		want       string
	}{
		{"passed", "good", []string{"--agent", p.url, "--service", "web", "--version", "v1"}, 0, "PASSED"},
		{"failed", "broken", []string{"--agent", p.url, "--service", "web", "--version", "v2"}, 1, "home (1 of 1 runs failed"},
		// v1 put back after v2 failed, and failing too: not a signal to roll back again.
		{"a failed rollback", "broken", []string{"--agent", p.url, "--service", "web", "--version", "v1"}, 3, "rolled back deploy "},
		// --json prints the deploy as it ended, not as it was registered.
		{"failed, JSON", "broken", []string{"--agent", p.url, "--service", "web", "--version", "v3", "--json"}, 1, "\n  \"status\": \"failed\","},
		// --link goes with the deploy: the agent keeps it and answers it.
		{"links", "good", []string{"--agent", p.url, "--service", "web", "--version", "v4", "--json", "--link", "CI run=https://ci.example/runs/7"}, 0, `"url": "https://ci.example/runs/7"`},
		{"links, text", "good", []string{"--agent", p.url, "--service", "web", "--version", "v4b", "--link", "diff=https://git.example/compare/v3...v4b"}, 0, "  diff: https://git.example/compare/v3...v4b\n"},
		{"passed, and when it was ready", "good", []string{"--agent", p.url, "--service", "web", "--version", "v4c"}, 0, " after the deploy: every check passed once by then (usually by "},
		{"bad link", "good", []string{"--agent", p.url, "--service", "web", "--version", "v5", "--link", "diff"}, 2, "write NAME=URL"},
		{"timed out, JSON", "good", []string{"--agent", p.url, "--service", "slow", "--version", "v2", "--wait", "1s", "--json"}, 3, "\n  \"status\": \"verifying\","},
		// The app answers Prometheus queries with no series: nothing to judge. (A check
		// comparing with a baseline always has one here: the agent runs every check at start.)
		{"inconclusive", "good", []string{"--agent", p.url, "--service", "compare", "--version", "v1"}, 3, "returned no series"},
		{"timed out", "good", []string{"--agent", p.url, "--service", "slow", "--version", "v1", "--wait", "2s"}, 3, "no verdict within 2s"},
		{"unknown service", "good", []string{"--agent", p.url, "--service", "wbe", "--version", "v1"}, 2, `did you mean "web"?`},
		{"wrong token", "good", []string{"--agent", p.url, "--service", "web", "--version", "v1", "--token", "nope"}, 2, "wrong token"},
		// A token from a file or a Kubernetes secret, ending in a newline, is the token.
		{"token with a newline", "good", []string{"--agent", p.url, "--service", "web", "--version", "v1n", "--token", "gate-token\n"}, 0, "PASSED"},
		// https:// to a plain-HTTP agent is not retried for a minute: it never works.
		{"https to a plain agent", "good", []string{"--agent", strings.Replace(p.url, "http://", "https://", 1), "--service", "web", "--version", "v1"}, 2, "use an http:// URL"},
		{"unreachable agent", "good", []string{"--agent", nowhereAgent, "--service", "web", "--version", "v1", "--register-retry", "2500ms"}, 2, "sending it again in 1s"},
		{"unreachable agent, sent once", "good", []string{"--agent", nowhereAgent, "--service", "web", "--version", "v1", "--register-retry", "0"}, 2, "cannot reach the agent"},
		{"bad --register-retry", "good", []string{"--agent", p.url, "--service", "web", "--version", "v1", "--register-retry", "-1s"}, 2, "--register-retry must be 0"},
		{"no service", "good", []string{"--agent", p.url, "--version", "v1"}, 2, "--service and --version are required"},
		{"bad agent URL", "good", []string{"--agent", "ftp://x", "--service", "web", "--version", "v1"}, 2, "not an http(s) URL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out := gate(c.mode, c.args...)
			if code != c.code || !strings.Contains(out, c.want) {
				t.Errorf("exit %d (want %d); output should contain %q:\n%s", code, c.code, c.want, out)
			}
		})
	}
	// With --json, stdout is the JSON alone (a pipeline parses it); what gate says goes to stderr.
	a.mode.Store("good")
	cmd := exec.Command(bin, "gate", "--agent", p.url, "--service", "web", "--version", "v6", "--json")
	cmd.Env = append(os.Environ(), "VIGIL_API_TOKEN=gate-token")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, _ := cmd.Output()
	var d struct{ Status string }
	if err := json.Unmarshal(stdout, &d); err != nil || d.Status != "passed" || !strings.Contains(stderr.String(), "PASSED") {
		t.Errorf("gate --json: stdout %q (%v), stderr %q", stdout, err, stderr.String())
	}
	if code := p.terminate(); code != 0 {
		t.Errorf("SIGTERM: exit %d, want 0", code)
	}
}

// SIGHUP and a changed file reload the config; a bad one is reported and the old one keeps
// running; SIGTERM exits 0.
func TestAgentReloadAndSignals(t *testing.T) {
	a := newApp(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	write := func(s string) {
		if err := os.WriteFile(cfg, []byte(s+"\nstore: {dsn: "+filepath.Join(dir, "v.db")+"}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(gateConfig(a.URL, ""))
	p := startAgentProc(t, cfg, "")
	metric := func(name string) string {
		_, body := p.get("/metrics")
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, name+" ") {
				return strings.TrimPrefix(line, name+" ")
			}
		}
		return ""
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	write("checks: [{name: home, kind: http, request: {methd: GET}}]")
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor("the rejected reload", func() bool { return metric("vigil_config_last_reload_successful") == "0" })
	if code, body := p.get("/api/v1/checks"); code != 401 || !strings.Contains(body, "missing credentials") {
		t.Errorf("the old config (with its token) should still be in force: %d %s", code, body)
	}
	if !strings.Contains(p.logs.String(), `unknown key \"methd\"`) && !strings.Contains(p.logs.String(), "methd") {
		t.Errorf("the log should say what is wrong with the new config")
	}
	// A good config, picked up from the file change alone.
	write(strings.ReplaceAll(gateConfig(a.URL, ""), "pool", "quick"))
	waitFor("the reload from the file change", func() bool { return metric("vigil_config_last_reload_successful") == "1" })
	req, _ := http.NewRequest("GET", p.url+"/api/v1/checks", nil)
	req.Header.Set("Authorization", "Bearer gate-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Checks []struct{ Name string } `json:"checks"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if len(out.Checks) != 2 || out.Checks[1].Name != "quick" {
		t.Errorf("after reload: %+v", out.Checks)
	}
	// An empty file (a tool that truncates, then writes) is never a config to run: the one
	// in force stays, with its checks, incidents and notifiers.
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor("the empty file refused", func() bool { return metric("vigil_config_last_reload_successful") == "0" })
	// The log is read from the agent's stderr through a pipe: under load its line can come
	// after the metric has changed.
	waitFor("the log saying the file is empty", func() bool { return strings.Contains(p.logs.String(), "the file has no settings") })
	if code, _ := p.get("/api/v1/checks"); code != 401 {
		t.Errorf("the config in force (with its token) was dropped: %d", code)
	}
	if code := p.terminate(); code != 0 {
		t.Errorf("SIGTERM: exit %d, want 0", code)
	}
}

// The kill test: the agent is SIGKILLed while a rollback webhook is in flight, then
// restarted; a receiver counts what it accepted per Idempotency-Key. The kill comes at one
// of three moments, in turn:
//
//   - before the receiver answered (the request hangs): the rollback is accepted once, after
//     the restart;
//   - while the receiver fails (503): accepted once, after the restart;
//   - after the receiver accepted it and before vigil heard the 2xx and recorded it: the
//     same Idempotency-Key arrives once more after the restart, and only once, which is
//     why a receiver must act once per key. Delivery is at least once, never more than
//     one extra per kill.
//
// At the end every rollback is one outbox entry, delivered, and nothing is pending.
func TestKillDuringRollbackDeliversOnce(t *testing.T) {
	cycles := 20
	if n, err := strconv.Atoi(os.Getenv("VIGIL_KILL_CYCLES")); err == nil && n > 0 {
		cycles = n // scripts/killtest runs more
	}
	r := killCycles(t, cycles)
	t.Logf("reliability: kill test: %d cycles, %d SIGKILLs: %d before the receiver answered, %d while it failed (503), %d after it accepted",
		cycles, cycles, len(r.keys[killHanging]), len(r.keys[killFailing]), len(r.keys[killAccepted]))
	t.Logf("reliability: kill test: %d of %d rollback keys are one outbox entry, delivered; nothing pending: %v", r.entries, cycles, r.settled)
	t.Logf("reliability: kill test: accepted once: %d of %d keys killed before acceptance; accepted twice (same Idempotency-Key, once more after the restart): %d of %d keys killed after acceptance",
		r.once, len(r.keys[killHanging])+len(r.keys[killFailing]), r.twice, len(r.keys[killAccepted]))
}

// When a kill cycle SIGKILLs the agent.
const (
	killHanging  = iota // the receiver holds the request without answering
	killFailing         // the receiver answers 503
	killAccepted        // the receiver accepted and holds its 2xx
)

type killResult struct {
	keys    [3][]string // rollback keys by the moment of their kill
	entries int         // keys with exactly one outbox entry, delivered
	settled bool        // every key has that, and nothing is pending
	once    int         // keys killed before acceptance and accepted exactly once
	twice   int         // keys killed after acceptance and accepted exactly twice
}

func killCycles(t *testing.T, cycles int) killResult {
	a := newApp(t)
	a.mode.Store("broken")
	hook := loopback.NewWebhook(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	dbPath := filepath.Join(dir, "v.db")
	body := fmt.Sprintf(`
checks:
  - {name: home, kind: http, every: 1h, retries: 0, request: {url: "%s/"}, assert: ["status == 200"]}
services:
  web: {checks: [home], verify: {interval: 1h, count: 2}, on_failure: [rollback]}
notifiers:
  rollback: {type: webhook, url: %q, secret: %q, action: rollback, timeout: 30s, max_attempts: 50}
store: {dsn: %q}
`, a.URL, hook.URL(), loopback.WebhookSecret, dbPath)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	p := startAgentProc(t, cfg, addr)
	var r killResult
	var all []string // every rollback key
	waitFor := func(i int, what string, limit time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("cycle %d: %s:\n%s", i, what, p.logs.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for i := range cycles {
		mode := i % 3
		switch mode {
		case killHanging:
			hook.Fail(loopback.Fault{Hang: true})
		case killFailing:
			hook.Fail(loopback.Fault{Status: 503, Times: 2})
		case killAccepted:
			hook.Fail(loopback.Fault{AcceptThenHang: true})
		}
		resp, err := http.Post(p.url+"/api/v1/deploys", "application/json", strings.NewReader(fmt.Sprintf(`{"service":"web","version":"v%d"}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		var reg struct{ ID string }
		_ = json.NewDecoder(resp.Body).Decode(&reg)
		resp.Body.Close()
		key := reg.ID + ":deploy_failed"
		r.keys[mode] = append(r.keys[mode], key)
		all = append(all, key)
		if mode == killAccepted {
			waitFor(i, "the receiver never accepted the webhook", 30*time.Second, func() bool { return hook.Count(key) == 1 })
		} else {
			waitFor(i, "the webhook never arrived", 30*time.Second, func() bool { return hook.Attempts(key) > 0 })
		}
		p.kill()
		p = startAgentProc(t, cfg, addr)
		want := 1
		if mode == killAccepted {
			want = 2
		}
		waitFor(i, "not delivered after the restart", 60*time.Second, func() bool { return hook.Count(key) >= want })
	}

	// Nothing is left to send: every rollback is one outbox entry, delivered. Read from the
	// store itself (beside the running agent) rather than waited for in silence.
	st, err := store.Open(t.Context(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// settled counts the keys that are one delivered entry and describes the others.
	settled := func() (int, []string) {
		good, bad := 0, []string(nil)
		for _, key := range all {
			entries, err := st.OutboxByKey(t.Context(), key)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) == 1 && entries[0].Notifier == "rollback" && entries[0].Status == store.OutboxDelivered {
				good++
				continue
			}
			var got []string
			for _, e := range entries {
				got = append(got, fmt.Sprintf("%s:%s (%d attempts)", e.Notifier, e.Status, e.Attempts))
			}
			bad = append(bad, fmt.Sprintf("%s: %v", key, got))
		}
		return good, bad
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		good, bad := settled()
		if len(bad) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outbox did not settle within 60s: want one delivered entry per rollback key; %d good, and %s", good, strings.Join(bad, "; "))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := p.terminate(); code != 0 {
		t.Errorf("SIGTERM: exit %d, want 0", code)
	}
	good, bad := settled()
	r.entries, r.settled = good, len(bad) == 0 && good == cycles
	if !r.settled {
		t.Errorf("after the agent stopped: %s", strings.Join(bad, "; "))
	}

	// Nothing is pending, so the receiver's counts are final.
	accepted := hook.Counts()
	for mode, keys := range r.keys {
		for _, k := range keys {
			switch got := accepted[k]; {
			case mode != killAccepted && got == 1:
				r.once++
			case mode == killAccepted && got == 2:
				r.twice++
			case mode == killAccepted:
				t.Errorf("key %s, killed after the receiver accepted it: accepted %d times; want 2 (once more after the restart, with the same key)", k, got)
			default:
				t.Errorf("key %s, killed before the receiver accepted it: accepted %d times; want exactly 1 (attempts %d)", k, got, hook.Attempts(k))
			}
		}
	}
	if len(accepted) != cycles {
		t.Errorf("%d keys accepted, want %d: %v", len(accepted), cycles, accepted)
	}
	return r
}

// The agent refuses bad flags and bad configs before it opens anything.
func TestAgentBadInput(t *testing.T) {
	good := writeConfig(t, "checks: [{name: up, kind: http, request: {url: \"http://127.0.0.1:1/\"}}]\n")
	bad := writeConfig(t, "checks: [{name: up, kind: http, request: {methd: GET}}]\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"agent", "-c", good, "--log-level", "loud"}, `--log-level: "loud" is not one of debug, info, warn, error`},
		{[]string{"agent", "-c", bad}, `unknown key "methd"`},
		{[]string{"agent", "-c", filepath.Join(t.TempDir(), "missing.yaml")}, "missing.yaml"},
		{[]string{"agent", "-c", good, "--listen", "not-an-address"}, "agent.listen"},
		{[]string{"gate", "--agent", "http://127.0.0.1:1", "--service", "web", "--version", "v1", "--wait", "-1s"}, "--wait must be positive"},
	} {
		code, _, stderr := run(c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("vigil %v: exit %d, stderr %q; want exit 2 mentioning %q", c.args, code, stderr, c.want)
		}
	}
}

// An agent whose store is on a full disk (a fresh start: SQLite needs room for its
// write-ahead log and shared memory even to read) exits saying the disk is full, not
// that store.dsn should be a writable path. Needs root to mount a small tmpfs.
func TestAgentOnAFullDiskSaysSo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{64 << 10, 4096, 1} {
		for {
			if _, err := f.Write(make([]byte, size)); err != nil {
				break
			}
		}
	}
	f.Close()
	cfg := filepath.Join(t.TempDir(), "vigil.yaml")
	body := fmt.Sprintf("store: {dsn: %q}\nchecks: [{name: home, kind: http, request: {url: \"http://127.0.0.1:1/\"}}]\n", filepath.Join(dir, "vigil.db"))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, vigilBinary(t), "agent", "-c", cfg, "--listen", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "the disk holding it is full") {
		t.Errorf("vigil agent on a full disk: %v\n%s", err, out)
	}
}
