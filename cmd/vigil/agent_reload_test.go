package main

// The agent's reloads as a sidecar meets them: a Kubernetes ConfigMap's symlink swaps,
// SIGHUP storms, and a store it cannot open.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/browser"
	"github.com/vigil-monitor/vigil/internal/pgtest"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// metricValue is the value of an unlabelled metric on the agent's /metrics, or "".
func (p *agentProc) metricValue(name string) string {
	_, body := p.get("/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// waitUntil polls cond every 50ms for at most a generous bound.
func waitUntil(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", bound, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// reloads counts the successful reloads the agent logged.
func (p *agentProc) reloads() int { return strings.Count(p.logs.String(), `msg="config reloaded"`) }

// configMap writes files as the kubelet updates a ConfigMap volume: a new timestamped
// directory, a temporary symlink to it renamed over ..data, the old directory removed.
// The file the agent reads is dir/vigil.yaml -> ..data/vigil.yaml, and never changes.
type configMap struct {
	t   *testing.T
	dir string
	n   int
}

func (m *configMap) write(body string) {
	m.t.Helper()
	m.n++
	ts := filepath.Join(m.dir, fmt.Sprintf("..2025_01_01_00_00_%02d.%d", m.n, m.n))
	if err := os.Mkdir(ts, 0o755); err != nil {
		m.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts, "vigil.yaml"), []byte(body), 0o644); err != nil {
		m.t.Fatal(err)
	}
	old, _ := os.Readlink(filepath.Join(m.dir, "..data"))
	tmp := filepath.Join(m.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		m.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(m.dir, "..data")); err != nil {
		m.t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(m.dir, old)); err != nil {
			m.t.Fatal(err)
		}
	}
	if m.n == 1 {
		if err := os.Symlink(filepath.Join("..data", "vigil.yaml"), filepath.Join(m.dir, "vigil.yaml")); err != nil {
			m.t.Fatal(err)
		}
	}
}

// getAuth GETs path with the API token.
func (p *agentProc) getAuth(path, token string) (int, string) {
	p.t.Helper()
	req, err := http.NewRequest("GET", p.url+path, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A ConfigMap updated three times in quick succession (symlink swaps, the old directories
// removed) is reloaded once, to the last version: the versions in between never held
// still for a poll. A version with comments only is refused. SIGINT then stops the agent
// with exit 0.
func TestAgentFollowsAConfigMapsSymlinkSwaps(t *testing.T) {
	a := newApp(t)
	m := &configMap{t: t, dir: t.TempDir()}
	db := filepath.Join(t.TempDir(), "v.db")
	body := func(check string) string {
		return fmt.Sprintf("agent: {api_token: cm-token}\nstore: {dsn: %q}\nchecks:\n  - {name: %s, kind: http, every: 1h, request: {url: %q}}\n", db, check, a.URL)
	}
	m.write(body("first"))
	p := startAgentProc(t, filepath.Join(m.dir, "vigil.yaml"), "")
	checks := func() string {
		_, out := p.getAuth("/api/v1/checks", "cm-token")
		return out
	}
	if !strings.Contains(checks(), `"first"`) {
		t.Fatalf("the agent does not run the ConfigMap's first version: %s", checks())
	}
	for _, name := range []string{"second", "third", "fourth"} {
		m.write(body(name))
	}
	waitUntil(t, 20*time.Second, "the last version of the ConfigMap", func() bool { return strings.Contains(checks(), `"fourth"`) })
	time.Sleep(5 * time.Second) // two more polls: nothing else is reloaded
	if n := p.reloads(); n != 1 {
		t.Errorf("%d reloads for three quick swaps; want one, of the last version:\n%s", n, p.logs.String())
	}
	if got := checks(); strings.Contains(got, `"second"`) || strings.Contains(got, `"third"`) || !strings.Contains(got, `"fourth"`) {
		t.Errorf("checks after the swaps: %s", got)
	}
	// A version with comments only (a template rendered empty) is refused: the one in
	// force keeps running.
	m.write("# vigil: rendered empty\n\n# nothing here\n")
	waitUntil(t, 20*time.Second, "the comment-only version refused", func() bool { return p.metricValue("vigil_config_last_reload_successful") == "0" })
	if got := checks(); !strings.Contains(got, `"fourth"`) || !strings.Contains(p.logs.String(), "the file has no settings") {
		t.Errorf("after a comment-only version: checks %s\n%s", got, p.logs.String())
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not stop within 30s of SIGINT")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("SIGINT: exit %d, want 0", code)
	}
}

// Ten SIGHUPs in a row reload at most twice (one more for the signals that came during
// the first reload: the file may have changed after it was read), and reloads leave no
// goroutines behind, notifiers included.
func TestAgentSIGHUPStorm(t *testing.T) {
	a := newApp(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	body := fmt.Sprintf(`store: {dsn: %q}
checks:
  - {name: home, kind: http, every: 1h, request: {url: %q}}
notifiers:
  ops: {type: slack, token: xoxb-test, channel: "#deploys", api_url: %q}
  oncall: {type: pagerduty, routing_key: k, url: "%s/v2/enqueue"}
  rollback: {type: webhook, action: rollback, url: %q, secret: s}
services:
  web: {checks: [home], on_failure: [ops, oncall, rollback]}
`, filepath.Join(dir, "v.db"), a.URL, a.URL, a.URL, a.URL)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startAgentProc(t, cfg, "")
	goroutines := func() int {
		n, _ := strconv.Atoi(p.metricValue("go_goroutines"))
		return n
	}
	waitUntil(t, 20*time.Second, "the run at start", func() bool { return strings.Contains(p.logs.String(), "check=home") })
	time.Sleep(time.Second)
	before := goroutines()

	for range 10 {
		_ = p.cmd.Process.Signal(syscall.SIGHUP)
	}
	waitUntil(t, 20*time.Second, "a reload", func() bool { return p.reloads() >= 1 })
	time.Sleep(3 * time.Second)
	if n := p.reloads(); n > 2 {
		t.Errorf("ten SIGHUPs in a row made %d reloads; want one, two at most", n)
	}
	// Ten reloads one after the other.
	for i := range 10 {
		had := p.reloads()
		_ = p.cmd.Process.Signal(syscall.SIGHUP)
		waitUntil(t, 20*time.Second, fmt.Sprintf("reload %d", i+1), func() bool { return p.reloads() > had })
	}
	time.Sleep(time.Second)
	if after := goroutines(); after > before+3 {
		t.Errorf("goroutines: %d before, %d after twelve reloads or so: reloads leave goroutines behind", before, after)
	}
	if code := p.terminate(); code != 0 {
		t.Errorf("SIGTERM: exit %d, want 0", code)
	}
}

// An agent whose store directory it cannot write (a read-only volume) exits 1 at start,
// saying which file it could not open and what to do; exit 2 is a bad config. Needs root
// to mount a read-only tmpfs, else a directory without write permission serves.
func TestAgentOnAReadOnlyStoreDirExits1(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
			t.Skipf("cannot mount a read-only tmpfs here: %v: %s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	} else {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
	}
	cfg := writeConfig(t, fmt.Sprintf("store: {dsn: %q}\nchecks: [{name: home, kind: http, request: {url: \"http://127.0.0.1:1/\"}}]\n", filepath.Join(dir, "vigil.db")))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, vigilBinary(t), "agent", "-c", cfg, "--listen", "127.0.0.1:0")
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), filepath.Join(dir, "vigil.db")) ||
		!strings.Contains(string(out), "set store.dsn to a writable path") {
		t.Errorf("vigil agent on a read-only store directory: exit %d, want 1 naming the file and what to do:\n%s", code, out)
	}
}

// PostgreSQL's pool is sized when the store opens: a reload that changes store.pool
// applies the rest and says, naming the keys, that they wait for a restart (it was
// swapped in silently, the old pool kept).
func TestAgentReloadNamesThePoolAsRestartOnly(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Options{})
	dsn := srv.Database(t)
	a := newApp(t)
	cfg := filepath.Join(t.TempDir(), "vigil.yaml")
	write := func(pool, check string) {
		body := fmt.Sprintf("store: {driver: postgres, dsn: %q, pool: {%s}}\nchecks: [{name: %s, kind: http, every: 1h, request: {url: %q}}]\n", dsn, pool, check, a.URL)
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("max_conns: 4, connect_timeout: 5s", "home")
	p := startAgentProc(t, cfg, "")
	write("max_conns: 8, connect_timeout: 2s", "home2")
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, 20*time.Second, "the reload", func() bool { return p.reloads() == 1 })
	logs := p.logs.String()
	for _, key := range []string{"store.pool.max_conns", "store.pool.connect_timeout"} {
		if !strings.Contains(logs, key) || !strings.Contains(logs, "take effect only at the next restart") {
			t.Errorf("the reload's warning does not name %s:\n%s", key, logs)
		}
	}
	if code := p.terminate(); code != 0 {
		t.Errorf("SIGTERM: exit %d, want 0", code)
	}
}

// agent.browser_concurrency applies on reload: raised from 1 to 3, three browser checks
// on a slow page load at once (Chromium's visit slots were sized at start, so the
// scheduler let three go and the pool still took them one at a time).
func TestAgentReloadRaisesBrowserConcurrency(t *testing.T) {
	if _, err := browser.Find("", nil); err != nil {
		if os.Getenv("VIGIL_REQUIRE_BROWSER") != "" {
			t.Fatalf("VIGIL_REQUIRE_BROWSER is set: %v", err)
		}
		t.Skipf("Chromium is not installed (set VIGIL_REQUIRE_BROWSER=1 to make this a failure): %v", err)
	}
	var inflight vigiltest.InFlight
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		defer inflight.Enter()()
		time.Sleep(1500 * time.Millisecond)
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>Shop</title><p>ok</p>`)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	write := func(conc int) {
		var b strings.Builder
		fmt.Fprintf(&b, "agent: {browser_concurrency: %d}\nstore: {dsn: %q}\nchecks:\n", conc, filepath.Join(dir, "v.db"))
		for i := range 3 {
			fmt.Fprintf(&b, "  - {name: page-%d, kind: browser, url: \"%s/\", every: 2s, timeout: 20s, retries: 0}\n", i, srv.URL)
		}
		if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(1)
	p := startAgentProc(t, cfg, "")
	waitUntil(t, 60*time.Second, "browser runs", func() bool { return inflight.Peak() >= 1 })
	time.Sleep(4 * time.Second)
	if peak := inflight.Peak(); peak != 1 {
		t.Fatalf("browser_concurrency 1: %d page loads at once", peak)
	}
	write(3)
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, 20*time.Second, "the reload", func() bool { return p.reloads() >= 1 })
	inflight.ResetPeak()
	deadline := time.Now().Add(30 * time.Second)
	for inflight.Peak() < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if peak := inflight.Peak(); peak < 2 {
		t.Errorf("after a reload to browser_concurrency 3, at most %d page load at once in 30s", peak)
	}
	if code := p.terminate(); code != 0 {
		t.Errorf("SIGTERM: exit %d, want 0", code)
	}
}
