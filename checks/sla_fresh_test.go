package checks

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/vigil-monitor/vigil/configs"
)

// TestSLAFreshConnectionsEachBurst: a deploy's rounds behind a connection-level load
// balancer. In the first round only the old version (v1) is in rotation; then the new
// pods (v2) are, and v1 drains: its established connections stay open, as a balancer's
// draining keeps them. The second round of the same verification must see v2: a burst that
// reused the first round's kept-alive connections would measure only the draining v1 (and
// outside a deploy, a scheduled burst would never reach the pods a scale-up added).
func TestSLAFreshConnectionsEachBurst(t *testing.T) {
	v1 := serve(t, versioned("v1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })))
	v2 := serve(t, versioned("v2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })))
	lb := newL4Balancer(t, v1.URL)

	cfg, err := configs.Parse(t.TempDir()+"/vigil.yaml", []byte(fmt.Sprintf(`
checks:
  - name: burst
    kind: sla
    timeout: 10s
    request: {url: %q}
    requests: 20
    concurrency: 4
    served_version: {header: X-App-Version}
    assert: ["error_rate == 0"]
`, lb.URL()+"/")), configs.Options{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	shared := NewHTTPClient("vigil-test")
	t.Cleanup(shared.CloseIdle)
	list, err := Build(cfg, Deps{HTTP: shared})
	if err != nil {
		t.Fatal(err)
	}
	c := list[0]
	session := shared.NewSession() // one deploy's verification, every round in it
	t.Cleanup(session.CloseIdle)
	ctx := WithSession(context.Background(), session)
	in := Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v2"}}

	first := c.Run(ctx, in)
	wantNotServed(t, first, true) // only v1 in rotation yet
	lb.Rotate(v2.URL)             // the new pods are in; v1 drains
	second := c.Run(ctx, in)
	t.Logf("second round: %s %q; the balancer accepted %d connections", second.Outcome, second.Reasons, lb.Conns())
	wantOutcome(t, second, Pass)
	if second.Vars["requests"] != 20 {
		t.Fatalf("requests = %v, want all 20 answered by v2", second.Vars["requests"])
	}
}
