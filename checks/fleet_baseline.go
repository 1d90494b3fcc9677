package checks

import (
	"maps"
	"math"
	"sort"
)

// fleetIntVars are the variables whose baseline is a (rounded) median.
var fleetIntVars = []string{"total", "healthy", "unhealthy", "regressed", "new", "missing", "old_version_unhealthy"}

// baselineInstance is one instance as the runs before the deploy last saw it.
type baselineInstance struct {
	healthy bool
	version string
}

// Baseline implements Baseliner: each instance's health and version as the latest run
// before the deploy that measured it saw them, whatever that run's outcome (a fleet
// with one instance down still says who was up), plus the median of the counts.
func (f *Fleet) Baseline(previous []*Result) map[string]any {
	runs := make([]*Result, 0, len(previous))
	for _, r := range previous {
		if r != nil && r.Vars != nil && r.Vars["instances"] != nil {
			runs = append(runs, r)
		}
	}
	if len(runs) == 0 {
		return nil
	}
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Started.Before(runs[j].Started) })
	merged := map[string]map[string]any{}
	for _, r := range runs { // oldest first: later runs overwrite
		for u, in := range instancesOf(r.Vars["instances"]) {
			prev := merged[u]
			if in.version == "" && prev != nil {
				in.version, _ = prev["version"].(string)
			}
			merged[u] = map[string]any{"healthy": in.healthy, "version": in.version}
		}
	}
	out := maps.Clone(runs[len(runs)-1].Vars)
	for _, k := range fleetIntVars {
		var xs []float64
		for _, r := range runs {
			if x, ok := asFloat(r.Vars[k]); ok {
				xs = append(xs, x)
			}
		}
		if len(xs) > 0 {
			out[k] = int(math.Round(median(xs)))
		}
	}
	out["instances"] = merged
	return out
}

// fleetBaseline reads the per-instance baseline; false when there is none.
func fleetBaseline(b map[string]any) (map[string]baselineInstance, bool) {
	if b == nil || b["instances"] == nil {
		return nil, false
	}
	return instancesOf(b["instances"]), true
}

// instancesOf reads an instances variable as this package writes it, or as it comes back
// from JSON (a store keeps results as JSON).
func instancesOf(v any) map[string]baselineInstance {
	out := map[string]baselineInstance{}
	read := func(u string, m map[string]any) {
		h, _ := m["healthy"].(bool)
		ver, _ := m["version"].(string)
		out[instanceURL(u)] = baselineInstance{healthy: h, version: ver}
	}
	switch x := v.(type) {
	case map[string]map[string]any:
		for u, m := range x {
			read(u, m)
		}
	case map[string]any:
		for u, raw := range x {
			if m, ok := raw.(map[string]any); ok {
				read(u, m)
			}
		}
	}
	return out
}
