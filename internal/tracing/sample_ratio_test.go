package tracing

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/vigil-monitor/vigil/configs"
)

// tracing.sample_ratio, loaded from a config, decides which traces are recorded: 0 none,
// 1 all, and it wins over OTEL_TRACES_SAMPLER_ARG.
func TestSampleRatioFromConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ratio   string
		environ []string
		want    int
	}{
		{"0", []string{}, 0},
		{"1", []string{}, 10},
		{"1", []string{"OTEL_TRACES_SAMPLER_ARG=0"}, 10},
		{"0", []string{"OTEL_TRACES_SAMPLER_ARG=1"}, 0},
	} {
		cfg, err := configs.Parse(filepath.Join(t.TempDir(), "vigil.yaml"), fmt.Appendf(nil, `
tracing: {trace_url: "https://jaeger.example/trace/{trace_id}", sample_ratio: %s}
checks: [{name: home, kind: http, request: {url: "http://127.0.0.1:9/"}}]
`, tc.ratio), configs.Options{Environ: tc.environ})
		if err != nil {
			t.Fatal(err)
		}
		exp := tracetest.NewInMemoryExporter()
		tr, err := New(t.Context(), cfg.Tracing, Options{Exporter: exp, Environ: tc.environ})
		if err != nil {
			t.Fatal(err)
		}
		for range 10 {
			_, span := tr.Tracer("test").Start(t.Context(), "check run")
			span.End()
		}
		if err := tr.sdk.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := len(exp.GetSpans()); got != tc.want {
			t.Errorf("sample_ratio %s with %v: %d of 10 traces recorded, want %d", tc.ratio, tc.environ, got, tc.want)
		}
		_ = tr.Shutdown(context.Background())
	}
}

// A run in a trace the sampler dropped has no trace id to show: the trace was recorded
// nowhere (nor by the target, whose parent-based sampler reads the decision in
// traceparent), so a link to it from Slack or the run page would open nothing. The target
// still gets traceparent, carrying the decision not to record.
func TestAnUnsampledRunHasNoTraceID(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Get("Traceparent")
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		ratio    float64
		id       bool
		decision string // traceparent's flags
	}{{0, false, "-00"}, {1, true, "-01"}} {
		tr, err := New(t.Context(), configs.Tracing{TraceURL: "https://jaeger.example/trace/{trace_id}", SampleRatio: &tc.ratio},
			Options{Environ: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, span := tr.Tracer("test").Start(t.Context(), "check run")
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		resp, err := (&http.Client{Transport: tr.Transport(http.DefaultTransport)}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		span.End()
		id := TraceID(ctx)
		if (id != "") != tc.id || (tc.id && tr.TraceURL(id) == "") {
			t.Errorf("sample_ratio %v: trace id %q, link %q; want one: %v", tc.ratio, id, tr.TraceURL(id), tc.id)
		}
		mu.Lock()
		if !strings.HasSuffix(got, tc.decision) {
			t.Errorf("sample_ratio %v: the target got traceparent %q; want it, ending %s", tc.ratio, got, tc.decision)
		}
		mu.Unlock()
		_ = tr.Shutdown(context.Background())
	}
}
