package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/agent"
	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/browser"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/text"
	"github.com/vigil-monitor/vigil/internal/tracing"
	"github.com/vigil-monitor/vigil/store"
)

// Options configure a demo run.
type Options struct {
	Out io.Writer
	// Deps are the shared parts checks run with (HTTP client, the browser pool).
	Deps checks.Deps
	// Tracing, when on, makes each deploy a trace (the same as Deps.Tracing).
	Tracing *tracing.Tracing
	// BrowserReady reports whether Chromium can start; nil means no browser.
	BrowserReady func(ctx context.Context) error
	// Keep leaves the sample app, the agent and its status page running until ctx ends.
	Keep bool
}

// Config is the demo's vigil.yaml. ${APP} is the sample app, ${SLACK} the loopback Slack
// stand-in, ${ROLLBACK_SECRET} the secret the app verifies rollback webhooks with.
const Config = `# The config vigil demo runs: an agent verifying deploys of the built-in sample shop.
agent:
  location: demo
defaults:
  every: 1h          # the demo is about deploys; scheduled runs would only add noise
  timeout: 15s
  retries: 1

checks:
  - name: health
    kind: http
    request: {url: "${APP}/healthz"}
    served_version: {header: X-App-Version}   # an answer from another version is inconclusive, not a pass
    assert: ["status == 200", "body contains 'ok'"]

  - name: login
    kind: http
    request:
      method: POST
      url: ${APP}/api/login
      body: '{"user":"synthetic"}'
      headers: {Content-Type: application/json}
    assert: ["status == 200", "json.token != nil"]

  - name: checkout
    kind: script
    steps:
      - name: create cart
        request: {method: POST, url: "${APP}/api/cart"}
        extract: {cart: json.id}
        assert: ["status == 201"]
      - name: read cart back
        request: {url: "${APP}/api/cart/{{ .cart }}"}
        assert: ["status == 200", "json.status == 'open'"]

  - name: home-page
    kind: browser
    url: ${APP}/
    wait_for: "#app[data-ready]"   # proves the app rendered
    served_version: {header: X-App-Version}
    timeout: 10s                   # how long a slow page is given to render; a page that throws
                                   # fails at once (js_errors == 0 cannot turn true again)

services:
  shop:
    checks: [health, login, checkout, home-page]
    verify: {interval: 1s, count: 3}
    on_failure:
      deploy_failed: [slack, rollback]
      deploy_passed: [slack]

notifiers:
  slack:
    type: slack
    token: ${SLACK_TOKEN}
    channel: "#deploys"
    api_url: ${SLACK}
  rollback:
    type: webhook
    url: ${APP}/admin/rollback
    secret: ${ROLLBACK_SECRET}
    action: rollback
`

