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

// TestAColdStartIsJudgedUnlessInitialDelaySkipsIt holds the rule for new pods whose first
// requests are slow (a JIT, caches filling): every round is judged, the first included,
// so a latency assertion the cold start breaks in round 1 fails the deploy there, as the
// cold start fails the users who reach it then; initial_delay as long as the warm-up skips
// those rounds. The pods here answer in 1.5 s for their first 2 s, at once after: a round
// at once finds them cold (at least 1.5 s, over the 1 s limit), one 3 s after the deploy's
// registration finds them warm. (Pods 3 times slower for their first 2 s failed a good
// deploy the same way with "duration_ms < baseline.duration_ms * 2" and an sla's
// "p95_ms < baseline.p95_ms * 1.5".)
func TestAColdStartIsJudgedUnlessInitialDelaySkipsIt(t *testing.T) {
	var warmAt atomic.Int64 // unix ns when the new pods are warm
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if time.Now().UnixNano() < warmAt.Load() {
			time.Sleep(1500 * time.Millisecond)
		}
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - name: home
    kind: http
    every: 1h
    timeout: 5s
    request: {url: %q}
    assert: ["status == 200", "duration_ms < 1000"]
services:
  web-at-once: {checks: [home], verify: {interval: 100ms, count: 2}}
  web-after-warm-up: {checks: [home], verify: {initial_delay: 3s, interval: 100ms, count: 2}}
`, srv.URL+"/"))

	warmAt.Store(time.Now().Add(2 * time.Second).UnixNano()) // the rollout: new pods, cold
	d := h.verdict(h.deploy("web-at-once", "v2"), time.Minute)
	if d["status"] != store.StatusFailed || !strings.Contains(fmt.Sprint(d["reason"]), "duration_ms < 1000 is false") {
		t.Errorf("round 1 at once, on cold pods: %v %v; want failed on the latency assertion", d["status"], d["reason"])
	}

	warmAt.Store(time.Now().Add(2 * time.Second).UnixNano())
	d = h.verdict(h.deploy("web-after-warm-up", "v2"), time.Minute)
	if d["status"] != store.StatusPassed {
		t.Errorf("initial_delay 3s past a 2s warm-up: %v %v; want passed", d["status"], d["reason"])
	}
}
