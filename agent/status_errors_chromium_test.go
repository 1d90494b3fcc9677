package agent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/agent"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
	"github.com/vigil-monitor/vigil/store"
)

// In Chromium, as an SRE sees them: a deploy page past the retention period is a page in
// the status page's theme, not a bare line; a mistyped check's page links the nearest
// check, and following the link opens it; the way back opens the status page. A README on
// another origin showing a badge of a renamed check shows a badge, not a broken image.
func TestErrorPagesInChromium(t *testing.T) {
	path := chromium(t)
	base := startPlainAgent(t, "")
	tb := newTab(t, path)
	within := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// A README elsewhere: one badge that can be drawn, two that cannot.
	readme := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>README</title><img id="ok" src="%[1]s/badges/home/health.svg">`+
			`<img id="renamed" src="%[1]s/badges/hom/health.svg"><img id="window" src="%[1]s/badges/home/uptime.svg?window=2d"><footer>end</footer>`, base)
	}))
	t.Cleanup(readme.Close)
	tb.open(readme.URL) // the tab's first call, on its own context: a shorter one would end the browser with it
	eventually(t, 30*time.Second, "the README's badges to load", func() bool {
		return eval[bool](tb, `[...document.images].every(i => i.complete)`)
	})
	if got := eval[map[string]int](tb, `Object.fromEntries([...document.images].map(i => [i.id, i.naturalWidth]))`); got["ok"] == 0 || got["renamed"] == 0 || got["window"] == 0 {
		t.Errorf("badge widths %v: a badge that is 0 wide is a broken image in the README", got)
	}

	tb.theme(true)
	within("a deploy past retention", chromedp.Navigate(base+"/deploys/20261101-120000-0badc0de"), chromedp.WaitReady(chromedp.CSS("footer")))
	if l := background(tb); l >= 0.5 {
		t.Errorf("dark theme: the error page's background has luminance %.2f", l)
	}
	if got := eval[string](tb, `document.querySelector('h1').textContent + ' | ' + document.getElementById('message').textContent`); !strings.Contains(got, "404 Not Found") ||
		!strings.Contains(got, `no such deploy "20261101-120000-0badc0de": it may be past the store's retention (7 days)`) {
		t.Errorf("the error page says %q", got)
	}
	if n := eval[int](tb, `document.querySelectorAll('script').length`); n != 0 {
		t.Errorf("the error page has %d scripts", n)
	}
	within("the way back", chromedp.Click(chromedp.CSS("#back")))
	eventually(t, 30*time.Second, "the status page after the way back", func() bool {
		return eval[string](tb, `location.pathname + (document.querySelector('tr.check[data-check=home]') ? ' home' : '')`) == "/ home"
	})

	within("a mistyped check", chromedp.Navigate(base+"/checks/hmoe?range=7d"), chromedp.WaitReady(chromedp.CSS("footer")))
	within("the did-you-mean link", chromedp.Click(chromedp.CSS("#did-you-mean")))
	eventually(t, 30*time.Second, "home's page after did you mean", func() bool {
		return eval[string](tb, `location.pathname + location.search + ' ' + document.title`) == "/checks/home?range=7d home · vigil"
	})
}

// startPlainAgent runs an agent with one http check, home, against a loopback target, and
// returns its URL.
func startPlainAgent(t *testing.T, agentYAML string) string {
	t.Helper()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	t.Cleanup(target.Close)
	dir := t.TempDir()
	db, err := store.Open(t.Context(), filepath.Join(dir, "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	path := vigiltest.WriteConfig(t, dir, agentYAML+"checks:\n  - {name: home, kind: http, every: 1h, request: {url: \""+target.URL+"/\"}}\n")
	load := func() (*configs.Config, error) { return configs.Load(path, configs.Options{}) }
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &vigiltest.Buffer{}
	a, err := agent.New(agent.Options{Config: cfg, ConfigPath: path, LoadConfig: load, Deps: checks.Deps{HTTP: checks.NewHTTPClient("vigil-test")},
		Store: db, Registry: prometheus.NewRegistry(), Version: "test", Listener: ln, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})
	return "http://" + ln.Addr().String()
}
