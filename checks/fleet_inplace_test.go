package checks

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// staticFleetYAML is a fleet over a static list, as behind Consul or on fixed hosts: a
// rolling update there restarts each instance in place, at the same address.
func staticFleetYAML(assert string, nodes ...*fleetNode) string {
	list := make([]string, len(nodes))
	for i, n := range nodes {
		list[i] = fmt.Sprintf("%q", n.URL())
	}
	return fmt.Sprintf(`
checks:
  - name: fleet
    kind: fleet
    timeout: 5s
    targets: {static: [%s]}
    health: {path: /healthz, timeout: 1s}
    version: {path: /version, field: version}
    assert: %s
`, strings.Join(list, ", "), assert)
}

// stop ends n's process: its connections close and new ones are refused. From n's own
// handler, use crash: stop waits for the handlers that are running.
func (n *fleetNode) stop() {
	if n.url == "" {
		panic("stop a pinned node: fleetNode.url must be set before the run")
	}
	n.mu.Lock()
	srv := n.srv
	n.mu.Unlock()
	srv.Close()
}

// crash is stop from n's own handler: the process goes once this answer is out.
func (n *fleetNode) crash() { go n.stop() }

// pin fixes n's URL, so that it keeps its address across stop and listen.
func (n *fleetNode) pin() *fleetNode {
	n.url = n.srv.URL
	return n
}

// listen starts n's process again at its address, answering with health.
func (n *fleetNode) listen(t *testing.T, health func(*fleetNode) (int, string)) {
	l, err := net.Listen("tcp", strings.TrimPrefix(n.url, "http://"))
	if err != nil {
		t.Errorf("the instance cannot listen again at %s: %v", n.url, err)
		return
	}
	srv := httptest.NewUnstartedServer(n)
	srv.Listener.Close()
	srv.Listener = l
	n.mu.Lock()
	n.health = health
	n.srv = srv
	n.mu.Unlock()
	srv.Start()
	t.Cleanup(srv.Close)
}

// restartInPlace stops n now and starts it on version after a moment, answering with
// health from then on: the way a rolling update over fixed addresses upgrades it.
func restartInPlace(t *testing.T, n *fleetNode, version string, health func(*fleetNode) (int, string)) {
	n.stop()
	timer := time.AfterFunc(300*time.Millisecond, func() {
		n.setVersion(version)
		n.listen(t, health)
	})
	t.Cleanup(func() { timer.Stop() })
}

// TestFleetInPlaceRestart: a rolling update over a static list stops each instance,
// upgrades it and starts it again at the same address. An instance caught restarting
// (connections refused, then 503 while it warms up) was healthy before and comes back on
// the new version. Before, it was unhealthy, regressed and, as the baseline said it ran
// v1, an old-version failure: the deploy failed and the halt webhook stopped an ordinary
// rollout. It is now asked again, as a new instance is, and the deploy passes.
func TestFleetInPlaceRestart(t *testing.T) {
	up := func(*fleetNode) (int, string) { return http.StatusOK, "" }
	a, b := newFleetNode(t, "v1", up).pin(), newFleetNode(t, "v1", up)
	c := buildOne(t, staticFleetYAML(`["unhealthy == 0", "regressed == 0", "old_version_unhealthy == 0"]`, a, b))
	baseline := c.Baseline(baselineRuns(t, c, 2), 5)

	warm := &countingHealth{at: func(k int) (int, string) {
		if k <= 2 {
			return http.StatusServiceUnavailable, "warming up"
		}
		return http.StatusOK, ""
	}}
	restartInPlace(t, a, "v2", warm.health)
	res := run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v2"}, Baseline: baseline})
	wantOutcome(t, res, Pass)
	if res.Halt != "" {
		t.Fatalf("halted an in-place rolling update: %q", res.Halt)
	}
	if v := res.Vars["versions"].(map[string]map[string]int); v["v2"]["healthy"] != 1 || v["v1"]["healthy"] != 1 {
		t.Fatalf("versions = %v, want v1 and v2 healthy once each", v)
	}
	log := strings.Join(res.Transcript, "\n")
	for _, want := range []string{a.URL() + ": healthy before the deploy, and failing", a.URL() + ": healthy after "} {
		if !strings.Contains(log, want) {
			t.Fatalf("transcript lacks %q:\n%s", want, log)
		}
	}
}

