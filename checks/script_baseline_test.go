package checks

import (
	"fmt"
	"net/http"
	"testing"
)

// A script step's assertion that reads baseline.* is judged as a check's own is: outside a
// deploy there is nothing before it to compare with and the step is judged by its other
// assertions; in a deploy with no passing run before it, the journey is inconclusive ("no
// baseline yet"), not failed; with a baseline, it is judged. (A scheduled run failed on
// every such journey: "baseline has no duration_ms; it is empty".)
func TestScriptStepBaselineOnlyInADeploy(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	c := buildOne(t, fmt.Sprintf(`
checks:
  - name: journey
    kind: script
    timeout: 5s
    steps:
      - {name: home, request: {url: %q}, assert: ["status == 200", "duration_ms < baseline.duration_ms * 1000 + 1000"]}
      - {name: again, request: {url: %q}, assert: ["status == 200"]}
`, srv.URL+"/", srv.URL+"/again"))
	scheduled := run(t, c, Input{})
	wantOutcome(t, scheduled, Pass)
	if scheduled.Vars["steps"] != 2 {
		t.Errorf("a scheduled run stopped at step %v; want both steps", scheduled.Vars["steps"])
	}
	deploy := &Deploy{ID: "d1", Service: "web", Version: "v2"}
	res := run(t, c, Input{Deploy: deploy})
	wantOutcome(t, res, Inconclusive, `no baseline yet: step 1 (home): "duration_ms < baseline.duration_ms * 1000 + 1000" compares with runs from before the deploy`)
	if res.Vars["steps"] != 2 {
		t.Errorf("with no baseline the journey stopped at step %v; want both steps run", res.Vars["steps"])
	}
	wantOutcome(t, run(t, c, Input{Deploy: deploy, Baseline: map[string]any{"duration_ms": 5.0}}), Pass)
	wantOutcome(t, run(t, c, Input{Deploy: deploy, Baseline: map[string]any{"duration_ms": -2.0}}), Fail, "step 1 (home): duration_ms < baseline.duration_ms * 1000 + 1000 is false")
}
