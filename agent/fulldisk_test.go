package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// smallDisk mounts a tmpfs of size bytes on a new temporary folder: a real file system that
// really fills up. It needs root (CI runs as root); elsewhere the test is skipped.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (a disk that really fills up)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file until the file system refuses more, and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			break
		}
	}
	for _, size := range []int{4096, 512, 1} { // the last partial blocks
		for {
			if _, err := f.Write(chunk[:size]); err != nil {
				break
			}
		}
	}
	return path
}

// A verdict decided while the store's disk is full is not lost: the agent keeps it, says so
// (readiness, vigil_verdicts_unrecorded), long-polls keep waiting instead of answering at
// once, and as soon as there is space again the verdict is written with its rollback,
// which is delivered once. No restart is needed.
func TestVerdictSurvivesAFullDisk(t *testing.T) {
	dir := smallDisk(t, 8<<20)
	tg := newTarget(t)
	hook := loopback.NewWebhook(t)
	// The first round waits 2s: time to fill the disk after registering the deploy.
	h := startAgent(t, dir, webConfig{url: tg.srv.URL, verify: "initial_delay: 2s, interval: 1m, count: 3",
		service: "on_failure: [rollback]", top: "notifiers:" + webhookNotifier("rollback", "rollback", hook)}.String())
	tg.set("broken")
	id := h.deploy("web", "v2")
	filler := fill(t, dir)

	eventually(t, 30*time.Second, "the agent to hold a verdict it cannot write", func() bool { return h.a.unrecordedVerdicts() == 1 })
	status, ready := h.request("GET", "/readyz", "")
	if status != 503 || !strings.Contains(fmt.Sprint(ready["problems"]), "not yet written") {
		t.Errorf("/readyz = %d %v; want 503 naming the unwritten verdict", status, ready)
	}
	start := time.Now()
	_, d := h.request("GET", "/api/v1/deploys/"+id+"?wait=1500ms", "")
	if took := time.Since(start); d["status"] != store.StatusVerifying || took < time.Second {
		t.Errorf("long-poll answered %v after %s; want it to wait (the verdict is not written yet)", d["status"], took)
	}
	if n := len(hook.Deliveries()); n != 0 {
		t.Errorf("the rollback was called %d times before the verdict was written", n)
	}

	held := time.Since(start)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	d = h.verdict(id, 60*time.Second)
	t.Logf("reliability: verdict held %s with the disk full (readiness 503, long-poll waiting, no rollback sent); written %s after space came back", held.Round(time.Millisecond), time.Since(freed).Round(time.Millisecond))
	if d["status"] != store.StatusFailed {
		t.Fatalf("status = %v, reason %v; want failed once the disk has space again", d["status"], d["reason"])
	}
	key := id + ":deploy_failed"
	eventually(t, 30*time.Second, "the rollback webhook", func() bool { return hook.Count(key) == 1 })
	eventually(t, 10*time.Second, "readiness to recover", func() bool {
		s, _ := h.request("GET", "/readyz", "")
		return s == 200 && h.a.unrecordedVerdicts() == 0
	})
	// The receiver can have the rollback a moment before the agent records it delivered.
	h.outboxSettled(key, map[string]string{"rollback": store.OutboxDelivered})
	if n := hook.Count(key); n != 1 {
		t.Errorf("the rollback webhook accepted %d deliveries; want 1", n)
	}
}

// flakyDeployReads is a real store whose reads of a deploy fail while failing is set, as
// reads do on a full disk (SQLite may have to grow its WAL index to read).
type flakyDeployReads struct {
	Store
	failing atomic.Bool
	failed  atomic.Int32
}

func (s *flakyDeployReads) Deploy(ctx context.Context, id string) (*store.Deploy, error) {
	if s.failing.Load() {
		s.failed.Add(1)
		return nil, errors.New("database or disk is full (13)")
	}
	return s.Store.Deploy(ctx, id)
}

