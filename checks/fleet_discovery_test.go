package checks

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// laggingRegistry is a registry that answers an empty list on some asks (the k-th ask,
// counting from 1, is empty when empty(k)): a registry catching up during a rollout, an
// endpoints object deleted and recreated, a discovery cache answering before it filled.
type laggingRegistry struct {
	reg   *fleetRegistry
	empty func(k int) bool

	mu    sync.Mutex
	asked int
}

func (l *laggingRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	l.asked++
	k := l.asked
	l.mu.Unlock()
	if l.empty(k) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"instances":[]}`)
		return
	}
	l.reg.ServeHTTP(w, r)
}

// TestFleetDiscoveryEmptyForAMoment: discovery answers the run's list, and then, asked
// again to see which failed instances left the fleet, lists none for a moment. A list of
// none says nothing of who left: every instance, the healthy ones too, would have gone at
// once. Before, every failed instance was "no longer listed" and not judged: in a deploy,
// seed 004's crashed old peers dropped out while they were asked again and the deploy
// passed with no halt; outside one, an instance down passed unhealthy == 0. An empty list
// is now read as a discovery that could not say, as an error answer is.
func TestFleetDiscoveryEmptyForAMoment(t *testing.T) {
	up := func(*fleetNode) (int, string) { return http.StatusOK, "" }

	t.Run("seed 004 in a deploy", func(t *testing.T) {
		reg := &fleetRegistry{}
		health := func(n *fleetNode) (int, string) {
			if n.Version() == "A" {
				for _, peer := range reg.list() {
					if peer.Version() == "B" {
						return 0, ""
					}
				}
			}
			return http.StatusOK, ""
		}
		nodes := []*fleetNode{newFleetNode(t, "A", health), newFleetNode(t, "A", health), newFleetNode(t, "A", health)}
		reg.add(nodes...)
		lag := &laggingRegistry{reg: reg, empty: func(int) bool { return false }}
		c := buildOne(t, fleetYAML(serve(t, lag).URL, `["unhealthy == 0", "regressed == 0", "old_version_unhealthy == 0"]`))
		baseline := c.Baseline(baselineRuns(t, c, 2), 5)

		lag.mu.Lock()
		first := lag.asked + 1
		lag.empty = func(k int) bool { return k == first+1 || k == first+2 } // the first two asks after the run's list
		lag.mu.Unlock()
		nodes[0].setVersion("B")
		res := run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "gunk", Version: "B"}, Baseline: baseline})
		wantOutcome(t, res, Fail, "old_version_unhealthy = 2 ")
		wantInstances(t, res, "old_version_unhealthy_instances", urls(nodes[1:]...))
		if !strings.Contains(res.Halt, "2 instances on older versions failed once B appeared (1 instances run it)") {
			t.Fatalf("halt reason: %q", res.Halt)
		}
		if log := strings.Join(res.Transcript, "\n"); strings.Contains(log, ": left the fleet") || strings.Contains(log, ": left the fleet while") {
			t.Fatalf("an instance was taken for gone on an empty list:\n%s", log)
		}
	})

	t.Run("scheduled run", func(t *testing.T) {
		reg := &fleetRegistry{}
		a := newFleetNode(t, "A", up)
		down := newFleetNode(t, "A", func(*fleetNode) (int, string) { return http.StatusServiceUnavailable, "database unreachable" })
		reg.add(a, down)
		lag := &laggingRegistry{reg: reg, empty: func(k int) bool { return k == 2 }} // the ask after the run's list
		c := buildOne(t, fleetYAML(serve(t, lag).URL, `["unhealthy == 0"]`))
		res := run(t, c, Input{})
		wantOutcome(t, res, Fail, "unhealthy = 1 ("+down.URL()+" (503 database unreachable)")
		if log := strings.Join(res.Transcript, "\n"); !strings.Contains(log, "discovery lists no instance now") {
			t.Fatalf("the transcript does not say why the failed instance is judged:\n%s", log)
		}
	})
}
