package tracing

import (
	"context"
	"fmt"
	"path/filepath"
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
