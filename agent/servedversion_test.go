package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
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
  unversioned: {checks: [any-answer], verify: {interval: 200ms, count: 3}}
  versioned: {checks: [new-version], verify: {interval: 200ms, count: 3}}
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
