package checks

import (
	"net/http"
	"slices"
	"testing"
)

// remove unlists n, as an instance deregisters on its way out.
func (f *fleetRegistry) remove(n *fleetNode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes = slices.DeleteFunc(f.nodes, func(x *fleetNode) bool { return x == n })
}

// TestFleetScaleDownDuringTheRun: in a rolling deploy the old instances are replaced one by
// one. Old instance b is listed when the run asks the registry, then shuts down (it
// deregisters and its process exits) before its health is asked for. That is the rollout
// working, not seed 004: b left the fleet. Before, it was counted unhealthy, regressed and
// an old-version failure, and the deploy failed and halted on an ordinary scale-down. An
// instance that fails and stays listed is still all three (TestFleetSeed004).
func TestFleetScaleDownDuringTheRun(t *testing.T) {
	reg := &fleetRegistry{}
	var b *fleetNode
	leaving := false
	up := func(*fleetNode) (int, string) { return http.StatusOK, "" }
	a := newFleetNode(t, "v1", up)
	b = newFleetNode(t, "v1", func(n *fleetNode) (int, string) {
		reg.mu.Lock()
		l := leaving
		reg.mu.Unlock()
		if !l {
			return http.StatusOK, ""
		}
		reg.remove(n)
		return 0, "" // the process is gone: the connection drops
	})
	reg.add(a, b)
	c := buildOne(t, fleetYAML(serve(t, reg).URL, `["unhealthy == 0", "regressed == 0", "old_version_unhealthy == 0"]`))
	baseline := c.Baseline(baselineRuns(t, c, 2), 5)

	fresh := newFleetNode(t, "v2", up) // its replacement, on the new version
	reg.add(fresh)
	reg.mu.Lock()
	leaving = true
	reg.mu.Unlock()
	res := run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v2"}, Baseline: baseline})
	wantOutcome(t, res, Pass)
	if res.Halt != "" {
		t.Fatalf("halted on a scale-down: %q", res.Halt)
	}
	wantInstances(t, res, "missing_instances", urls(b))
	wantInstances(t, res, "new_instances", urls(fresh))
	if res.Vars["total"] != 2 || res.Vars["healthy"] != 2 {
		t.Fatalf("total %v healthy %v: want a and the new instance", res.Vars["total"], res.Vars["healthy"])
	}
}
