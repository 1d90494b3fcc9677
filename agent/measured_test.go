package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// A check's deploy baseline is the runs of what it measures now. The target answers 100
// bytes at /a and 10 at /b; the check asserts body_bytes == baseline.body_bytes. After
// runs of /a:
//   - a reload that changes only the assertions (status == 200 added) keeps the baseline: a
//     deploy still answering 100 bytes at /a passes against the runs from before the reload;
//   - a reload that points the check at /b leaves /a's runs out: a deploy right after it has
//     no baseline yet (inconclusive), where the runs of /a made it fail (10 != 100) on a
//     service that did not change;
//   - once /b has runs of its own, a deploy is judged on them and passes.
func TestABaselineIsTheRunsOfWhatTheCheckMeasuresNow(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 100
		if strings.HasPrefix(r.URL.Path, "/b") {
			n = 10
		}
		fmt.Fprint(w, strings.Repeat("x", n))
	}))
	t.Cleanup(srv.Close)
	cfg := func(path, assert string) string {
		return webConfig{url: srv.URL + path, every: "24h", verify: "interval: 100ms, count: 2", assert: assert}.String()
	}
	h := startAgent(t, "", cfg("/a", `"body_bytes == baseline.body_bytes"`))
	run := func(n int) {
		t.Helper()
		for range n {
			if status, out := h.request("POST", "/api/v1/checks/home/run", ""); status != http.StatusOK || out["outcome"] != "pass" {
				t.Fatalf("run before the deploy: %d %v", status, out)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	run(3)

	both := `"status == 200", "body_bytes == baseline.body_bytes"`
	if err := reloadWith(t, h, cfg("/a", both)); err != nil {
		t.Fatal(err)
	}
	if d := h.verdict(h.deploy("web", "v2"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("after a reload that changed only the assertions: status %v, reason %v; want passed on the runs from before it",
			d["status"], d["reason"])
	}

	if err := reloadWith(t, h, cfg("/b", both)); err != nil {
		t.Fatal(err)
	}
	d := h.verdict(h.deploy("web", "v3"), 30*time.Second)
	t.Logf("deploy right after the check moved from /a to /b: %v: %v", d["status"], d["reason"])
	if d["status"] != store.StatusInconclusive || !strings.Contains(fmt.Sprint(d["reason"]), "no baseline yet") ||
		!strings.Contains(fmt.Sprint(d["reason"]), "since the check's request changed at ") {
		t.Fatalf("status %v, reason %v; want inconclusive, no baseline yet: the runs before the reload are of /a", d["status"], d["reason"])
	}

	run(2)
	if d := h.verdict(h.deploy("web", "v4"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Errorf("once /b has runs: status %v, reason %v; want passed on /b's runs", d["status"], d["reason"])
	}
}

// A restart with the check pointed elsewhere is the same change as a reload: the store
// keeps since when the check measures what it measures, so the agent started on /b does
// not judge /b against /a's runs; restarted on the same file, it keeps the runs of /b.
func TestARestartOnAChangedCheckLeavesTheOldRunsOutOfTheBaseline(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Repeat("x", map[bool]int{true: 10, false: 100}[strings.HasPrefix(r.URL.Path, "/b")]))
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cfg := func(path string) string {
		return webConfig{url: srv.URL + path, every: "24h", verify: "interval: 100ms, count: 2", assert: `"body_bytes == baseline.body_bytes"`}.String()
	}
	runs := func(h *harness, n int) {
		t.Helper()
		for range n {
			if status, out := h.request("POST", "/api/v1/checks/home/run", ""); status != http.StatusOK || out["outcome"] != "pass" {
				t.Fatalf("run: %d %v", status, out)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	h := startAgent(t, dir, cfg("/a"))
	runs(h, 3)
	h.stop()

	h = startAgent(t, dir, cfg("/b"))
	d := h.verdict(h.deploy("web", "v2"), 30*time.Second)
	if d["status"] != store.StatusInconclusive || !strings.Contains(fmt.Sprint(d["reason"]), "no baseline yet") {
		t.Fatalf("restarted on /b: status %v, reason %v; want inconclusive, no baseline yet: the runs before are of /a", d["status"], d["reason"])
	}
	runs(h, 2)
	h.stop()

	h = startAgent(t, dir, cfg("/b"))
	if d := h.verdict(h.deploy("web", "v3"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Errorf("restarted on the same file: status %v, reason %v; want passed on /b's runs", d["status"], d["reason"])
	}
}