// A long-poll outlasts reads the store fails while it waits: it looks again at the next
// poll and answers with the verdict once the store reads again, never a 500 mid-wait; a
// wait that ends while reads still fail answers with the last state read, or, when no
// read succeeded, with the error, at its end.
func TestLongPollOutlastsFailingReads(t *testing.T) {
	dir := t.TempDir()
	st := &flakyDeployReads{Store: openSQLite(t, dir)}
	tg := newTarget(t)
	tg.set("broken")
	h := startAgentWith(t, dir, webConfig{url: tg.srv.URL, verify: "initial_delay: 3s, interval: 1m, count: 1"}.String(), Options{Store: st})

	id := h.deploy("web", "v2")
	registered := time.Now() // the verdict is due 3s after
	st.failing.Store(true)
	start := time.Now()
	status, d := h.request("GET", "/api/v1/deploys/"+id+"?wait=500ms", "")
	if took := time.Since(start); status != http.StatusInternalServerError || took < 450*time.Millisecond {
		t.Fatalf("a wait through which no read succeeded: %d %v after %s; want 500 at its end", status, d, took)
	}
	st.failing.Store(false)
	time.AfterFunc(150*time.Millisecond, func() { st.failing.Store(true) })
	status, d = h.request("GET", "/api/v1/deploys/"+id+"?wait=700ms", "")
	if status != http.StatusOK || d["status"] != store.StatusVerifying || st.failed.Load() < 5 {
		t.Fatalf("a wait ended while reads fail: %d %v after %d failed reads; want 200 verifying", status, d, st.failed.Load())
	}
	time.AfterFunc(time.Until(registered.Add(3500*time.Millisecond)), func() { st.failing.Store(false) })
	status, d = h.request("GET", "/api/v1/deploys/"+id+"?wait=20s", "")
	if status != http.StatusOK || d["status"] != store.StatusFailed {
		t.Fatalf("a long-poll through failing reads: %d %v; want 200 failed", status, d)
	}
}

// A full disk is waited out, not spun on: the outbox's claim (a write) fails while the
// read of when the next entry is due still answers "now", and the run writer's batches
// are refused; each backs off (the claim from 1 s up to 30 s, the writer from 200 ms up to
// 10 s) and says so a few times, where the outbox logged thousands of lines a second at a
// core's CPU. Once there is space the rollback goes out, once.
func TestAFullDiskIsWaitedOut(t *testing.T) {
	dir := smallDisk(t, 8<<20)
	tg := newTarget(t)
	hook := loopback.NewWebhook(t)
	hook.Fail(loopback.Fault{Status: 503}) // the first attempt: the rollback stays due
	h := startAgent(t, dir, webConfig{url: tg.srv.URL, every: "1s", verify: "interval: 200ms, count: 2",
		service: "on_failure: [rollback]", top: "notifiers:" + webhookNotifier("rollback", "rollback", hook)}.String())
	tg.set("broken")
	id := h.deploy("web", "v2")
	if d := h.verdict(id, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("status %v", d["status"])
	}
	key := id + ":deploy_failed"
	eventually(t, 10*time.Second, "the rollback refused once", func() bool { return hook.Attempts(key) >= 1 })

	before := h.logs.String()
	filler := fill(t, dir)
	time.Sleep(5 * time.Second) // the rollback is due again within it, and runs are handed over every second
	during := strings.TrimPrefix(h.logs.String(), before)
	claims, saves := strings.Count(during, "reading the outbox failed"), strings.Count(during, "saving runs failed")
	t.Logf("reliability: 5s of a full disk with a rollback due and runs to save: %d outbox claim errors logged, %d run-save errors", claims, saves)
	if claims == 0 || claims > 10 || saves > 10 {
		t.Errorf("in 5s of a full disk: %d outbox claim errors and %d run-save errors logged; want a few of each (backing off), and the claim's at least once", claims, saves)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the rollback once there is space", func() bool { return hook.Count(key) == 1 })
}
