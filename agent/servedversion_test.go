package agent

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// The pipeline registers the deploy before the rollout reaches the pods (or a load
// balancer keeps answering from the old ones). A check that judges whatever answers passes
// the new version on the old one's answers. With served_version, the old version's answers
// are inconclusive: a window that never reached the new version is an inconclusive
// verdict, and one that did judges the new version's answers alone.
func TestDeployJudgesTheServedVersion(t *testing.T) {
	var serving atomic.Value // the version the pods run
	serving.Store("v1")
	var broken atomic.Bool
	// rollingOut answers as v1 this many more times, then the rollout lands (v2)
	var rollingOut atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rollingOut.Load() > 0 && rollingOut.Add(-1) == 0 {
			defer serving.Store("v2")
		}
		v := serving.Load().(string)
		w.Header().Set("X-App-Version", v)
		if v != "v1" && broken.Load() {
			http.Error(w, "the new version is broken", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - {name: any-answer, kind: http, every: 1h, retries: 0, request: {url: %[1]q}}
  - {name: new-version, kind: http, every: 1h, retries: 0, request: {url: %[1]q}, served_version: {header: X-App-Version}}
services:
  unversioned: {checks: [any-answer], verify: {interval: 200ms, count: 3, visitors: 1}}
  versioned: {checks: [new-version], verify: {interval: 200ms, count: 3, visitors: 1}}
`, srv.URL+"/"))

	// the rollout never reached the pods in the window
	broken.Store(true)
	if d := h.verdict(h.deploy("unversioned", "v2"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("any answer: %v %v; want passed on the old pods (the false pass served_version is for)", d["status"], d["reason"])
	}
	d := h.verdict(h.deploy("versioned", "v2"), 30*time.Second)
	if d["status"] != store.StatusInconclusive || !strings.Contains(fmt.Sprint(d["reason"]), "answered by version v1, not v2") {
		t.Fatalf("served_version, v2 never served: %v %v; want inconclusive, answered by v1", d["status"], d["reason"])
	}

	// the rollout reaches the pods during the window: the new version's answers decide
	rollingOut.Store(1)
	id := h.deploy("versioned", "v2")
	d = h.verdict(id, 30*time.Second)
	if d["status"] != store.StatusFailed || !strings.Contains(fmt.Sprint(d["reason"]), "status = 500") {
		t.Fatalf("v2 broken once served: %v %v; want failed on its 500", d["status"], d["reason"])
	}
	if c := checkOf(t, d, "new-version"); c["inconclusive"].(float64) != 1 {
		t.Errorf("runs %v; want the first, answered by v1, inconclusive", c)
	}
	broken.Store(false)
	serving.Store("v3")
	if d := h.verdict(h.deploy("versioned", "v3"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("v3 serving and well: %v %v; want passed", d["status"], d["reason"])
	}
}

// Seed 002 deployed through a rolling update, with a real agent: the new version takes a
// minute to show a write, the old pods show it at once. Registered before the rollout
// reached the pods, the verification is inconclusive, not passed; in the middle of it,
// with old and new pods answering the reads in turn, the new version's lag fails the
// deploy, where a check that read whatever answered passes it on the old pods' answers.
func TestDeployJudgesTheNewVersionsPropagation(t *testing.T) {
	var writer atomic.Value // the version that takes the writes
	writer.Store("v1")
	var newReads atomic.Bool // the rollout reached the readers: every other read is v2's
	var reads atomic.Int64
	var mu sync.Mutex
	items := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			items[string(body)] = true
			mu.Unlock()
			w.Header().Set("X-App-Version", writer.Load().(string))
			w.WriteHeader(http.StatusCreated)
			return
		}
		if newReads.Load() && reads.Add(1)%2 == 0 {
			w.Header().Set("X-App-Version", "v2")
			fmt.Fprint(w, "[]") // the new version: nothing shows within the minute
			return
		}
		w.Header().Set("X-App-Version", "v1")
		mu.Lock()
		defer mu.Unlock()
		for it := range items {
			fmt.Fprintln(w, it)
		}
	}))
	t.Cleanup(srv.Close)
	prop := func(name, served string) string {
		return fmt.Sprintf(`  - {name: %s, kind: propagation, every: 1h, retries: 0, timeout: 1s, poll: 50ms, %s
     write: {url: %q, body: "{{ .Nonce }}"}, read: [%q]}
`, name, served, srv.URL+"/items", srv.URL+"/items")
	}
	// any-answer takes the first read that shows the marker (confirm: 1): with the default
	// 3 reads in a row, the new pods' reads in between would fail it too (checks'
	// TestPropagationServedVersion).
	h := startAgent(t, "", "checks:\n"+prop("any-answer", "confirm: 1,")+prop("new-version", "served_version: {header: X-App-Version},")+`
services:
  unversioned: {checks: [any-answer], verify: {interval: 200ms, count: 3}}
  versioned: {checks: [new-version], verify: {interval: 200ms, count: 3}}
`)

	// the rollout has not reached the pods: the old version takes the write
	d := h.verdict(h.deploy("versioned", "v2"), 30*time.Second)
	if d["status"] != store.StatusInconclusive || !strings.Contains(fmt.Sprint(d["reason"]), "the write: answered by version v1, not v2") {
		t.Fatalf("the old version took the writes: %v %v; want inconclusive", d["status"], d["reason"])
	}

	// half-way: the new writer, old and new pods answering the reads in turn
	writer.Store("v2")
	newReads.Store(true)
	if d := h.verdict(h.deploy("unversioned", "v2"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("any answer, half-way: %v %v; want passed on the old pods' reads (the false pass served_version is for)", d["status"], d["reason"])
	}
	d = h.verdict(h.deploy("versioned", "v2"), 30*time.Second)
	if d["status"] != store.StatusFailed || !strings.Contains(fmt.Sprint(d["reason"]), "1 of 1 readers never showed the marker") {
		t.Fatalf("served_version, half-way: %v %v; want failed on the new version's lag", d["status"], d["reason"])
	}
}

// A pipeline registers its deploys from the git tag (v1.4.0) of a binary that says
// 1.4.0+g3f2a1c. The service is well and serves the new build from the first request; a
// real agent's verification passes it. Before, every answer was "another version": the
// check under ready_within failed the deploy as not ready, the propagation check's verdict
// was inconclusive. A tag the service does not run (v1.4.1) is still another version.
func TestDeployVersionWrittenApart(t *testing.T) {
	var mu sync.Mutex
	items := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App-Version", "1.4.0+g3f2a1c")
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			items[string(body)] = true
			w.WriteHeader(http.StatusCreated)
			return
		}
		for it := range items {
			fmt.Fprintln(w, it)
		}
	}))
	t.Cleanup(srv.Close)
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - {name: home, kind: http, every: 1h, retries: 0, request: {url: %[1]q}, served_version: {header: X-App-Version}}
  - {name: feed, kind: propagation, every: 1h, retries: 0, timeout: 1s, poll: 50ms, served_version: {header: X-App-Version},
     write: {url: %[1]q, body: "{{ .Nonce }}"}, read: [%[1]q]}
services:
  web: {checks: [home], verify: {interval: 200ms, count: 3, ready_within: 400ms, visitors: 1}}
  feed: {checks: [feed], verify: {interval: 200ms, count: 3}}
`, srv.URL+"/items"))

	d := h.verdict(h.deploy("web", "v1.4.0"), 30*time.Second)
	if d["status"] != store.StatusPassed {
		t.Fatalf("web v1.4.0, served as 1.4.0+g3f2a1c: %v %q; want passed", d["status"], d["reason"])
	}
	if ready, ok := d["ready_ms"].(float64); !ok || ready >= 400 {
		t.Errorf("ready_ms %v; want the first round's, under ready_within", d["ready_ms"])
	}
	if d := h.verdict(h.deploy("feed", "v1.4.0"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("feed v1.4.0, served as 1.4.0+g3f2a1c: %v %q; want passed", d["status"], d["reason"])
	}
	d = h.verdict(h.deploy("feed", "v1.4.1"), 30*time.Second)
	if d["status"] != store.StatusInconclusive || !strings.Contains(fmt.Sprint(d["reason"]), "answered by version 1.4.0+g3f2a1c, not v1.4.1") {
		t.Fatalf("feed v1.4.1, not served yet: %v %q; want inconclusive", d["status"], d["reason"])
	}
	d = h.verdict(h.deploy("web", "v1.4.1"), 30*time.Second)
	if d["status"] != store.StatusFailed || !strings.Contains(fmt.Sprint(d["reason"]), "home: not ready 400ms after the deploy") {
		t.Fatalf("web v1.4.1, not served yet: %v %q; want failed, not ready", d["status"], d["reason"])
	}
}
