package agent

import (
	"testing"

	"github.com/vigil-monitor/vigil/checks"
)

// The baseline note compares the most telling variable both sides measured; a time the
// failing run never measured (0: the page died before its load event) is no comparison.
func TestBaselineNote(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		now, base map[string]any
		want      string
	}{
		{"sla", map[string]any{"p95_ms": 412.0, "duration_ms": 900.0}, map[string]any{"p95_ms": 180.0, "duration_ms": 300.0}, "p95 412 ms (180 ms before the deploy)"},
		{"browser that loaded", map[string]any{"timings": map[string]any{"load_ms": 2400.0}}, map[string]any{"timings.load_ms": 400.0}, "load 2.4 s (400 ms before the deploy)"},
		{"browser that died first", map[string]any{"timings": map[string]any{"load_ms": 0.0}, "duration_ms": 950.0},
			map[string]any{"timings.load_ms": 408.0, "duration_ms": 700.0}, "duration 950 ms (700 ms before the deploy)"},
		// A user read "duration 390 ms, 1.1 s before the deploy" as a run 1.1 s before the deploy.
		{"faster than before", map[string]any{"duration_ms": 390.0}, map[string]any{"duration_ms": 1100.0}, "duration 390 ms (1.1 s before the deploy)"},
		// An http run of a verification opened its connection; the baseline's runs are timed
		// without theirs: it read "duration 2.7 ms (0.3 ms before the deploy)" for a good one.
		{"http on a new connection", map[string]any{"duration_ms": 2.7, "dns_ms": 0.0, "connect_ms": 0.1, "tls_ms": 2.2, "conn_reused": false},
			map[string]any{"duration_ms": 0.3}, "duration 0.4 ms less connection setup (0.3 ms before the deploy)"},
		{"http on a kept-alive connection", map[string]any{"duration_ms": 2.7, "dns_ms": 0.0, "connect_ms": 0.0, "tls_ms": 0.0, "conn_reused": true},
			map[string]any{"duration_ms": 0.3}, "duration 2.7 ms (0.3 ms before the deploy)"},
		{"no baseline", map[string]any{"p95_ms": 412.0}, nil, ""},
		{"nothing in common", map[string]any{"status": 500}, map[string]any{"p95_ms": 180.0}, ""},
	} {
		got := baselineNote(&checks.Result{Vars: c.now}, c.base)
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
