package checks

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/expr-lang/expr/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/configs"
)

var update = flag.Bool("update", false, "rewrite testdata/variables.golden from the kinds' variables")

// TestKindTablesMatch: a kind is registered twice, its config spec in configs' table and
// its prober in this package's; a kind in one and not the other is half a kind.
func TestKindTablesMatch(t *testing.T) {
	specs := configs.Kinds()
	for _, k := range specs {
		if _, ok := kinds[k]; !ok {
			t.Errorf("kind %q has a config spec (configs/kinds.go) but no prober in the kinds table (checks/kinds.go)", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		if !slices.Contains(specs, k) {
			t.Errorf("kind %q has a prober (checks/kinds.go) but no config spec in the kinds table (configs/kinds.go)", k)
		}
	}
}

// TestVariableCatalogue pins the variables every kind gives its assertions, by name and
// type, in testdata/variables.golden, so that what a config may assert changes only on
// purpose. After such a change: go test ./checks -run TestVariableCatalogue -update
func TestVariableCatalogue(t *testing.T) {
	var b strings.Builder
	b.WriteString("# every kind (and baseline.*: the kind's own variables, numbers as float64)\n")
	writeVars(&b, "", types.Map{"duration_ms": types.Float64, "deploy": deployType})
	for _, name := range configs.Kinds() {
		if k, ok := kinds[name]; ok {
			fmt.Fprintf(&b, "\n# %s\n", name)
			writeVars(&b, "", k.vars())
		}
	}
	b.WriteString("\n# script: a step's own assertions\n")
	writeVars(&b, "", scriptStepVars)
	b.WriteString("\n# propagation: a reader's match.expr\n")
	writeVars(&b, "", readMatchVars)

	const golden = "testdata/variables.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (write it with -update)", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("the kinds' variables changed; if on purpose, run with -update and update the README's tables.\ngot:\n%s\nwant:\n%s", got, want)
	}
}

// writeVars lists a variable a line, "name type", nested maps as name.field.
func writeVars(b *strings.Builder, prefix string, vars types.Map) {
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		if sub, ok := vars[name].(types.Map); ok {
			writeVars(b, prefix+name+".", sub)
			continue
		}
		fmt.Fprintf(b, "%s%s %s\n", prefix, name, vars[name])
	}
}

// TestScarceKinds: a browser run holds a page of the shared Chromium; no other kind holds
// anything scarce.
func TestScarceKinds(t *testing.T) {
	for _, k := range configs.Kinds() {
		want := Resource("")
		if k == configs.KindBrowser {
			want = BrowserSlot
		}
		if got := (&Check{Kind: k}).Resource(); got != want {
			t.Errorf("a %s run holds %q, want %q", k, got, want)
		}
	}
}

// TestKindsOwnTheirMetrics: browser and propagation checks export metrics of their own,
// recorded from results of their kind only (a propagation time from runs that measured one).
func TestKindsOwnTheirMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewKindMetrics(reg)
	for _, r := range []*Result{
		{Check: "home", Kind: configs.KindBrowser, Outcome: Fail, Vars: map[string]any{"js_errors": 2}},
		{Check: "home", Kind: configs.KindBrowser, Outcome: Pass, Vars: map[string]any{"js_errors": 0}},
		{Check: "feed", Kind: configs.KindPropagation, Outcome: Pass, Vars: map[string]any{"propagation_ms": 1500.0, "readers": map[string]float64{"a": 1500}}},
		// An error measured nothing: no propagation time; nor did a run whose readers only
		// another version answered (inconclusive), or one whose write was refused.
		{Check: "feed", Kind: configs.KindPropagation, Outcome: Error, Vars: map[string]any{"propagation_ms": 0.0, "readers": map[string]float64{}}},
		{Check: "feed", Kind: configs.KindPropagation, Outcome: Inconclusive, Vars: map[string]any{"propagation_ms": 0.0, "readers": map[string]float64{"a": 3}}},
		{Check: "feed", Kind: configs.KindPropagation, Outcome: Fail, Vars: map[string]any{"propagation_ms": 0.0, "readers": map[string]float64{}}},
		{Check: "api", Kind: configs.KindHTTP, Outcome: Pass, Vars: map[string]any{"js_errors": 5, "propagation_ms": 9.0}},
	} {
		m.Observe(r)
	}
	want := `
# HELP vigil_browser_js_errors_total JavaScript errors seen by browser checks.
# TYPE vigil_browser_js_errors_total counter
vigil_browser_js_errors_total{check="home"} 2
# HELP vigil_propagation_seconds Time until every reader showed a propagation check's marker.
# TYPE vigil_propagation_seconds histogram
vigil_propagation_seconds_bucket{check="feed",le="0.05"} 0
vigil_propagation_seconds_bucket{check="feed",le="0.1"} 0
vigil_propagation_seconds_bucket{check="feed",le="0.25"} 0
vigil_propagation_seconds_bucket{check="feed",le="0.5"} 0
vigil_propagation_seconds_bucket{check="feed",le="1"} 0
vigil_propagation_seconds_bucket{check="feed",le="2"} 1
vigil_propagation_seconds_bucket{check="feed",le="5"} 1
vigil_propagation_seconds_bucket{check="feed",le="10"} 1
vigil_propagation_seconds_bucket{check="feed",le="30"} 1
vigil_propagation_seconds_bucket{check="feed",le="60"} 1
vigil_propagation_seconds_bucket{check="feed",le="120"} 1
vigil_propagation_seconds_bucket{check="feed",le="+Inf"} 1
vigil_propagation_seconds_sum{check="feed"} 1.5
vigil_propagation_seconds_count{check="feed"} 1
`
	// not the http kind's blackbox gauges: agent's TestBlackboxHTTPMetrics reads them from a real answer
	got := gatheredText(t, reg, func(name string) bool { return !strings.HasPrefix(name, "probe_") })
	if got != strings.TrimPrefix(want, "\n") {
		t.Errorf("metrics:\n%s\nwant:\n%s", got, want)
	}
}
