package checks

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// An answer names the version that gave it. In a deploy's verification, one from another
// version is inconclusive (the old version still serving says nothing of the new one); one
// from the deploy's version, or one that names none (a load balancer's 502), is judged.
func TestServedVersion(t *testing.T) {
	var mu sync.Mutex
	version, status, body := "", 200, "ok"
	answer := func(v string, st int, b string) {
		mu.Lock()
		defer mu.Unlock()
		version, status, body = v, st, b
	}
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if version != "" {
			w.Header().Set("X-App-Version", version)
		}
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	check := func(served string) *Check {
		return buildOne(t, fmt.Sprintf(`
checks:
  - name: home
    kind: http
    request: {url: %q}
    served_version: %s
`, srv.URL+"/", served))
	}
	byHeader := check("{header: X-App-Version}")
	inDeploy := Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v2"}}

	answer("v1", 200, "ok")
	wantOutcome(t, run(t, byHeader, Input{}), Pass)
	res := run(t, byHeader, inDeploy)
	wantOutcome(t, res, Inconclusive, "answered by version v1, not v2 (the deploy's): the new version does not serve this yet")
	wantNotServed(t, res, true)
	if !strings.Contains(strings.Join(res.Transcript, "\n"), "served version: v1 (header X-App-Version)") {
		t.Errorf("transcript:\n%s", strings.Join(res.Transcript, "\n"))
	}
	answer("v1", 500, "old pod draining")
	wantOutcome(t, run(t, byHeader, inDeploy), Inconclusive, "answered by version v1")

	answer("v2", 500, "boom")
	wantOutcome(t, run(t, byHeader, inDeploy), Fail, "status = 500")
	answer("", 502, "bad gateway") // the load balancer's own page: what visitors get
	res = run(t, byHeader, inDeploy)
	wantOutcome(t, res, Fail, "status = 502")
	if !strings.Contains(strings.Join(res.Transcript, "\n"), "the answer names none (header X-App-Version): judged as it is") {
		t.Errorf("transcript:\n%s", strings.Join(res.Transcript, "\n"))
	}
	answer(" v2 ", 200, "ok")
	wantOutcome(t, run(t, byHeader, inDeploy), Pass)

	byField := check("{field: build.version}")
	answer("", 200, `{"build": {"version": "v1"}}`)
	wantOutcome(t, run(t, byField, inDeploy), Inconclusive, "answered by version v1, not v2")
	answer("", 200, `{"build": {"version": "v2"}}`)
	wantOutcome(t, run(t, byField, inDeploy), Pass)
	answer("", 200, `{"build": {"version": {"major": 1}}}`) // not a version: judged
	wantOutcome(t, run(t, byField, inDeploy), Pass)

	// a hostile answer: a version of 50,000 bytes with line breaks, shown clipped on one line
	// (the breaks escaped)
	answer("", 200, fmt.Sprintf(`{"build": {"version": %q}}`, strings.Repeat("v1\n", 50000/3)))
	res = run(t, byField, inDeploy)
	wantOutcome(t, res, Inconclusive, `answered by version v1\nv1\nv1`, "bytes), not v2")
	if len(res.Reasons[0]) > 300 || strings.Contains(res.Reasons[0], "\n") {
		t.Errorf("reason of %d bytes: %q", len(res.Reasons[0]), res.Reasons[0])
	}

	wantBuildError(t, fmt.Sprintf("checks: [{name: a, kind: http, request: {url: %q}, served_version: {}}]", srv.URL), "checks[0].served_version: neither header nor field is set")
}

// A journey's steps: one answered by another version makes the run inconclusive, before
// its assertions judge it.
func TestScriptServedVersion(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := map[string]string{"/login": "v2", "/cart": "v1"}[r.URL.Path] // the cart's pods not rolled out yet
		w.Header().Set("X-App-Version", v)
		w.WriteHeader(http.StatusInternalServerError) // the old cart pods fail while they drain
		fmt.Fprint(w, "{}")
	}))
	c := buildOne(t, fmt.Sprintf(`
checks:
  - name: journey
    kind: script
    served_version: {header: X-App-Version}
    steps:
      - {name: login, request: {url: %q}, assert: ["status == 500"]}
      - {name: cart, request: {url: %q}, assert: ["status == 200"]}
`, srv.URL+"/login", srv.URL+"/cart"))
	wantOutcome(t, run(t, c, Input{Deploy: &Deploy{ID: "d1", Version: "v2"}}), Inconclusive,
		"step 2 (cart): answered by version v1, not v2 (the deploy's)")
	wantOutcome(t, run(t, c, Input{}), Fail, "step 2 (cart)", "status = 500")
	wantBuildError(t, fmt.Sprintf("checks: [{name: a, kind: script, served_version: {header: a, field: b}, steps: [{request: {url: %q}}]}]", srv.URL),
		"checks[0].served_version: both header and field are set")
}

