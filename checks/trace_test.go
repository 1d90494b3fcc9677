package checks_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/tracing"
)

// headerLog records the traceparent each path was asked with.
type headerLog struct {
	mu   sync.Mutex
	seen map[string]string
}

func (l *headerLog) record(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen[r.URL.Path] = r.Header.Get("Traceparent")
}

func (l *headerLog) get(path string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.seen[path]
	return v, ok
}

// With tracing on, a run is a span, its trace id is on the result, and every request to
// the target carries it: http requests, and a browser's requests to the page's own origin
// — never to a third party's, where the extra header would make a CORS preflight.
func TestRunsCarryTheirTraceToTheTarget(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr, err := tracing.New(t.Context(), configs.Tracing{}, tracing.Options{Exporter: exp, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	third := &headerLog{seen: map[string]string{}}
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		third.record(r)
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Content-Type", "application/javascript")
		fmt.Fprint(w, "window.cdnLoaded = true;")
	}))
	t.Cleanup(cdn.Close)
	first := &headerLog{seen: map[string]string{}}
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first.record(r)
		switch r.URL.Path {
		case "/api":
			fmt.Fprint(w, `{"ok":true}`)
		default:
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!doctype html><div id=app></div><script src="%s/lib.js"></script>
<script>fetch('/api').then(function () { document.getElementById('app').dataset.ready = 1; });</script>`, cdn.URL)
		}
	}))
	t.Cleanup(site.Close)
	hc := checks.NewHTTPClient("vigil-test")
	hc.Wrap = tr.Transport
	t.Cleanup(hc.CloseIdle)
	cs := buildDeps(t, checks.Deps{HTTP: hc, Browser: browserPool(t), Tracing: tr}, site.URL, `
checks:
  - {name: api, kind: http, request: {url: "${T}/api"}}
  - {name: page, kind: browser, url: "${T}/", wait_for: "#app[data-ready]", timeout: 20s}
`)
	for _, name := range []string{"api", "page"} {
		res := checks.RunWithRetries(context.Background(), cs[name], checks.Input{}, checks.Retry{})
		if res.Outcome != checks.Pass || len(res.TraceID) != 32 {
			t.Fatalf("%s: %s %v, trace id %q", name, res.Outcome, res.Reasons, res.TraceID)
		}
		paths := map[string][]string{"api": {"/api"}, "page": {"/", "/api"}}[name]
		for _, p := range paths {
			if got, _ := first.get(p); !strings.Contains(got, res.TraceID) {
				t.Errorf("%s: %s came with traceparent %q; want the run's trace %s", name, p, got, res.TraceID)
			}
		}
		first.mu.Lock()
		first.seen = map[string]string{}
		first.mu.Unlock()
	}
	if got, ok := third.get("/lib.js"); !ok || got != "" {
		t.Errorf("the third-party script was fetched %v with traceparent %q; want fetched, without", ok, got)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
