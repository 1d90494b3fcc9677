package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/vigil-monitor/vigil/browser"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/tracing"
)

// runtime holds the shared parts checks run with, built once per process.
type runtimeParts struct {
	deps    checks.Deps
	tracing *tracing.Tracing
	browser *browser.Pool
	// browserReady reports whether Chromium can start (agent readiness): the pool's Check.
	browserReady func(ctx context.Context) error
}

// newRuntime builds the shared parts. The browser pool starts Chromium only when the
// first browser check runs, so a config without browser checks (or a machine without
// Chromium) never pays for it. Tracing follows the config's tracing block and OTEL_*
// variables; a bad OTEL_* value is an error here.
func newRuntime(cfg *configs.Config) (*runtimeParts, error) {
	v, _, _ := buildInfo()
	tr, err := tracing.New(context.Background(), cfg.Tracing, tracing.Options{Version: v, Location: cfg.Agent.Location})
	if err != nil {
		return nil, err
	}
	pool := browser.NewPool(browser.Options{
		Path:        cfg.Browser.Path,
		Flags:       cfg.Browser.Flags,
		Concurrency: cfg.Agent.BrowserConcurrency,
		// Only what someone must act on (a browser that died and was replaced); the
		// results already say what each check saw.
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	hc := checks.NewHTTPClient(userAgent())
	hc.Wrap = tr.Transport
	return &runtimeParts{
		deps:         checks.Deps{HTTP: hc, Browser: pool, Tracing: tr},
		tracing:      tr,
		browser:      pool,
		browserReady: pool.Check,
	}, nil
}

// Close stops Chromium (if it ran), drops kept-alive connections and sends the spans not
// yet exported (for at most 5 seconds).
func (r *runtimeParts) Close() {
	r.browser.Close()
	r.deps.HTTP.CloseIdle()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.tracing.Shutdown(ctx)
}