// An sla burst during a rollout: the old pods' answers are left out of the figures, so the
// new version's error rate is its own; a burst the old version answered alone is
// inconclusive.
func TestSLAServedVersion(t *testing.T) {
	var mu sync.Mutex
	n, allOld := 0, false
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		newPod := n%3 == 0 && !allOld
		mu.Unlock()
		if newPod { // one pod in three runs the new version, and it fails
			w.Header().Set("X-App-Version", "v2")
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		w.Header().Set("X-App-Version", "v1")
		fmt.Fprint(w, "ok")
	}))
	c := buildOne(t, fmt.Sprintf(`
checks:
  - name: burst
    kind: sla
    request: {url: %q}
    requests: 30
    concurrency: 3
    served_version: {header: X-App-Version}
    assert: ["error_rate < 0.5"]
`, srv.URL+"/"))
	inDeploy := Input{Deploy: &Deploy{ID: "d1", Version: "v2"}}
	res := run(t, c, inDeploy)
	wantOutcome(t, res, Fail, "error_rate = 1 (10 of 10 failed")
	if res.Vars["requests"] != 10 {
		t.Errorf("requests = %v, want the new version's 10", res.Vars["requests"])
	}
	if tr := strings.Join(res.Transcript, "\n"); !strings.Contains(tr, "10 requests, concurrency 3; 20 answers from another version than v2 (such as v1) left out") {
		t.Errorf("transcript:\n%s", tr)
	}
	wantOutcome(t, run(t, c, Input{}), Pass) // outside a deploy: every answer, a third failing
	mu.Lock()
	allOld = true
	mu.Unlock()
	res = run(t, c, inDeploy)
	wantOutcome(t, res, Inconclusive, "all 30 answers came from another version than v2 (the deploy's), such as v1")
	wantNotServed(t, res, true)
}

// versioned answers with h and names version v; rolling answers from old and new in
// turn, as a load balancer in the middle of a rollout does (old first).
func versioned(v string, h http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if v != "" {
			w.Header().Set("X-App-Version", v)
		}
		h.ServeHTTP(w, r)
	}
}

func rolling(old, new http.Handler) http.HandlerFunc {
	var mu sync.Mutex
	n := 0
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		h := old
		if n%2 == 0 {
			h = new
		}
		mu.Unlock()
		h.ServeHTTP(w, r)
	}
}

