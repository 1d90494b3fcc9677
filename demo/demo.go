package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/report"
)

// Options configure a demo run.
type Options struct {
	Out       io.Writer
	UserAgent string
	// Keep leaves the sample app running until ctx ends.
	Keep bool
}

// Config is the demo's vigil.yaml; ${APP} is the sample app's URL.
const Config = `# The config vigil demo runs: checks against the built-in sample app.
agent:
  location: demo
defaults:
  timeout: 5s
  retries: 1

checks:
  - name: health
    kind: http
    request: {url: "${APP}/healthz"}
    assert: ["status == 200", "body contains 'ok'", "duration_ms < 500"]

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

services:
  shop:
    checks: [health, login, checkout]
`

// Run is the whole demo.
func Run(ctx context.Context, o Options) error {
	out := o.Out
	app, err := StartApp(GoodVersion)
	if err != nil {
		return err
	}
	defer app.Close()
	dir, err := os.MkdirTemp("", "vigil-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfgPath := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(cfgPath, []byte(Config), 0o644); err != nil {
		return err
	}
	cfg, err := configs.Load(cfgPath, configs.Options{Environ: []string{"APP=" + app.URL}})
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	client := checks.NewHTTPClient(o.UserAgent)
	defer client.CloseIdle()
	list, err := checks.Build(cfg, checks.Deps{HTTP: client})
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}

	fmt.Fprintf(out, "vigil demo: sample shop at %s, running %s\n\n", app.URL, app.Version())
	fmt.Fprintf(out, "== %s is live (good). vigil runs its checks:\n", GoodVersion)
	good := runOnce(ctx, out, list)
	if !good.OK() {
		return fmt.Errorf("demo: the good version should pass every check, but %s", good)
	}

	fmt.Fprintf(out, "\n== deploying %s (broken: the login query needs a column the migration did not add)\n", BrokenVersion)
	app.Deploy(BrokenVersion)
	bad := runOnce(ctx, out, list)
	if bad.OK() {
		return fmt.Errorf("demo: vigil should have caught the broken version, but every check passed")
	}
	fmt.Fprintf(out, "\nvigil caught the broken deploy: %d of %d checks failed after %s went out.\n", bad.Failed+bad.Errors, bad.Total, BrokenVersion)
	fmt.Fprintf(out, "Deploy history of the sample app: %s\n", strings.Join(app.History(), " -> "))
	if o.Keep {
		fmt.Fprintf(out, "\nThe sample app keeps running at %s; press Ctrl-C to stop.\n", app.URL)
		<-ctx.Done()
	}
	return nil
}

func runOnce(ctx context.Context, out io.Writer, list []*checks.Check) report.Summary {
	start := time.Now()
	p := report.NewPrinter(out, false, false, len(list))
	results := checks.RunAll(ctx, list, 4, nil, nil, nil, p.Done)
	s := report.Summarize(results, time.Since(start))
	fmt.Fprintln(out, s)
	return s
}
