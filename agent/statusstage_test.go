package agent_test

// The stage of the status page tests: an agent with a week of history, real deploys of the
// demo shop, a silence and a maintenance window; and a Chromium tab to look at it.

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/agent"
	"github.com/vigil-monitor/vigil/agent/client"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/browser"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/demo"
	"github.com/vigil-monitor/vigil/internal/golden"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
	"github.com/vigil-monitor/vigil/store"
)

const statusConfig = `
agent:
  location: eu-west-1
defaults:
  every: 1h
  timeout: 15s
  retries: 0
checks:
  - name: health
    kind: http
    request: {url: "${APP}/healthz"}
    labels: {team: shop, tier: "1"}
  - name: login
    kind: http
    request: {method: POST, url: "${APP}/api/login", body: '{"user":"synthetic"}', headers: {Content-Type: application/json}}
    assert: ["status == 200", "json.token != nil"]
    labels: {team: shop, tier: "1"}
    owners: [U024BE7LH]
    runbook_url: https://wiki.example.com/runbooks/login
  - name: checkout
    kind: script
    labels: {team: shop, tier: "2"}
    steps:
      - {name: create cart, request: {method: POST, url: "${APP}/api/cart"}, extract: {cart: json.id}, assert: ["status == 201"]}
      - {name: read cart back, request: {url: "${APP}/api/cart/{{ .cart }}"}, assert: ["status == 200"]}
  - name: home-page
    kind: browser
    url: ${APP}/
    wait_for: "#app[data-ready]"
    labels: {team: shop, tier: "1"}
  - name: search-api
    kind: http
    request: {url: "${APP}/version"}
    labels: {team: discovery, tier: "2"}
  - name: legacy-report
    kind: http
    request: {url: "${APP}/healthz"}
    labels: {team: finance}
services:
  shop:
    checks: [health, login, checkout, home-page]
    verify: {interval: 1s, count: 2}
    owners: [S0614TZR7]
    on_failure:
      deploy_failed: [slack, rollback]
      deploy_passed: [slack]
  search:
    checks: [search-api]
    verify: {interval: 1s, count: 2}
notifiers:
  slack: {type: slack, token: "${SLACK_TOKEN}", channel: "#deploys", api_url: "${SLACK}"}
  rollback: {type: webhook, url: "${APP}/admin/rollback", secret: "${ROLLBACK_SECRET}", action: rollback}
maintenance:
  - name: report-migration
    checks: [legacy-report]
    start: ${MAINT_START}
    end: ${MAINT_END}
    reason: moving the reports database
`