// Run is the whole demo: the sample shop deployed good, then with a bundle that dies at
// startup; vigil's agent verifies each deploy, catches the broken one with a real browser,
// tells Slack with the evidence, calls the shop's rollback webhook, and verifies the
// rollback.
func Run(ctx context.Context, o Options) error {
	out := o.Out
	if o.BrowserReady == nil {
		return errors.New("vigil demo: no browser support in this build")
	}
	readyCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err := o.BrowserReady(readyCtx)
	cancel()
	if nf := (*browser.NotFoundError)(nil); errors.As(err, &nf) {
		// The demo reads no config: browser.path is not a way out here.
		return fmt.Errorf("vigil demo needs Chromium for its browser check: %s\n(scripts/demo installs it)", nf.NoConfigError())
	}
	if err != nil {
		return fmt.Errorf("vigil demo needs Chromium for its browser check: %w\n(scripts/demo installs it)", err)
	}

	st, err := stageDemo(ctx, o)
	if err != nil {
		return err
	}
	defer st.close()
	app, slack, a, ln := st.app, st.slack, st.agent, st.ln

	fmt.Fprintf(out, "vigil demo\n  sample shop    %s  (running %s)\n  vigil agent    http://%s  (status page)\n  Slack          %s  (a loopback stand-in for the Slack Web API)\n\n",
		app.URL, app.Version(), ln.Addr(), slack.APIURL())

	// 1. A good deploy.
	fmt.Fprintf(out, "== 1. deploy %s (good); the pipeline asks vigil for a verdict\n", GoodVersion)
	d, err := verify(ctx, out, a, GoodVersion)
	if err != nil {
		return err
	}
	if d.Status != store.StatusPassed {
		return fmt.Errorf("demo: the good version should pass, but the verdict is %s: %s", d.Status, d.Reason)
	}

	// 2. The broken bundle.
	fmt.Fprintf(out, "\n== 2. deploy %s: the minifier renamed formatPrice, and the startup code still looks it up by name.\n", BrokenVersion)
	fmt.Fprintf(out, "      Every API answers 200; the page dies before its error reporting starts (seed 003).\n")
	app.Deploy(BrokenVersion)
	d, err = verify(ctx, out, a, BrokenVersion)
	if err != nil {
		return err
	}
	if d.Status != store.StatusFailed {
		return fmt.Errorf("demo: vigil should have failed the broken version, but the verdict is %s: %s", d.Status, d.Reason)
	}
	if err := waitFor(ctx, 30*time.Second, func() bool { return len(app.Rollbacks()) > 0 }); err != nil {
		return fmt.Errorf("demo: the rollback webhook never arrived: %w", err)
	}
	rb := app.Rollbacks()[0]
	fmt.Fprintf(out, "\n   rollback webhook → POST %s/admin/rollback\n      Idempotency-Key: %s\n      X-Vigil-Signature: %s (verified by the shop)\n      the shop rolled back: %s → %s\n",
		app.URL, rb.Key, text.Ellipsis(rb.Signature, 30), rb.From, rb.To)
	if err := waitFor(ctx, 30*time.Second, func() bool {
		roots := slack.Roots()
		return len(roots) == 1 && len(slack.Replies(roots[0].TS)) >= 1
	}); err != nil {
		return fmt.Errorf("demo: Slack never got the message and the rollback's result: %w", err)
	}
	if ev, err := sentEvent(ctx, st.store, "slack", "deploy_failed"); err == nil {
		fmt.Fprintf(out, "\n   Slack, #deploys (what vigil posted, with the screenshot in the thread):\n%s", indent(alerting.RenderText(ev), "   │ "))
	}
	root := slack.Roots()[0]
	for _, r := range slack.Replies(root.TS) {
		fmt.Fprintf(out, "   └ thread: %s\n", firstLine(r.Text))
	}
	if files := slack.Files(); len(files) > 0 {
		fmt.Fprintf(out, "   └ thread: uploaded %s (%d bytes)\n", files[0].Filename, len(files[0].Data))
	}

	// 3. The rollback, verified.
	fmt.Fprintf(out, "\n== 3. the rollback put %s back; vigil verifies it like any deploy\n", app.Version())
	replies := len(slack.Replies(root.TS))
	d, err = verify(ctx, out, a, app.Version())
	if err != nil {
		return err
	}
	if d.Status != store.StatusPassed {
		return fmt.Errorf("demo: the rolled-back version should pass, but the verdict is %s: %s", d.Status, d.Reason)
	}
	if err := waitFor(ctx, 30*time.Second, func() bool { return len(slack.Replies(root.TS)) > replies }); err == nil {
		r := slack.Replies(root.TS)
		fmt.Fprintf(out, "   └ thread: %s\n", firstLine(r[len(r)-1].Text))
	}
	// 4. The broken version pushed again (seed 004's team pushed through): the pipeline's
	// preflight asks the agent before the rollout, and stops.
	fmt.Fprintf(out, "\n== 4. the pipeline tries %s again; `vigil preflight` asks the agent before the rollout\n", BrokenVersion)
	p, err := a.Preflight(ctx, "shop", BrokenVersion)
	if err != nil {
		return err
	}
	if p.Clear {
		return fmt.Errorf("demo: the preflight of %s, which failed verification, should be blocked", BrokenVersion)
	}
	for _, n := range p.Blocked {
		fmt.Fprintf(out, "   blocked (%s): %s\n", n.Rule, n.Message)
	}
	fmt.Fprintf(out, "   the pipeline stops (exit 1): nothing is rolled out\n")

	fmt.Fprintf(out, "\nDeploy history of the sample shop: %s\n", strings.Join(app.History(), " → "))
	fmt.Fprintf(out, "vigil caught the broken deploy with a real browser, rolled it back once, told Slack why, and kept it from going out again.\n")
	if o.Keep {
		fmt.Fprintf(out, "\nThe shop, the agent and its status page keep running at http://%s; press Ctrl-C to stop.\n", ln.Addr())
		<-ctx.Done()
	}
	return nil
}

// stage is the demo's set: the sample shop, the Slack stand-in and an agent verifying the
// shop's deploys, all on loopback. close stops them all.
type stage struct {
	app   *App
	slack *loopback.Slack
	agent *agent.Agent
	store *store.SQLite
	ln    net.Listener
	close func()
}

