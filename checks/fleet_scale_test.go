package checks

import (
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
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

// lateNode is an instance the registry lists before its process listens: connections to
// it are refused until start is called, and then it answers as a fleetNode on version.
func lateNode(t *testing.T, version string, health func(*fleetNode) (int, string)) (n *fleetNode, start func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	n = &fleetNode{version: version, health: health}
	n.srv = httptest.NewUnstartedServer(n)
	n.url = "http://" + addr
	var once sync.Once
	start = func() {
		once.Do(func() {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				t.Errorf("the late instance cannot listen on %s again: %v", addr, err)
				return
			}
			n.srv.Listener.Close()
			n.srv.Listener = l
			n.srv.Start()
		})
	}
	t.Cleanup(func() { once.Do(func() {}); n.srv.Close() })
	return n, start
}

// countingHealth answers as the k-th /healthz request says: the counter counts every
// request to the node, so a test can tell how often it was asked.
type countingHealth struct {
	mu    sync.Mutex
	asked int
	at    func(k int) (int, string)
}

func (c *countingHealth) health(*fleetNode) (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked++
	return c.at(c.asked)
}

func (c *countingHealth) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.asked
}

// TestFleetScaleUpStartingInstances: in a rolling update the new instances are listed
// before they are ready (a registry that lists every instance, or a pod listed while it
// starts). One refuses connections until its process listens, one answers 503 while it
// warms up. Both are new to the baseline, so the run asks them again within its own
// deadline, and they pass once ready. Before, both were unhealthy at the first answer and
// an ordinary rollout failed unhealthy == 0.
func TestFleetScaleUpStartingInstances(t *testing.T) {
	up := func(*fleetNode) (int, string) { return http.StatusOK, "" }
	reg := &fleetRegistry{}
	a, b := newFleetNode(t, "v1", up), newFleetNode(t, "v1", up)
	reg.add(a, b)
	c := buildOne(t, fleetYAML(serve(t, reg).URL, `["unhealthy == 0", "regressed == 0", "old_version_unhealthy == 0"]`))
	baseline := c.Baseline(baselineRuns(t, c, 2), 5)

	late, start := lateNode(t, "v2", up)
	warm := &countingHealth{at: func(k int) (int, string) {
		if k <= 4 { // its /healthz and /version, twice
			return http.StatusServiceUnavailable, "warming up"
		}
		return http.StatusOK, ""
	}}
	warming := newFleetNode(t, "v2", warm.health)
	reg.add(late, warming)
	timer := time.AfterFunc(300*time.Millisecond, start)
	defer timer.Stop()

	res := run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v2"}, Baseline: baseline})
	wantOutcome(t, res, Pass)
	if res.Halt != "" {
		t.Fatalf("halted on a scale-up: %q", res.Halt)
	}
	wantInstances(t, res, "new_instances", urls(late, warming))
	if res.Vars["healthy"] != 4 {
		t.Fatalf("healthy = %v, want 4", res.Vars["healthy"])
	}
	log := strings.Join(res.Transcript, "\n")
	for _, want := range []string{warming.URL() + ": new, not seen before the deploy", warming.URL() + ": healthy after "} {
		if !strings.Contains(log, want) {
			t.Fatalf("transcript lacks %q:\n%s", want, log)
		}
	}
}

// TestFleetScaleUpCrashLoop: a new version that never becomes healthy is still judged: a
// new instance in a crash loop (up, then gone, again and again) and one that never
// listens are unhealthy once the run has asked them again until its deadline was near,
// and the transcript says how long it waited.
func TestFleetScaleUpCrashLoop(t *testing.T) {
	up := func(*fleetNode) (int, string) { return http.StatusOK, "" }
	reg := &fleetRegistry{}
	a := newFleetNode(t, "v1", up)
	reg.add(a)
	c := buildOne(t, fleetYAML(serve(t, reg).URL, `["unhealthy == 0"]`))
	baseline := c.Baseline(baselineRuns(t, c, 1), 5)

	loop := &countingHealth{at: func(k int) (int, string) {
		if k%3 == 0 {
			return http.StatusServiceUnavailable, "starting"
		}
		return 0, "" // crashed
	}}
	looping := newFleetNode(t, "v2", loop.health)
	never, _ := lateNode(t, "v2", up)
	reg.add(looping, never)

	res := run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v2"}, Baseline: baseline})
	wantOutcome(t, res, Fail, "unhealthy == 0 is false: unhealthy = 2 (", looping.URL(), never.URL(), "of asking again)")
	wantInstances(t, res, "unhealthy_instances", urls(looping, never))
	if loop.count() < 4 {
		t.Fatalf("the crash-looping instance was asked %d times; it is asked again before it is judged", loop.count())
	}
	log := strings.Join(res.Transcript, "\n")
	for _, want := range []string{looping.URL() + ": still unhealthy after ", never.URL() + ": still unhealthy after "} {
		if !strings.Contains(log, want) {
			t.Fatalf("transcript lacks %q:\n%s", want, log)
		}
	}
	if res.Duration > 30*time.Second {
		t.Fatalf("took %s; the check's timeout is 5s", res.Duration)
	}
}

// TestFleetRolloutBegunBeforeTheDeploy: a pipeline that registers its deploy after it
// started the rollout has a scheduled run in between that saw a new instance starting, so
// the baseline holds it as unhealthy. In the deploy's run it is still warming up at the
// first answer. It was not asked again (it was "failing before the deploy"), and the
// deploy failed unhealthy == 0 on an instance that was healthy a moment later.
func TestFleetRolloutBegunBeforeTheDeploy(t *testing.T) {
	up := func(*fleetNode) (int, string) { return http.StatusOK, "" }
	reg := &fleetRegistry{}
	reg.add(newFleetNode(t, "v1", up))
	c := buildOne(t, fleetYAML(serve(t, reg).URL, `["unhealthy == 0", "regressed == 0"]`))
	warm := &countingHealth{at: func(k int) (int, string) {
		if k <= 4 { // the scheduled run before the deploy, and the deploy's first answer
			return http.StatusServiceUnavailable, "warming up"
		}
		return http.StatusOK, ""
	}}
	starting := newFleetNode(t, "v2", warm.health)
	reg.add(starting)
	baseline := c.Baseline(baselineRuns(t, c, 1), 5)
	if h := baseline["instances"].(map[string]map[string]any)[starting.URL()]["healthy"]; h != false {
		t.Fatalf("the baseline says the starting instance's health is %v", h)
	}

	res := run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v2"}, Baseline: baseline})
	wantOutcome(t, res, Pass)
	if log := strings.Join(res.Transcript, "\n"); !strings.Contains(log, starting.URL()+": healthy after ") {
		t.Fatalf("transcript does not say the instance was waited for:\n%s", log)
	}
}