// seedHistory writes a week of runs for the checks (one every 15 minutes) with the kind of
// story a week has: a login outage two days ago, a slow afternoon for checkout, a burst of
// errors on search-api, and two earlier deploys of the shop, one of them rolled back.
func seedHistory(t *testing.T, st *store.SQLite, now time.Time) {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	base := map[string]time.Duration{"health": 3 * time.Millisecond, "login": 42 * time.Millisecond, "checkout": 95 * time.Millisecond,
		"home-page": 640 * time.Millisecond, "search-api": 18 * time.Millisecond, "legacy-report": 9 * time.Millisecond}
	kinds := map[string]string{"health": "http", "login": "http", "checkout": "script", "home-page": "browser", "search-api": "http", "legacy-report": "http"}
	var runs []*store.RunRecord
	for at := now.Add(-7 * 24 * time.Hour); at.Before(now.Add(-10 * time.Minute)); at = at.Add(15 * time.Minute) {
		for name, d := range base {
			dur := time.Duration(float64(d) * (0.8 + 0.5*rng.Float64()))
			outcome, reason := "pass", ""
			age := now.Sub(at)
			switch {
			case name == "login" && age > 49*time.Hour && age < 50*time.Hour:
				outcome, reason = "fail", "status == 200 is false: status = 502"
			case name == "checkout" && age > 26*time.Hour && age < 29*time.Hour:
				dur *= 4
			case name == "search-api" && age > 5*time.Hour && age < 6*time.Hour+30*time.Minute:
				outcome, reason, dur = "error", "connection refused: dial tcp 127.0.0.1:8081", 2*time.Millisecond
			case name == "home-page" && age > 96*time.Hour && age < 96*time.Hour+20*time.Minute:
				outcome, reason = "fail", "js_errors == 0 is false: js_errors = 1 (TypeError: r.formatPrice is not a function)"
			}
			r := &store.RunRecord{Check: name, Kind: kinds[name], Started: at.Add(time.Duration(rng.IntN(60)) * time.Second),
				Duration: dur, Outcome: outcome, Attempts: 1, Location: "eu-west-1"}
			if reason != "" {
				r.Reasons = []string{reason}
			}
			runs = append(runs, r)
		}
	}
	if err := st.SaveRuns(ctx, runs); err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		id, version, status, reason string
		at, took                    time.Duration
	}{
		{"20260101-000000-aaaa0001", "v0.9", store.StatusPassed, "4 checks, 8 runs over 2 rounds: within limits", 5 * 24 * time.Hour, 2100 * time.Millisecond},
		{"20260101-000000-aaaa0002", "v1-rc1", store.StatusFailed, "home-page: 1 failed run (failure_limit 0): js_errors == 0 is false: js_errors = 1", 96 * time.Hour, 1400 * time.Millisecond},
		{"20260101-000000-aaaa0003", "v0.9", store.StatusPassed, "4 checks, 8 runs over 2 rounds: within limits", 96*time.Hour - 4*time.Minute, 2000 * time.Millisecond},
	} {
		at := now.Add(-d.at)
		if _, err := st.CreateDeploy(ctx, &store.Deploy{ID: d.id, Service: "shop", Version: d.version, Environment: "prod", CreatedAt: at, Status: store.StatusVerifying}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := st.DecideDeploy(ctx, &store.Decision{DeployID: d.id, Status: d.status, Reason: d.reason, At: at.Add(d.took)}); err != nil {
			t.Fatal(err)
		}
		if err := st.AddEvent(ctx, &store.Event{At: at.Add(d.took), Kind: "deploy_" + d.status, Service: "shop", DeployID: d.id, Summary: "shop " + d.version + ": " + d.reason}); err != nil {
			t.Fatal(err)
		}
		if d.status == store.StatusFailed {
			if err := st.AddEvent(ctx, &store.Event{At: at.Add(d.took + time.Second), Kind: "rollback", Service: "shop", DeployID: d.id,
				Summary: "rollback accepted by the rollback webhook: shop back to v0.9"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, e := range []*store.Event{
		{At: now.Add(-50 * time.Hour), Kind: "check_failed", Check: "login", Summary: "status == 200 is false: status = 502"},
		{At: now.Add(-49 * time.Hour), Kind: "check_recovered", Check: "login", Summary: "passes again; the incident was open for 1h0m0s"},
		{At: now.Add(-6*time.Hour - 30*time.Minute), Kind: "check_failed", Check: "search-api", Summary: "connection refused: dial tcp 127.0.0.1:8081"},
		{At: now.Add(-5 * time.Hour), Kind: "check_recovered", Check: "search-api", Summary: "passes again; the incident was open for 1h30m0s"},
	} {
		if err := st.AddEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
}

func chromium(t *testing.T) string {
	t.Helper()
	path, err := browser.Find("", nil)
	if err != nil {
		if os.Getenv("VIGIL_REQUIRE_BROWSER") != "" {
			t.Fatalf("VIGIL_REQUIRE_BROWSER is set: %v", err)
		}
		t.Skipf("Chromium is not installed (set VIGIL_REQUIRE_BROWSER=1 to make this a failure): %v", err)
	}
	return path
}

// statusStage is an agent with history, after real deploys.
type statusStage struct {
	url      string
	failed   string // the broken deploy's id
	failedRn int64  // its failing run
}

func startStatusStage(t *testing.T) *statusStage {
	t.Helper()
	ctx := t.Context()
	app, err := demo.StartApp(demo.GoodVersion)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	app.RollbackSecret = []byte("rollback-secret-for-tests")
	slack := loopback.NewSlack(t)

	dir := t.TempDir()
	now := time.Now()
	db, err := store.Open(ctx, filepath.Join(dir, "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	seedHistory(t, db, now)

	env := []string{"SLACK_TOKEN=" + loopback.SlackToken, "APP=" + app.URL, "SLACK=" + slack.APIURL(), "ROLLBACK_SECRET=rollback-secret-for-tests",
		"MAINT_START=" + now.Add(-time.Hour).UTC().Format(time.RFC3339), "MAINT_END=" + now.Add(3*time.Hour).UTC().Format(time.RFC3339)}
	path := vigiltest.WriteConfig(t, dir, statusConfig)
	load := func() (*configs.Config, error) { return configs.Load(path, configs.Options{Environ: env}) }
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	pool := browser.NewPool(browser.Options{Concurrency: 2})
	t.Cleanup(func() { pool.Close() })
	hc := checks.NewHTTPClient("vigil-test")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &vigiltest.Buffer{}
	a, err := agent.New(agent.Options{Config: cfg, ConfigPath: path, LoadConfig: load, Deps: checks.Deps{HTTP: hc, Browser: pool},
		Store: db, Registry: prometheus.NewRegistry(), Version: "test", Listener: ln, BrowserReady: pool.Check,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	select { // the history seedHistory wrote is on the board before any page is read
	case <-a.HistoryRead():
	case <-time.After(time.Minute):
		t.Fatal("the agent did not read the store's history within a minute")
	}
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})
	base := "http://" + ln.Addr().String()
	c, err := client.New(base, "", "vigil-test")
	if err != nil {
		t.Fatal(err)
	}
	verdict := func(version string, links []client.Link) *client.Deploy {
		t.Helper()
		id, err := c.RegisterDeploy(ctx, client.DeployRequest{Service: "shop", Version: version, Environment: "prod", Commit: "4f2c1e9",
			Links: links}, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		for range 60 {
			d, _, err := c.Deploy(ctx, id, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != "verifying" {
				return d
			}
		}
		t.Fatalf("deploy %s: no verdict", version)
		return nil
	}
	if d := verdict(demo.GoodVersion, nil); d.Status != "passed" {
		t.Fatalf("good deploy: %s: %s", d.Status, d.Reason)
	}
	app.Deploy(demo.BrokenVersion)
	d := verdict(demo.BrokenVersion, []client.Link{{Name: "CI run", URL: "https://ci.example.com/shop/runs/1234"}, {Name: "diff", URL: "https://git.example.com/shop/compare/v1...v2"}})
	if d.Status != "failed" {
		t.Fatalf("broken deploy: %s: %s", d.Status, d.Reason)
	}
	st := &statusStage{url: base, failed: d.ID}
	for _, dc := range d.Checks {
		if dc.Name == "home-page" && dc.RunURL != "" {
			fmt.Sscanf(dc.RunURL[strings.LastIndex(dc.RunURL, "/")+1:], "%d", &st.failedRn)
		}
	}
	if st.failedRn == 0 {
		t.Fatalf("the broken deploy has no failing home-page run: %+v", d.Checks)
	}
	eventually(t, 30*time.Second, "the rollback webhook and its event", func() bool {
		return len(app.Rollbacks()) > 0 && strings.Contains(get(t, base+"/deploys/"+d.ID), "↩")
	})
	if _, err := c.AddSilence(ctx, client.SilenceRequest{Service: "search", Duration: "2h", Reason: "load test of the search cluster", CreatedBy: "alice"}); err != nil {
		t.Fatal(err)
	}
	return st
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tab is a Chromium tab on the status page, with a theme.
type tab struct {
	t   *testing.T
	ctx context.Context
}

func newTab(t *testing.T, path string) *tab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900), chromedp.Flag("hide-scrollbars", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancel(); cancelAlloc() })
	return &tab{t: t, ctx: ctx}
}

func (tb *tab) theme(dark bool) {
	tb.t.Helper()
	value := "light"
	if dark {
		value = "dark"
	}
	err := chromedp.Do(tb.ctx, func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: value}}})
		return chromedp.Void{}, err
	})
	if err != nil {
		tb.t.Fatal(err)
	}
}

func (tb *tab) open(u string) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, chromedp.Navigate(u), chromedp.WaitReady(chromedp.CSS("footer"))); err != nil {
		tb.t.Fatalf("open %s: %v", u, err)
	}
}

