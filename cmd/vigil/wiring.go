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
// log, when set, is the agent's logger: the browser pool logs through it (warnings and
// worse), so --log-json keeps stderr JSON only.
func newRuntime(cfg *configs.Config, log *slog.Logger) (*runtimeParts, error) {
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
		Logger: warnings(log),
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

// warnings is log limited to warnings and errors; without log, text on stderr.
func warnings(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(minLevel{log.Handler(), slog.LevelWarn})
}

// minLevel passes on the records at or above its level.
type minLevel struct {
	slog.Handler
	level slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.level && m.Handler.Enabled(ctx, l)
}

func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{m.Handler.WithAttrs(as), m.level}
}
func (m minLevel) WithGroup(g string) slog.Handler { return minLevel{m.Handler.WithGroup(g), m.level} }
