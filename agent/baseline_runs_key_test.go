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

// verify.baseline_runs is how many passing runs before a deploy make its baseline. Three
// older runs read a 100-byte answer, the two newest a 10-byte one: with baseline_runs: 2
// the baseline is the newest two (10 bytes), and the new version, answering 10 bytes,
// passes body_bytes == baseline.body_bytes; the default (5) would take the median of all
// five (100 bytes) and fail it.
func TestBaselineRunsKeyIsHowManyRunsMakeTheBaseline(t *testing.T) {
	var size atomic.Int64
	size.Store(100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Repeat("x", int(size.Load())))
	}))
	t.Cleanup(srv.Close)
	h := startAgent(t, "", webConfig{url: srv.URL, every: "24h", verify: "interval: 100ms, count: 2, baseline_runs: 2",
		assert: `"status == 200", "body_bytes == baseline.body_bytes"`}.String())
	run := func(n int) {
		t.Helper()
		for range n {
			if status, out := h.request("POST", "/api/v1/checks/home/run", ""); status != http.StatusOK || out["outcome"] != "pass" {
				t.Fatalf("run before the deploy: %d %v", status, out)
			}
			time.Sleep(10 * time.Millisecond) // runs apart in time: the newest are the newest
		}
	}
	run(3)
	size.Store(10)
	run(2)
	d := h.verdict(h.deploy("web", "v2"), 30*time.Second)
	if d["status"] != store.StatusPassed {
		t.Errorf("status %v, reason %v; want passed: the baseline is the 2 newest runs (10 bytes), not the default 5 (median 100)",
			d["status"], d["reason"])
	}
}