// stageDemo starts the shop (good version), the Slack stand-in and an agent on Config.
func stageDemo(ctx context.Context, o Options) (_ *stage, err error) {
	var undo []func()
	cleanup := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	app, err := StartApp(GoodVersion)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { app.Close() })
	app.RollbackSecret = []byte(hex.EncodeToString(secret))
	slack := &loopback.Slack{}
	if err := slack.Start(""); err != nil {
		return nil, fmt.Errorf("demo: the Slack stand-in: %w", err)
	}
	undo = append(undo, func() { slack.Close() })
	dir, err := os.MkdirTemp("", "vigil-demo-")
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { os.RemoveAll(dir) })
	cfgPath := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(cfgPath, []byte(Config), 0o600); err != nil {
		return nil, err
	}
	cfg, err := configs.Load(cfgPath, configs.Options{Environ: []string{"APP=" + app.URL, "SLACK=" + slack.APIURL(),
		"SLACK_TOKEN=" + loopback.SlackToken, "ROLLBACK_SECRET=" + string(app.RollbackSecret)}})
	if err != nil {
		return nil, fmt.Errorf("demo config: %w", err)
	}
	db, err := store.Open(ctx, filepath.Join(dir, "vigil.db"))
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { db.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		ln.Close()
		return nil, err
	}
	undo = append(undo, func() { logf.Close() })
	a, err := agent.New(agent.Options{Config: cfg, ConfigPath: cfgPath, Deps: o.Deps, Tracing: o.Tracing, Store: db, Registry: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(logf, nil)), Version: "demo", Listener: ln, BrowserReady: o.BrowserReady})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("demo agent: %w", err)
	}
	agentCtx, stopAgent := context.WithCancel(ctx)
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(agentCtx) }()
	undo = append(undo, func() { stopAgent(); <-agentDone })
	return &stage{app: app, slack: slack, agent: a, store: db, ln: ln, close: cleanup}, nil
}

// verify registers a deploy of version with the agent, as `vigil gate` would, waits for
// the verdict and prints it.
func verify(ctx context.Context, out io.Writer, a *agent.Agent, version string) (*store.Deploy, error) {
	start := time.Now()
	list, err := a.StartDeploys(ctx, agent.DeployRequest{Service: "shop", Version: version, Environment: "demo"})
	if err != nil {
		return nil, fmt.Errorf("demo: registering the deploy: %w", err)
	}
	d, err := a.WaitDeploy(ctx, list[0].ID, 3*time.Minute)
	if err != nil {
		return nil, err
	}
	took := time.Since(start).Round(10 * time.Millisecond)
	cs, err := a.DeployChecks(ctx, d)
	if err != nil {
		return nil, err
	}
	ready := time.Duration(0) // when every check had passed once: the new version was up
	for _, c := range cs {
		if c.ReadyMS == nil {
			ready = 0
			break
		}
		ready = max(ready, time.Duration(*c.ReadyMS)*time.Millisecond)
	}
	if ready > 0 {
		fmt.Fprintf(out, "   verdict: %s after %s (every check passed once by %s)\n", strings.ToUpper(d.Status), took, ready)
	} else {
		fmt.Fprintf(out, "   verdict: %s after %s\n", strings.ToUpper(d.Status), took)
	}
	for _, c := range cs {
		mark := "✓"
		if c.Failed+c.Errors+c.Inconclusive > 0 {
			mark = "✗"
		}
		fmt.Fprintf(out, "     %s %-10s %-8s %d of %d runs passed\n", mark, c.Name, c.Kind, c.Passed, c.Runs)
		for i, r := range c.Reasons {
			if i == 2 {
				break
			}
			fmt.Fprintf(out, "         %s\n", r)
		}
		switch {
		case c.TraceURL != "":
			fmt.Fprintf(out, "         trace: %s\n", c.TraceURL)
		case c.TraceID != "" && c.Failed+c.Errors > 0:
			fmt.Fprintf(out, "         trace: %s\n", c.TraceID)
		}
	}
	return d, nil
}

// sentEvent reads back the event the outbox delivered to a notifier.
func sentEvent(ctx context.Context, st *store.SQLite, notifier, event string) (*alerting.Event, error) {
	entries, err := st.Outbox(ctx, store.OutboxDelivered, 100)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.Notifier == notifier && e.Event == event {
			var ev alerting.Event
			return &ev, json.Unmarshal(e.Payload, &ev)
		}
	}
	return nil, errors.New("not delivered")
}

func waitFor(ctx context.Context, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing after %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func indent(s, by string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = by + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