// Seed 002 in the middle of its rollout: the old pods show a new item at once, the new
// version only after its lag. A propagation check that read whatever answered would
// measure the old pods; with served_version, in a deploy, their answers are left out and
// the new version's lag is what is measured; a reader only the old version answered, or a
// write the old version took, makes the run inconclusive.
func TestPropagationServedVersion(t *testing.T) {
	const lag = 600 * time.Millisecond
	f := newFeed()
	writeV1 := serve(t, versioned("v1", f.writer(http.StatusCreated)))
	writeV2 := serve(t, versioned("v2", f.writer(http.StatusCreated)))
	newNow := serve(t, versioned("v2", f.replica(0)))
	rollingOut := serve(t, rolling(versioned("v1", f.replica(0)), versioned("v2", f.replica(lag))))
	oldOnly := serve(t, versioned("v1", f.replica(0)))
	newStale := serve(t, versioned("v2", f.replica(time.Minute)))
	unnamed := serve(t, versioned("", f.replica(0))) // a cache in front: names no version
	check := func(write, a, b, timeout, served string) *Check {
		yaml := strings.Replace(propagationYAML(write, a, b, "    poll: 20ms\n    backoff: {factor: 1, max: 20ms}\n"+served),
			"timeout: 10s", "timeout: "+timeout, 1)
		return buildOne(t, yaml)
	}
	const byHeader = "    served_version: {header: X-App-Version}\n"
	inDeploy := Input{Deploy: &Deploy{ID: "d1", Service: "feed", Version: "v2"}}
	transcript := func(res *Result) string { return strings.Join(res.Transcript, "\n") }
	msOf := func(res *Result, reader string) time.Duration {
		return time.Duration(res.Vars["readers"].(map[string]float64)[reader] * float64(time.Millisecond))
	}

	t.Run("rolling out", func(t *testing.T) {
		res := run(t, check(writeV2.URL, newNow.URL, rollingOut.URL, "10s", byHeader), inDeploy)
		wantOutcome(t, res, Pass)
		if got := msOf(res, "b"); got < lag-150*time.Millisecond {
			t.Errorf("reader b measured %s: the old pods' answer, not the new version's lag of %s", got, lag)
		}
		if tr := transcript(res); !strings.Contains(tr, "answered by version v2; ") || !strings.Contains(tr, "answers from another version (such as v1) left out") {
			t.Errorf("transcript:\n%s", tr)
		}
		// the false measurement served_version is for: the old pods' first answer shows it
		// (confirm: 1; with the default 3, the new pods' reads in between without the
		// marker start the count over, and their lag is measured too)
		res = run(t, check(writeV2.URL, newNow.URL, rollingOut.URL, "10s", "    confirm: 1\n"), inDeploy)
		wantOutcome(t, res, Pass)
		if got := msOf(res, "b"); got >= lag-150*time.Millisecond {
			t.Errorf("without served_version reader b measured %s; want the old pods' answer, well under %s", got, lag)
		}
		res = run(t, check(writeV2.URL, newNow.URL, rollingOut.URL, "10s", ""), inDeploy)
		wantOutcome(t, res, Pass)
		if got := msOf(res, "b"); got < lag/2 { // the first of 3 reads that showed it, one of them the new pod's
			t.Errorf("without served_version, confirm 3, reader b measured %s; the new pods are %s behind", got, lag)
		}
	})
	t.Run("reader answered by the old version only", func(t *testing.T) {
		res := run(t, check(writeV2.URL, newNow.URL, oldOnly.URL, "700ms", byHeader), inDeploy)
		wantOutcome(t, res, Inconclusive, "1 of 2 readers were answered only by another version than v2 (the deploy's) in",
			"so the new version's propagation could not be measured: b (", "answers, such as version v1)")
		wantNotServed(t, res, true)
		// outside a deploy every answer is judged, and its version shown
		res = run(t, check(writeV2.URL, newNow.URL, oldOnly.URL, "700ms", byHeader), Input{})
		wantOutcome(t, res, Pass)
		if tr := transcript(res); !strings.Contains(tr, "reader b showed the marker on the first read") || !strings.Contains(tr, "answered by version v1") {
			t.Errorf("transcript:\n%s", tr)
		}
	})
	t.Run("write taken by the old version", func(t *testing.T) {
		before := len(f.deletions())
		res := run(t, check(writeV1.URL, newNow.URL, newNow.URL+"/", "10s", byHeader), inDeploy)
		wantOutcome(t, res, Inconclusive, "the write: answered by version v1, not v2 (the deploy's): the new version does not serve this yet")
		wantNotServed(t, res, true)
		if len(f.deletions()) != before+1 {
			t.Errorf("the marker written by the old version was not cleaned up: %q", f.deletions())
		}
	})
	t.Run("the new version stale, the other reader old only", func(t *testing.T) {
		res := run(t, check(writeV2.URL, oldOnly.URL, newStale.URL, "700ms", byHeader), inDeploy)
		wantOutcome(t, res, Fail, "1 of 2 readers never showed the marker within", ": b")
		if tr := transcript(res); !strings.Contains(tr, "reader a was answered only by another version than the deploy's") {
			t.Errorf("transcript:\n%s", tr)
		}
	})
	t.Run("an answer naming no version is judged", func(t *testing.T) {
		res := run(t, check(writeV2.URL, newNow.URL, unnamed.URL, "10s", byHeader), inDeploy)
		wantOutcome(t, res, Pass)
	})
	wantBuildError(t, propagationYAML(writeV2.URL, newNow.URL, unnamed.URL, "    served_version: {}"),
		"checks[0].served_version: neither header nor field is set")
}