// TestFleetUpgradedInPlaceThenCrashed: an instance upgraded in place answers once on the
// new version (503 while it warms up), then crashes and refuses connections. The verdict
// fails either way, but the reason must name the version it was on when it failed. Before,
// a crashed instance took the version the baseline saw, v1, and the halt reason blamed
// an old-version instance killed by v2 (seed 004), which sent the on-call after the wrong
// problem: it is v2 itself that crashes once an instance is upgraded.
func TestFleetUpgradedInPlaceThenCrashed(t *testing.T) {
	up := func(*fleetNode) (int, string) { return http.StatusOK, "" }
	a, b := newFleetNode(t, "v1", up).pin(), newFleetNode(t, "v1", up)
	c := buildOne(t, staticFleetYAML(`["unhealthy == 0", "regressed == 0", "old_version_unhealthy == 0"]`, a, b))
	baseline := c.Baseline(baselineRuns(t, c, 2), 5)

	dies := &countingHealth{at: func(k int) (int, string) {
		if k == 2 { // its health and version requests are answered, then it crashes
			a.crash()
		}
		return http.StatusServiceUnavailable, "warming up"
	}}
	restartInPlace(t, a, "v2", dies.health)
	res := run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v2"}, Baseline: baseline})
	wantOutcome(t, res, Fail, "unhealthy = 1 ("+a.URL()+" (", "connection refused", "on v2 when it last answered, upgraded in place from v1",
		"regressed = 1 (healthy before the deploy, unhealthy now: "+a.URL())
	if res.Vars["old_version_unhealthy"] != 0 || res.Halt != "" {
		t.Fatalf("old_version_unhealthy = %v, halt %q: a ran v2 when it failed", res.Vars["old_version_unhealthy"], res.Halt)
	}
	if v := res.Vars["versions"].(map[string]map[string]int); v["v2"]["unhealthy"] != 1 {
		t.Fatalf("versions = %v, want a counted as an unhealthy v2", v)
	}
	if dies.count() < 2 {
		t.Fatalf("a answered %d requests on v2; the test needs it to answer before it crashes", dies.count())
	}
}

// TestFleetOldPeersRestartedBySupervisor is seed 004 where a supervisor (systemd,
// Kubernetes) starts each crashed old-version peer again: version B made the A peers
// crash, and each was back on A a moment later. Asked again while they may be restarting
// for the rollout, they answered healthy on A, and the run passed: the halt never fired.
// An instance that comes back on the version it ran before, not the deploy's, was not
// upgraded: it went down on its own, and is judged as failing.
func TestFleetOldPeersRestartedBySupervisor(t *testing.T) {
	up := func(*fleetNode) (int, string) { return http.StatusOK, "" }
	b, a1, a2 := newFleetNode(t, "A", up).pin(), newFleetNode(t, "A", up).pin(), newFleetNode(t, "A", up).pin()
	c := buildOne(t, staticFleetYAML(`["regressed == 0", "old_version_unhealthy == 0"]`, b, a1, a2))
	baseline := c.Baseline(baselineRuns(t, c, 2), 5)

	// b is upgraded in place to B; once it runs, the A peers segfault and their
	// supervisor starts them again, on A.
	b.setVersion("B")
	restartInPlace(t, a1, "A", up)
	restartInPlace(t, a2, "A", up)
	res := run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "gunk", Version: "B"}, Baseline: baseline})
	wantOutcome(t, res, Fail, "old_version_unhealthy = 2 ", "then back on A after ", "not upgraded: it went down during the deploy")
	for _, n := range []*fleetNode{a1, a2} {
		if !strings.Contains(res.Halt, n.URL()) {
			t.Fatalf("halt reason does not name %s: %q", n.URL(), res.Halt)
		}
	}
	if strings.Contains(res.Halt, b.URL()) {
		t.Fatalf("halt names the instance that runs B: %q", res.Halt)
	}
	if !strings.Contains(strings.Join(res.Transcript, "\n"), a1.URL()+": answers again on A, the version it ran before the deploy of B") {
		t.Fatalf("transcript does not say a1 restarted without an upgrade:\n%s", strings.Join(res.Transcript, "\n"))
	}
}
