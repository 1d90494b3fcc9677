package checks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fleetNode is one instance of a fleet on loopback: it answers /healthz and /version, and
// its health is whatever the test's model of the incident says it is at that moment.
type fleetNode struct {
	srv *httptest.Server
	url string // set when the node is listed before it listens (lateNode)

	mu      sync.Mutex
	version string
	health  func(n *fleetNode) (status int, why string) // 0: crash (drop the connection)
}

func newFleetNode(t *testing.T, version string, health func(n *fleetNode) (int, string)) *fleetNode {
	n := &fleetNode{version: version, health: health}
	n.srv = serve(t, n)
	return n
}

func (n *fleetNode) URL() string {
	if n.url != "" {
		return n.url
	}
	return n.srv.URL
}

func (n *fleetNode) Version() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.version
}

func (n *fleetNode) setVersion(v string) {
	n.mu.Lock()
	n.version = v
	n.mu.Unlock()
}

func (n *fleetNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, why := n.health(n)
	if status == 0 {
		// A crashed process: the connection drops without an answer, on every path,
		// so it cannot report its version either.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	switch r.URL.Path {
	case "/version":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"version":%q}`, n.Version())
	case "/healthz":
		if status != http.StatusOK {
			http.Error(w, why, status)
			return
		}
		fmt.Fprintln(w, "ok")
	default:
		http.NotFound(w, r)
	}
}

// fleetRegistry is the discovery endpoint: {"instances":[{"name":..., "url":...}]}, listing
// whatever nodes are registered when it is asked.
type fleetRegistry struct {
	mu    sync.Mutex
	nodes []*fleetNode
	asked int
}

func (f *fleetRegistry) add(n ...*fleetNode) {
	f.mu.Lock()
	f.nodes = append(f.nodes, n...)
	f.mu.Unlock()
}

func (f *fleetRegistry) list() []*fleetNode {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fleetNode(nil), f.nodes...)
}

func (f *fleetRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	type inst struct {
		Name string `json:"name"`
		URL  string `json:"url"`
	}
	var out struct {
		Instances []inst `json:"instances"`
	}
	f.mu.Lock()
	f.asked++
	for i, n := range f.nodes {
		out.Instances = append(out.Instances, inst{Name: fmt.Sprintf("node-%d", i), URL: n.URL()})
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func fleetYAML(discovery, assert string) string {
	return fmt.Sprintf(`
checks:
  - name: fleet
    kind: fleet
    timeout: 5s
    targets: {url: "%s/api/instances", path: "instances.#.url"}
    health: {path: /healthz, timeout: 1s}
    version: {path: /version, field: version}
    assert: %s
`, discovery, assert)
}

// baselineRuns runs c n times as the scheduler would before a deploy and returns the
// results newest first, as the store hands them to Check.Baseline.
func baselineRuns(t *testing.T, c *Check, n int) []*Result {
	t.Helper()
	var out []*Result
	for range n {
		out = append([]*Result{run(t, c, Input{})}, out...)
	}
	return out
}

func urls(nodes ...*fleetNode) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.URL()
	}
	return out
}

func wantInstances(t *testing.T, res *Result, variable string, want []string) {
	t.Helper()
	got := slices.Clone(res.Vars[variable].([]string))
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %v, want %v", variable, got, want)
	}
}

// TestFleetSeed000: AMP 2.3.4.2 moved host networking to a per-instance field that
// defaulted to false. Instances created before the upgrade get the wrong value and no
// longer start; instances created on 2.3.4.2 are fine. The fleet check, with each
// instance's health from before the deploy, names the instances that regressed although
// the new ones pass. 2.3.4.3 repairs existing instances and passes.
func TestFleetSeed000(t *testing.T) {
	type amp struct{ hostNetwork bool }
	settings := map[*fleetNode]*amp{}
	var mu sync.Mutex
	health := func(n *fleetNode) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if n.version >= "2.3.4.2" && !settings[n].hostNetwork {
			return http.StatusServiceUnavailable, "instance failed to start: docker network mode bridge, ports unreachable"
		}
		return http.StatusOK, ""
	}
	create := func(version string) *fleetNode {
		n := newFleetNode(t, version, health)
		mu.Lock()
		settings[n] = &amp{hostNetwork: true} // ADS's default for new instances: host mode on
		mu.Unlock()
		return n
	}
	upgrade := func(to string, nodes ...*fleetNode) {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range nodes {
			prev := n.version
			n.version = to
			switch {
			case to == "2.3.4.2" && prev < "2.3.4.2":
				settings[n].hostNetwork = false // the new field, defaulted wrong for existing instances
			case to == "2.3.4.3":
				settings[n].hostNetwork = true // the fix repairs existing instances
			}
		}
	}

	reg := &fleetRegistry{}
	old := []*fleetNode{create("2.3.4.1"), create("2.3.4.1"), create("2.3.4.1")}
	reg.add(old...)
	c := buildOne(t, fleetYAML(serve(t, reg).URL, `["unhealthy == 0", "regressed == 0"]`))

	before := baselineRuns(t, c, 3)
	for _, r := range before {
		wantOutcome(t, r, Pass)
	}
	baseline := c.Baseline(before, 5)
	inst := baseline["instances"].(map[string]map[string]any)
	if len(inst) != 3 {
		t.Fatalf("baseline instances = %v", inst)
	}
	for _, u := range urls(old...) {
		if inst[u]["healthy"] != true || inst[u]["version"] != "2.3.4.1" {
			t.Fatalf("baseline of %s = %v, want healthy on 2.3.4.1", u, inst[u])
		}
	}

	// The bad release: existing instances upgraded, two instances created on it.
	upgrade("2.3.4.2", old...)
	fresh := []*fleetNode{create("2.3.4.2"), create("2.3.4.2")}
	reg.add(fresh...)
	deploy := &Deploy{ID: "d1", Service: "amp", Version: "2.3.4.2", StartedAt: time.Now()}
	bad := run(t, c, Input{Deploy: deploy, Baseline: baseline})
	wantOutcome(t, bad, Fail, "regressed == 0 is false: regressed = 3 (healthy before the deploy, unhealthy now: ")
	for _, u := range urls(old...) {
		if !strings.Contains(strings.Join(bad.Reasons, "\n"), u) {
			t.Fatalf("reasons do not name %s: %q", u, bad.Reasons)
		}
	}
	wantInstances(t, bad, "regressed_instances", urls(old...))
	wantInstances(t, bad, "new_instances", urls(fresh...))
	if bad.Vars["total"] != 5 || bad.Vars["healthy"] != 2 || bad.Vars["new"] != 2 {
		t.Fatalf("total %v healthy %v new %v, want 5, 2, 2", bad.Vars["total"], bad.Vars["healthy"], bad.Vars["new"])
	}
	v := bad.Vars["versions"].(map[string]map[string]int)
	if v["2.3.4.2"]["healthy"] != 2 || v["2.3.4.2"]["unhealthy"] != 3 {
		t.Fatalf("versions = %v, want 2.3.4.2: 2 healthy, 3 unhealthy", v)
	}
	// Every instance runs the deploy's version: this is a regression to roll back, not a
	// mixed-version fight to halt.
	if bad.Vars["old_version_unhealthy"] != 0 || bad.Halt != "" {
		t.Fatalf("old_version_unhealthy = %v, halt %q; all instances run the new version", bad.Vars["old_version_unhealthy"], bad.Halt)
	}

	// The tests that passed the release: new instances alone are healthy.
	newOnly := buildOne(t, fmt.Sprintf(`
checks:
  - name: new-instances
    kind: fleet
    targets: {static: [%q, %q]}
    version: {path: /version, field: version}
`, fresh[0].URL(), fresh[1].URL()))
	wantOutcome(t, run(t, newOnly, Input{Deploy: deploy}), Pass)

	// The fix, against the same pre-deploy baseline.
	upgrade("2.3.4.3", append(old, fresh...)...)
	good := run(t, c, Input{Deploy: &Deploy{ID: "d2", Service: "amp", Version: "2.3.4.3"}, Baseline: baseline})
	wantOutcome(t, good, Pass)
	if good.Vars["regressed"] != 0 || good.Vars["healthy"] != 5 {
		t.Fatalf("after the fix regressed %v healthy %v", good.Vars["regressed"], good.Vars["healthy"])
	}
	// Three before the deploy, the bad release (more than once: with instances failing, it
	// is asked again to tell them from instances that left the fleet), the fix.
	if reg.asked < 6 {
		t.Fatalf("discovery asked %d times; it must be asked again on every run", reg.asked)
	}
}

// TestFleetSeed004: version B sends peers something version A cannot handle, and A
// segfaults. In a rolling push, once one B node is up, the A nodes that were healthy
// before it die. old_version_unhealthy names them and the run asks to halt the rollout.
// A node that was already down before the deploy is not blamed on it. Version C, which
// does not kill its peers, passes.
func TestFleetSeed004(t *testing.T) {
	reg := &fleetRegistry{}
	killsA := map[string]bool{"B": true}
	health := func(n *fleetNode) (int, string) {
		if n.Version() == "A" {
			for _, peer := range reg.list() {
				if killsA[peer.Version()] {
					return 0, "" // segfault: drops its clients
				}
			}
		}
		return http.StatusOK, ""
	}
	nodes := []*fleetNode{newFleetNode(t, "A", health), newFleetNode(t, "A", health), newFleetNode(t, "A", health), newFleetNode(t, "A", health)}
	broken := newFleetNode(t, "A", func(*fleetNode) (int, string) { return http.StatusInternalServerError, "disk full" })
	reg.add(append(nodes, broken)...)
	c := buildOne(t, fleetYAML(serve(t, reg).URL, `["regressed == 0", "old_version_unhealthy == 0"]`))

	before := baselineRuns(t, c, 3)
	baseline := c.Baseline(before, 5)
	if h := baseline["instances"].(map[string]map[string]any)[broken.URL()]["healthy"]; h != false {
		t.Fatalf("baseline says the broken node's health is %v", h)
	}

	// The push starts: node 0 runs B.
	nodes[0].setVersion("B")
	res := run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "gunk", Version: "B"}, Baseline: baseline})
	wantOutcome(t, res, Fail, "old_version_unhealthy == 0 is false: old_version_unhealthy = 3 (not on B, healthy before it, failing since it appeared: ")
	wantInstances(t, res, "old_version_unhealthy_instances", urls(nodes[1:]...))
	for _, n := range nodes[1:] {
		if !strings.Contains(res.Halt, n.URL()) {
			t.Fatalf("halt reason does not name %s: %q", n.URL(), res.Halt)
		}
	}
	if !strings.Contains(res.Halt, "3 instances on older versions failed once B appeared (1 instances run it)") {
		t.Fatalf("halt reason: %q", res.Halt)
	}
	// They could not say their version: the reason says it is the one they ran before.
	if !strings.Contains(res.Halt, nodes[1].URL()+" (A before the deploy, no answer since: ") {
		t.Fatalf("halt reason does not say where the version came from: %q", res.Halt)
	}
	if strings.Contains(res.Halt, broken.URL()) {
		t.Fatalf("halt blames the node that was down before the deploy: %q", res.Halt)
	}
	// Crashed nodes cannot say their version; the baseline knows they ran A.
	if v := res.Vars["versions"].(map[string]map[string]int); v["A"]["unhealthy"] != 4 || v["B"]["healthy"] != 1 {
		t.Fatalf("versions = %v, want A: 4 unhealthy (3 crashed, 1 broken before), B: 1 healthy", v)
	}

	// Roll back to A everywhere, then push C, which A tolerates.
	nodes[0].setVersion("A")
	wantOutcome(t, run(t, c, Input{Baseline: baseline}), Pass)
	nodes[0].setVersion("C")
	nodes[1].setVersion("C")
	ok := run(t, c, Input{Deploy: &Deploy{ID: "d2", Service: "gunk", Version: "C"}, Baseline: baseline})
	wantOutcome(t, ok, Pass)
	if ok.Halt != "" || ok.Vars["old_version_unhealthy"] != 0 {
		t.Fatalf("C: halt %q, old_version_unhealthy %v", ok.Halt, ok.Vars["old_version_unhealthy"])
	}
}

// TestFleetBaseline: the baseline is per instance, from the newest runs whatever their
// outcome, and survives a trip through JSON (the store keeps results as JSON).
func TestFleetBaseline(t *testing.T) {
	var mu sync.Mutex
	down := map[string]bool{}
	health := func(n *fleetNode) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if down[n.URL()] {
			return http.StatusServiceUnavailable, "starting"
		}
		return http.StatusOK, ""
	}
	a, b := newFleetNode(t, "v1", health), newFleetNode(t, "v1", health)
	reg := &fleetRegistry{}
	reg.add(a, b)
	c := buildOne(t, fleetYAML(serve(t, reg).URL, `["regressed == 0"]`))

	// Oldest run: both up. Then b goes down: the newest run (a failing one) says so.
	first := run(t, c, Input{})
	mu.Lock()
	down[b.URL()] = true
	mu.Unlock()
	second := run(t, c, Input{})
	wantOutcome(t, second, Pass) // regressed needs a baseline; unhealthy is not asserted here
	previous := []*Result{second, first}

	raw, err := json.Marshal(previous)
	if err != nil {
		t.Fatal(err)
	}
	var stored []*Result
	if err := json.Unmarshal(raw, &stored); err != nil {
		t.Fatal(err)
	}
	for name, prev := range map[string][]*Result{"in memory": previous, "from JSON": stored} {
		base := c.Baseline(prev, 5)
		inst, ok := base["instances"].(map[string]map[string]any)
		if !ok {
			t.Fatalf("%s: baseline instances is %T", name, base["instances"])
		}
		if inst[a.URL()]["healthy"] != true || inst[b.URL()]["healthy"] != false {
			t.Fatalf("%s: baseline %v: want a healthy, b unhealthy (its newest run)", name, inst)
		}
		if base["healthy"] != 1 && base["healthy"] != 2 {
			t.Fatalf("%s: baseline healthy = %v", name, base["healthy"])
		}
		// b was down before the deploy: still down is not a regression; a going down is.
		mu.Lock()
		down[a.URL()] = true
		mu.Unlock()
		res := run(t, c, Input{Deploy: &Deploy{Version: "v2"}, Baseline: base})
		wantOutcome(t, res, Fail, "regressed = 1 (healthy before the deploy, unhealthy now: "+a.URL()+")")
		mu.Lock()
		down[a.URL()] = false
		mu.Unlock()
	}
	// Only the newest n runs count: with n=1, the baseline is the second run alone.
	if got := c.Baseline(previous, 1)["total"]; got != 2 {
		t.Fatalf("total = %v", got)
	}
	if c.Baseline(nil, 5) != nil {
		t.Fatal("no runs, yet a baseline")
	}
	// Runs that measured nothing (errors) give no per-instance baseline.
	if c.Baseline([]*Result{{Outcome: Error, Vars: map[string]any{"duration_ms": 3.0}}}, 5) != nil {
		t.Fatal("a baseline from an errored run")
	}
}

// TestFleetBounded: an instance that never answers is reported unhealthy within
// health.timeout, and does not hold the run; the others are still judged.
func TestFleetBounded(t *testing.T) {
	done := testDone(t)
	hung := serve(t, hang(done))
	ok := newFleetNode(t, "v1", func(*fleetNode) (int, string) { return http.StatusOK, "" })
	c := buildOne(t, fmt.Sprintf(`
checks:
  - name: fleet
    kind: fleet
    timeout: 20s
    targets: {static: [%q, %q]}
    health: {timeout: 300ms}
`, hung.URL, ok.URL()))
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "unhealthy == 0 is false: unhealthy = 1 ("+hung.URL, "timed out")
	if res.Duration > 5*time.Second {
		t.Fatalf("took %s; health.timeout is 300ms", res.Duration)
	}
	if res.Vars["healthy"] != 1 {
		t.Fatalf("healthy = %v", res.Vars["healthy"])
	}

	// The check's own deadline holds even when every instance hangs and the cancel comes
	// from outside.
	all := buildOne(t, fmt.Sprintf(`
checks:
  - name: fleet
    kind: fleet
    timeout: 1s
    targets: {static: [%q]}
    health: {timeout: 500ms}
`, hung.URL))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := all.Run(ctx, Input{})
	if time.Since(start) > 3*time.Second || r.Outcome == Pass {
		t.Fatalf("cancelled run: %s %v after %s", r.Outcome, r.Reasons, time.Since(start))
	}
}

// TestFleetDiscoveryErrors: discovery that cannot be read is an error (nothing measured),
// an empty fleet is inconclusive, and a huge answer is cut, not read into memory.
func TestFleetDiscoveryErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    Outcome
		reason  string
	}{
		{"not json", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>login</html>") }, Error, "the answer is not JSON"},
		{"wrong path", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"nodes":[]}`) }, Error, `path "instances.#.url" finds nothing`},
		{"not urls", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"instances":[{"url":5}]}`) }, Error, "not a URL string"},
		{"relative", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"instances":[{"url":"node-1:8080"}]}`) }, Error, "not an absolute http(s) URL"},
		{"500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "registry down", 500) }, Error, "answered 500: registry down"},
		{"empty", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"instances":[]}`) }, Inconclusive, "no instances"},
		{"huge", hugeBody(`{"instances":[`, 8<<20), Error, "answered more than 4194304 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A request's timeout is health.timeout: 4 s, not the shared 1 s, so that the
			// huge answer is cut by its size, not its time, on a loaded machine under -race.
			yaml := strings.Replace(fleetYAML(serve(t, tc.handler).URL, `["unhealthy == 0"]`), "timeout: 1s}", "timeout: 4s}", 1)
			c := buildOne(t, yaml)
			wantOutcome(t, run(t, c, Input{}), tc.want, tc.reason)
		})
	}
	c := buildOne(t, fleetYAML(closedURL(t), `["unhealthy == 0"]`))
	wantOutcome(t, run(t, c, Input{}), Error, "discovery: ", "connection refused")
}

func TestParseTargets(t *testing.T) {
	got, err := ParseTargets([]byte(`{"zones":[{"nodes":[{"url":"http://a:1"},{"url":"http://b:1"}]},{"nodes":[{"url":"http://a:1"}]}]}`), "zones.#.nodes.#.url")
	if err != nil || !slices.Equal(got, []string{"http://a:1", "http://b:1"}) {
		t.Fatalf("nested: %v %v", got, err)
	}
	if got, err := ParseTargets([]byte(`{"leader":"https://x"}`), "leader"); err != nil || len(got) != 1 {
		t.Fatalf("single: %v %v", got, err)
	}
	// A registry that lists instances that are starting or shutting down, filtered to the
	// ready ones, as the README suggests.
	ready := `{"instances":[{"url":"http://a:1","ready":true},{"url":"http://b:1","ready":false},{"url":"http://c:1","ready":true}]}`
	if got, err := ParseTargets([]byte(ready), "instances.#(ready==true)#.url"); err != nil || !slices.Equal(got, []string{"http://a:1", "http://c:1"}) {
		t.Fatalf("ready ones: %v %v", got, err)
	}
	// A scheme is case-insensitive: one instance, written in lower case.
	if got, err := ParseTargets([]byte(`["HTTP://a:1"," htTp://a:1","http://a:1"]`), "@this"); err != nil || !slices.Equal(got, []string{"http://a:1"}) {
		t.Fatalf("schemes in capitals: %v %v", got, err)
	}
}

// FuzzParseTargets: any discovery answer is either a list of absolute http(s) URLs, at most
// fleetMaxInstances and without duplicates, or an error; never a panic.
func FuzzParseTargets(f *testing.F) {
	f.Add([]byte(`{"instances":[{"url":"http://127.0.0.1:1"},{"url":"http://127.0.0.1:2"}]}`), "instances.#.url")
	f.Add([]byte(`{"a":[[["http://x"]]]}`), "a")
	f.Add([]byte(`["http://a","http://a"]`), "@this")
	f.Add([]byte(`{"a":{"b":"ftp://x"}}`), "a.b")
	f.Fuzz(func(t *testing.T, body []byte, path string) {
		got, err := ParseTargets(body, path)
		if err != nil {
			return
		}
		if len(got) > fleetMaxInstances {
			t.Fatalf("%d targets", len(got))
		}
		seen := map[string]bool{}
		for _, u := range got {
			if seen[u] || !(strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) {
				t.Fatalf("target %q (duplicate %v)", u, seen[u])
			}
			seen[u] = true
		}
	})
}
