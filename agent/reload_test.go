package agent

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/clock"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
	"github.com/vigil-monitor/vigil/store"
)

// publicListener reports the address of a socket bound to every interface, as agent.listen
// 0.0.0.0:9595 makes, without exposing a test to the network.
type publicListener struct{ net.Listener }

func (l publicListener) Addr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4zero, Port: l.Listener.Addr().(*net.TCPAddr).Port}
}

func reloadWith(t *testing.T, h *harness, yaml string) error {
	t.Helper()
	if err := os.WriteFile(h.cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return h.a.Reload()
}

// A reload that drops api_token while the socket listens on every interface would open the
// API to the network until a restart: it is refused, and the token stays in force.
func TestReloadKeepsThePublicAPIClosed(t *testing.T) {
	tg := newTarget(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &vigiltest.Buffer{}
	base := webConfig{url: tg.srv.URL, verify: "interval: 1h, count: 2"}.String()
	l := launch(t, dir, "agent: {listen: \"0.0.0.0:9595\", api_token: s3cret-token}\n"+base,
		Options{Listener: publicListener{ln}, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	h := &harness{t: t, a: l.a, dir: dir, cfgPath: l.path, url: "http://" + ln.Addr().String(), logs: logs}
	t.Cleanup(func() { _ = l.stop() })

	// Listening on loopback in the file now, and no token: valid on its own, but the socket
	// in force is still public.
	err = reloadWith(t, h, "agent: {listen: \"127.0.0.1:9595\"}\n"+base)
	t.Logf("reliability: reload dropping api_token on a public socket: %v", strings.Replace(fmt.Sprint(err), h.cfgPath, "vigil.yaml", 1))
	if err == nil || !strings.Contains(err.Error(), "api_token") {
		t.Errorf("reload without the token: %v", err)
	}
	if status, out := h.request("GET", "/api/v1/checks", ""); status != http.StatusUnauthorized {
		t.Errorf("after the refused reload the API answers %d without a token: %v", status, out)
	}
	if !strings.Contains(logs.String(), "api_token") {
		t.Errorf("the log does not say why the reload was refused:\n%s", logs.String())
	}
	// A new token is fine.
	if err := reloadWith(t, h, "agent: {listen: \"0.0.0.0:9595\", api_token: other-token}\n"+base); err != nil {
		t.Fatalf("reload with a new token: %v", err)
	}
	h.token = "other-token"
	if status, _ := h.request("GET", "/api/v1/checks", ""); status != 200 {
		t.Errorf("the new token is not in force: %d", status)
	}
}

// status_page_auth, concurrency and browser_concurrency apply on reload; settings that only
// apply at a restart are named in the log.
func TestReloadAppliesAgentSettings(t *testing.T) {
	var inflight vigiltest.InFlight
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer inflight.Enter()()
		time.Sleep(800 * time.Millisecond)
	}))
	defer slow.Close()
	cfg := func(agent string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "agent: {api_token: s3cret-token, %s}\nchecks:\n", agent)
		for i := range 4 {
			fmt.Fprintf(&b, "  - {name: slow-%d, kind: http, every: 1s, timeout: 5s, retries: 0, request: {url: %q}}\n", i, slow.URL)
		}
		return b.String()
	}
	h := startAgent(t, "", cfg("concurrency: 1, browser_concurrency: 1, location: alpha"))
	page := func() int {
		resp, err := http.Get(h.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := page(); code != 200 {
		t.Fatalf("status page without auth: %d", code)
	}
	time.Sleep(2500 * time.Millisecond)
	if p := inflight.Peak(); p != 1 {
		t.Fatalf("with concurrency 1, %d runs went at once", p)
	}

	err := reloadWith(t, h, cfg("concurrency: 4, browser_concurrency: 3, status_page_auth: true, location: beta")+
		"browser: {path: /opt/other-chromium}\nstore: {dsn: elsewhere.db}\n")
	if err != nil {
		t.Fatal(err)
	}
	if code := page(); code != http.StatusUnauthorized {
		t.Errorf("status_page_auth: true did not apply: the status page answers %d", code)
	}
	eventually(t, 10*time.Second, "four runs at once after concurrency: 4", func() bool { return inflight.Peak() >= 3 })
	t.Logf("reliability: reload: status page %d after status_page_auth: true; %d runs at once after concurrency 1 -> 4; browser_concurrency %d",
		page(), inflight.Peak(), h.a.sched.browser.limit())
	if got := h.a.sched.browser.limit(); got != 3 {
		t.Errorf("browser_concurrency after reload: %d, want 3", got)
	}
	for _, s := range []string{"browser.path", "store.dsn", "agent.location", "restart"} {
		if !strings.Contains(h.logs.String(), s) {
			t.Errorf("the reload log does not name %q:\n%s", s, h.logs.String())
		}
	}
}

// A reload that renames the notifier a rollback is due to does not lose the rollback: the
// entry waits for its notifier, without using an attempt, and goes out once it is back
// (it was dead-lettered at its next attempt).
func TestReloadKeepsARollbackWhoseNotifierLeft(t *testing.T) {
	tg := newTarget(t)
	hook := loopback.NewWebhook(t)
	hook.Fail(loopback.Fault{Status: 503}) // the first attempt: the rollback stays due
	cfg := func(name string) string {
		return webConfig{url: tg.srv.URL, verify: "interval: 200ms, count: 2", service: "on_failure: [" + name + "]",
			top: "notifiers:" + webhookNotifier(name, "rollback", hook)}.String()
	}
	h := startAgent(t, "", cfg("rollback"))
	tg.set("broken")
	id := h.deploy("web", "v2")
	if d := h.verdict(id, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("status %v", d["status"])
	}
	key := id + ":deploy_failed"
	eventually(t, 10*time.Second, "the rollback refused once", func() bool { return hook.Attempts(key) >= 1 })
	if err := reloadWith(t, h, cfg("rollback-web")); err != nil {
		t.Fatal(err)
	}
	var waiting *store.OutboxEntry
	eventually(t, 20*time.Second, "the rollback to wait for its notifier", func() bool {
		entries, err := h.a.store.OutboxByKey(t.Context(), key)
		if err != nil || len(entries) != 1 {
			return false
		}
		waiting = entries[0]
		return waiting.Status == store.OutboxPending && strings.Contains(waiting.LastError, `notifier "rollback" is not in the config`)
	})
	if waiting.Attempts != 1 {
		t.Errorf("attempts %d while the notifier was gone; want the one real attempt", waiting.Attempts)
	}
	if err := reloadWith(t, h, cfg("rollback")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the rollback once its notifier is back", func() bool { return hook.Count(key) == 1 })
	h.outboxSettled(key, map[string]string{"rollback": store.OutboxDelivered})
}

// A reload that takes out the service of a deploy being verified ends the deploy as
// inconclusive, as a restart would: it was failed, with no on_failure left to tell.
func TestReloadRemovingAServiceEndsItsVerification(t *testing.T) {
	tg := newTarget(t)
	hook := loopback.NewWebhook(t)
	cfg := webConfig{url: tg.srv.URL, verify: "interval: 1s, count: 30", service: "on_failure: [rollback]",
		top: "notifiers:" + webhookNotifier("rollback", "rollback", hook)}.String()
	h := startAgent(t, "", cfg)
	id := h.deploy("web", "v2")
	without := strings.Replace(cfg, "services:\n  web:", "services:\n  other:", 1)
	if without == cfg {
		t.Fatalf("the test's config has no services.web:\n%s", cfg)
	}
	if err := reloadWith(t, h, without); err != nil {
		t.Fatal(err)
	}
	tg.set("broken")
	d := h.verdict(id, 30*time.Second)
	if d["status"] != store.StatusInconclusive || !strings.Contains(fmt.Sprint(d["reason"]), `service "web" was removed from the config`) {
		t.Errorf("status %v, reason %v; want inconclusive, naming the reload", d["status"], d["reason"])
	}
	if n := len(hook.Deliveries()); n != 0 {
		t.Errorf("%d webhook deliveries for a service no longer configured", n)
	}
}

// A reload while a deploy is verifying does not change how that deploy is judged: the
// verification keeps the service's checks and verify settings it started with (as an Argo
// Rollouts AnalysisRun keeps the template it was created from), so its verdict does not
// depend on when a reload landed. Here the reload, between rounds 1 and 2, makes the
// check's assertion one the service fails and doubles the rounds: the deploy still passes
// after its 3 rounds. The next deploy is judged by the reloaded config, and fails.
func TestReloadMidVerificationKeepsTheConfigItStartedWith(t *testing.T) {
	tg := newTarget(t)
	fc := clock.NewFake(time.Now().Truncate(time.Second))
	cfg := webConfig{url: tg.srv.URL, verify: "interval: 10s, count: 3"}
	h := startAgentWith(t, t.TempDir(), cfg.String(), Options{Clock: fc,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	runs := func(id string) int {
		list, err := h.a.store.DeployRuns(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	id := h.deploy("web", "v2")
	eventually(t, 10*time.Second, "round 1", func() bool { return runs(id) == 1 })
	cfg.assert, cfg.verify = `"status == 201"`, "interval: 10s, count: 6"
	if err := reloadWith(t, h, cfg.String()); err != nil {
		t.Fatal(err)
	}
	if got := h.a.Runtime().Config.Services["web"].Verify.Count; got != 6 {
		t.Fatalf("the reload did not apply: verify.count %d", got)
	}
	for round := 2; round <= 3; round++ {
		fc.Advance(10 * time.Second)
		eventually(t, 10*time.Second, fmt.Sprintf("round %d or a verdict", round), func() bool {
			_, d := h.request("GET", "/api/v1/deploys/"+id, "")
			return runs(id) >= round || d["status"] != store.StatusVerifying
		})
	}
	d := h.verdict(id, 30*time.Second)
	if d["status"] != store.StatusPassed || runs(id) != 3 {
		t.Errorf("status %v after %d runs, reason %v; want passed after the 3 rounds of the config it was registered under",
			d["status"], runs(id), d["reason"])
	}
	next := h.deploy("web", "v3")
	if d := h.verdict(next, 30*time.Second); d["status"] != store.StatusFailed || !strings.Contains(fmt.Sprint(d["reason"]), "status == 201") {
		t.Errorf("the deploy registered after the reload: status %v, reason %v; want failed on status == 201", d["status"], d["reason"])
	}
}

// agent.public_url is how people reach the agent: the links vigil hands out (a deploy's
// page, a run's) use it, not the listen address, and a reload changes them.
func TestPublicURLMakesTheLinks(t *testing.T) {
	tg := newTarget(t)
	cfg := func(public string) string {
		return "agent: {api_token: s3cret-token, public_url: \"" + public + "\"}\n" + webConfig{url: tg.srv.URL, verify: "interval: 200ms, count: 2"}.String()
	}
	h := startAgent(t, "", cfg("https://vigil.example.com"))
	id := h.deploy("web", "v1")
	if d := h.verdict(id, 30*time.Second); d["url"] != "https://vigil.example.com/deploys/"+id {
		t.Errorf("deploy url %v; want it under public_url", d["url"])
	}
	if err := reloadWith(t, h, cfg("https://status.example.org/vigil")); err != nil {
		t.Fatal(err)
	}
	if _, d := h.request("GET", "/api/v1/deploys/"+id, ""); d["url"] != "https://status.example.org/vigil/deploys/"+id {
		t.Errorf("deploy url after a reload %v; want the new public_url", d["url"])
	}
}
