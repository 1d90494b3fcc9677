package checks

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
)

// TestFleetOneInstanceListedTwice: a registry that lists an instance twice, once with a
// trailing slash (two registrations, a hand-edited list), still has one instance: vigil
// asks the same /healthz for both, so counting both made one dead instance two unhealthy
// ones (and unhealthy == 0 fail twice as loud), and a registry that changed its spelling
// between the baseline and the deploy showed one instance as both missing and new.
func TestFleetOneInstanceListedTwice(t *testing.T) {
	ok := newFleetNode(t, "v1", func(*fleetNode) (int, string) { return http.StatusOK, "" })
	dead := closedURL(t)
	var mu sync.Mutex
	var listed []string
	reg := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		type inst struct {
			URL string `json:"url"`
		}
		var out struct {
			Instances []inst `json:"instances"`
		}
		for _, u := range listed {
			out.Instances = append(out.Instances, inst{u})
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	list := func(u ...string) {
		mu.Lock()
		listed = u
		mu.Unlock()
	}
	c := buildOne(t, fleetYAML(reg.URL, `["unhealthy == 0", "new == 0", "missing == 0"]`))

	list(ok.URL(), ok.URL()+"/", dead, dead+"/")
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "unhealthy == 0 is false: unhealthy = 1 ")
	if res.Vars["total"] != 2 || res.Vars["healthy"] != 1 {
		t.Fatalf("total %v healthy %v: want 2 instances, 1 healthy", res.Vars["total"], res.Vars["healthy"])
	}

	list(ok.URL() + "/")
	base := c.Baseline(baselineRuns(t, c, 1), 5)
	list(ok.URL())
	res = run(t, c, Input{Deploy: &Deploy{Version: "v2"}, Baseline: base})
	wantOutcome(t, res, Pass)
}
