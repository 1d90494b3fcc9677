package agent

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/internal/golden"
	"github.com/vigil-monitor/vigil/store"
)

// touch gives every vector one series, so that Gather reports every metric with its type.
func touch(t *testing.T, m *metrics) {
	m.checks.observe(&checks.Result{Check: "c", Kind: "http", Location: "local", Outcome: checks.Pass, Duration: time.Millisecond})
	// The kinds' own metrics: one result each that they record (a check has one kind, so
	// kinds that share a series name have checks of their own).
	m.kinds.Observe(&checks.Result{Check: "c", Kind: "http", Outcome: checks.Pass, Vars: map[string]any{"status": 200,
		"proto": "HTTP/2.0", "cert_expiry_timestamp": 1.9e9}})
	m.kinds.Observe(&checks.Result{Check: "c", Kind: "browser", Outcome: checks.Fail, Vars: map[string]any{"js_errors": 1}})
	m.kinds.Observe(&checks.Result{Check: "c", Kind: "propagation", Outcome: checks.Pass, Vars: map[string]any{"propagation_ms": 12.0, "readers": map[string]float64{"a": 12}}})
	m.kinds.Observe(&checks.Result{Check: "t", Kind: "tls", Outcome: checks.Pass, Vars: map[string]any{"cert_expiry_timestamp": 1.9e9}})
	m.kinds.Observe(&checks.Result{Check: "d", Kind: "dns", Outcome: checks.Pass, Vars: map[string]any{"lookup_ms": 2.0,
		"answer_count": 1, "authority_count": 0, "additional_count": 1, "propagation_ms": 900.0, "stale": 0}})
	m.kinds.Observe(&checks.Result{Check: "c", Kind: "heartbeat", Outcome: checks.Pass, Vars: map[string]any{"since_last_s": 60.0}})
	m.kinds.Observe(&checks.Result{Check: "c", Kind: "grpc", Outcome: checks.Pass, Vars: map[string]any{"grpc_code": "OK", "status": "SERVING"}})
	m.verdicts.WithLabelValues("web", "passed")
	m.ready.WithLabelValues("web")
	m.notifications.WithLabelValues("ops", "delivered")
	m.rollbacks.WithLabelValues("web")
	m.checks.skip("c")
	// The series read from the store: a decided deploy and a beat in a real one.
	st, err := store.Open(t.Context(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Unix(1_800_000_000, 0)
	if _, err := st.CreateDeploy(t.Context(), &store.Deploy{ID: "d1", Service: "web", Version: "v1", CreatedAt: now, Status: store.StatusVerifying}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DecideDeploy(t.Context(), &store.Decision{DeployID: "d1", Status: store.StatusPassed, At: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveBeat(t.Context(), "nightly", &store.Beat{At: now, Status: "ok"}); err != nil {
		t.Fatal(err)
	}
	m.stored.scope = func() storedScope {
		return storedScope{services: []string{"web"}, heartbeats: []string{"nightly"}, st: st}
	}
}

// The metric catalogue: every metric the agent exports, with its type, labels and help,
// pinned by a golden file, so that a dashboard or alert rule never breaks by accident. No
// label may take unbounded values: the test also refuses labels named like URLs, versions
// or ids.
func TestMetricCatalogue(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg, "v1.2.3", "abc123")
	touch(t, m)
	registerConnMetrics(reg, func() float64 { return 0 }, func() float64 { return 0 })
	mfs, _, err := seriesGatherer{reg, m.own}.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, mf := range mfs {
		var labels []string
		if len(mf.GetMetric()) > 0 {
			for _, l := range mf.GetMetric()[0].GetLabel() {
				labels = append(labels, l.GetName())
				switch l.GetName() {
				case "version":
					if mf.GetName() == "vigil_build_info" { // one series: the binary's own version
						break
					}
					t.Errorf("%s has label %q, which takes unbounded values", mf.GetName(), l.GetName())
				case "url", "id", "deploy", "target", "trace_id":
					t.Errorf("%s has label %q, which takes unbounded values", mf.GetName(), l.GetName())
				}
			}
		}
		lines = append(lines, fmt.Sprintf("%s %s {%s} %s", mf.GetName(), strings.ToLower(mf.GetType().String()),
			strings.Join(labels, ","), mf.GetHelp()))
	}
	// Every registered metric must be in the list: a new vector needs a line in touch.
	descs := make(chan *prometheus.Desc, 100)
	reg.Describe(descs)
	close(descs)
	for d := range descs {
		name := strings.TrimSuffix(strings.TrimPrefix(regexp.MustCompile(`fqName: "[^"]+"`).FindString(d.String()), `fqName: "`), `"`)
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, name+" ") }) {
			t.Errorf("%s is registered but has no series here: give it one in touch", name)
		}
	}
	sort.Strings(lines)
	golden.Assert(t, "metrics.txt", []byte(strings.Join(lines, "\n")+"\n"))
}