func eval[T any](tb *tab, js string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		tb.t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// shot keeps a full-page screenshot as a test artifact, and under docs/screenshots with
// VIGIL_UPDATE_SCREENSHOTS=1 or -update.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(tb.t.ArtifactDir(), name+".png"), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	if golden.Updating() || os.Getenv("VIGIL_UPDATE_SCREENSHOTS") == "1" {
		dir := filepath.Join("..", "docs", "screenshots")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			tb.t.Fatal(err)
		}
	}
}

// background is the luminance (0 dark to 1 light) of the page's background.
func background(tb *tab) float64 {
	rgb := eval[string](tb, `getComputedStyle(document.body).backgroundColor`)
	var r, g, b float64
	if _, err := fmt.Sscanf(rgb, "rgb(%f, %f, %f)", &r, &g, &b); err != nil {
		tb.t.Fatalf("background %q: %v", rgb, err)
	}
	return (0.2126*r + 0.7152*g + 0.0722*b) / 255
}

// backgroundDark says whether the page's background is dark, and false for "not yet"
// while a navigation has no body to ask (a click that loads the next page).
func backgroundDark(tb *tab) (dark, ok bool) {
	rgb, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.body ? getComputedStyle(document.body).backgroundColor : ""`))
	var r, g, b float64
	if err != nil || rgb == "" {
		return false, false
	}
	if _, err := fmt.Sscanf(rgb, "rgb(%f, %f, %f)", &r, &g, &b); err != nil {
		return false, false
	}
	return (0.2126*r+0.7152*g+0.0722*b)/255 < 0.5, true
}
