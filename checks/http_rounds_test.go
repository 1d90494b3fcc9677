package checks

import (
	"context"
	"fmt"
	"net/http"
	"testing"
)

// TestHTTPRoundsOpenTheirOwnConnections: a deploy's verification behind a connection-level
// load balancer (kube-proxy, a cloud network load balancer) while the rollout goes on. At
// the first round only the old pods (v1) are in rotation; then the new ones (v2) are and
// v1 drains, keeping its established connections, for 30 s or more. Each round stands for
// a new visitor, who reaches v2. The verification's rounds shared one session, so the
// first round's kept-alive connection carried every later round to the draining v1: with
// served_version every round said "answered by version v1" (a good rollout failed as not
// ready under ready_within), and without it a broken v2 passed on v1's answers.
func TestHTTPRoundsOpenTheirOwnConnections(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	broken := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "broken", http.StatusInternalServerError) })
	v1 := serve(t, versioned("v1", ok))
	for _, tc := range []struct {
		name   string
		v2     http.Handler
		served string
		first  func(t *testing.T, res *Result)
		want   Outcome
	}{
		// the first round is v1's: not the deploy's version yet; the second must reach v2
		{"good rollout, served_version", ok, "\n    served_version: {header: X-App-Version}",
			func(t *testing.T, res *Result) { wantNotServed(t, res, true) }, Pass},
		// no version to tell them apart: the first round passes on v1; the second must
		// see v2's 500s
		{"broken new version", broken, "",
			func(t *testing.T, res *Result) { wantOutcome(t, res, Pass) }, Fail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v2 := serve(t, versioned("v2", tc.v2))
			lb := newL4Balancer(t, v1.URL)
			c := buildOne(t, fmt.Sprintf(`
checks:
  - name: home
    kind: http
    timeout: 5s
    request: {url: %q}%s
`, lb.URL()+"/", tc.served))
			session := c.prober.(*HTTP).client.NewSession() // the verification's, every round in it
			t.Cleanup(session.CloseIdle)
			ctx := WithSession(context.Background(), session)
			in := Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v2"}}

			tc.first(t, c.Run(ctx, in))
			lb.Rotate(v2.URL) // the new pods are in; v1 drains, its connections kept
			for round := 2; round <= 3; round++ {
				res := c.Run(ctx, in)
				t.Logf("round %d: %s %q; the balancer accepted %d connections", round, res.Outcome, res.Reasons, lb.Conns())
				wantOutcome(t, res, tc.want)
				if res.Vars["conn_reused"] != false {
					t.Fatalf("round %d: conn_reused %v; a round opens its own connection", round, res.Vars["conn_reused"])
				}
			}
		})
	}
}

// TestScriptRoundsOpenTheirOwnConnections: the same rollout for a multi-step journey. Its
// steps share a connection within a round, as a browser tab's requests would, but each round
// of the verification is a new visitor: the rounds after the first must reach v2, not ride
// the first round's connection to the draining v1.
func TestScriptRoundsOpenTheirOwnConnections(t *testing.T) {
	broken := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "broken", http.StatusInternalServerError) })
	v1 := serve(t, versioned("v1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })))
	v2 := serve(t, versioned("v2", broken))
	lb := newL4Balancer(t, v1.URL)
	c := buildOne(t, fmt.Sprintf(`
checks:
  - name: journey
    kind: script
    timeout: 5s
    steps:
      - {name: home, request: {url: %q}}
      - {name: cart, request: {url: %q}}
`, lb.URL()+"/", lb.URL()+"/cart"))
	session := c.prober.(*Script).client.NewSession()
	t.Cleanup(session.CloseIdle)
	ctx := WithSession(context.Background(), session)
	in := Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v2"}}

	wantOutcome(t, c.Run(ctx, in), Pass) // only v1 is in rotation yet
	if n := lb.Conns(); n != 1 {
		t.Fatalf("the first round's two steps took %d connections; want 1 (steps share a round's connection)", n)
	}
	lb.Rotate(v2.URL) // the new pods are in; v1 drains, its connections kept
	for round := 2; round <= 3; round++ {
		res := c.Run(ctx, in)
		t.Logf("round %d: %s %q; the balancer accepted %d connections", round, res.Outcome, res.Reasons, lb.Conns())
		wantOutcome(t, res, Fail)
	}
}
