package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// rssMiB reads a process's resident memory.
func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// openFDs counts a process's open files.
func openFDs(pid int) int {
	list, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(list)
}

// floodCounts are the sizes of the floods: issue 11's figures with VIGIL_FLOOD_FULL=1, a
// smaller flood in the suite (still over agent.max_connections, and light enough not to
// starve the packages tested beside it).
func floodCounts() (slowBody, hugeHeader int, hold time.Duration) {
	if os.Getenv("VIGIL_FLOOD_FULL") != "" {
		return 1000, 300, 20 * time.Second
	}
	return 600, 60, 5 * time.Second
}

// TestAPISurvivesFloods floods a real agent (file limit 1024, as on many hosts) with
// unauthenticated slow-body connections and connections that send megabyte headers, and
// keeps them coming as the agent drops them. Meanwhile /healthz must keep answering (each
// probe on a fresh connection, with 10 s to answer: the latency is a figure, not a test, for
// a loaded test machine answers slowly too), the agent must have made room by dropping
// connections (an accept that waited for a slot instead would answer, later, and pass a
// probe), and memory and open files must stay bounded.
func TestAPISurvivesFloods(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("needs sh to lower the agent's file limit")
	}
	_, cfg := gateSetup(t)
	bin := vigilBinary(t)
	addr := freeAddr(t)
	p := &agentProc{t: t, url: "http://" + addr, logs: &vigiltest.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command("sh", "-c", `ulimit -n 1024 && exec "$0" "$@"`, bin, "agent", "-c", cfg, "--listen", addr)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("agent output (last 3000 bytes):\n%s", tail(p.logs.String(), 3000))
		}
	})
	healthz := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := healthz.Get(p.url + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not start: %s", p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	pid := p.cmd.Process.Pid
	time.Sleep(500 * time.Millisecond)
	rss0, fds0 := rssMiB(pid), openFDs(pid)

	slowN, hugeN, hold := floodCounts()
	ctx, stop := context.WithTimeout(context.Background(), hold)
	defer stop()
	var wg sync.WaitGroup
	var opened, dropped atomic.Int64
	pad := strings.Repeat("a", 1000)
	attack := func(send func(w *bufio.Writer) error) {
		defer wg.Done()
		for ctx.Err() == nil {
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			opened.Add(1)
			go func() { <-ctx.Done(); c.Close() }()
			w := bufio.NewWriterSize(c, 64<<10)
			_ = send(w)
			_ = w.Flush()
			// Hold it: read until the agent closes it (or the flood ends), then come back.
			_, _ = io.Copy(io.Discard, c)
			c.Close()
			dropped.Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	for range slowN {
		wg.Add(1)
		go attack(func(w *bufio.Writer) error {
			_, err := fmt.Fprintf(w, "POST /api/v1/deploys HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{", addr)
			return err
		})
	}
	for range hugeN {
		wg.Add(1)
		go attack(func(w *bufio.Writer) error {
			fmt.Fprintf(w, "GET /api/v1/checks HTTP/1.1\r\nHost: %s\r\n", addr)
			for i := range 1000 { // 1 MB of headers, never finished
				if _, err := fmt.Fprintf(w, "X-Pad-%d: %s\r\n", i, pad); err != nil {
					return err
				}
			}
			return nil
		})
	}

	// Probe /healthz on fresh connections while the floods go on; sample memory.
	var lat []time.Duration
	failures := 0
	var rssMax float64
	fdsMax := 0
	for ctx.Err() == nil {
		start := time.Now()
		resp, err := healthz.Get(p.url + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			failures++
			t.Logf("/healthz during the flood: %v", err)
		} else {
			resp.Body.Close()
			lat = append(lat, time.Since(start))
		}
		rssMax, fdsMax = max(rssMax, rssMiB(pid)), max(fdsMax, openFDs(pid))
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(q float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(q*float64(len(lat))))].Round(time.Millisecond)
	}
	t.Logf("reliability: flood: %d slow-body and %d huge-header clients for %s, %d connections opened: /healthz %d of %d answered, p50 %s, max %s; "+
		"agent RSS %.0f MiB before, %.0f MiB at most during; open files %d before, %d at most",
		slowN, hugeN, hold, opened.Load(), len(lat), len(lat)+failures, pct(0.5), pct(1), rss0, rssMax, fds0, fdsMax)
	if failures > 0 {
		t.Errorf("/healthz failed %d times during the flood", failures)
	}
	if rssMax > rss0+100 {
		t.Errorf("memory grew from %.0f MiB to %.0f MiB", rss0, rssMax)
	}
	if fdsMax > fds0+512+64 { // agent.max_connections and its overflow, and some slack
		t.Errorf("open files grew from %d to %d: connections are not capped", fds0, fdsMax)
	}
	// After the flood the API still works, and says it dropped connections to stay under
	// agent.max_connections (512, fewer than the flood's clients).
	req, _ := http.NewRequest("GET", p.url+"/api/v1/checks", nil)
	req.Header.Set("Authorization", "Bearer gate-token")
	if resp, err := healthz.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("after the flood: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	if n := droppedConns(t, healthz, p.url); n < 1 {
		t.Errorf("vigil_api_connections_dropped_total is %v after %d clients against a cap of 512: the agent made no room", n, slowN+hugeN)
	}
}

// droppedConns reads vigil_api_connections_dropped_total from the agent's /metrics.
func droppedConns(t *testing.T, c *http.Client, url string) float64 {
	t.Helper()
	resp, err := c.Get(url + "/metrics")
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "vigil_api_connections_dropped_total "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("/metrics: %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("/metrics has no vigil_api_connections_dropped_total (status %d)", resp.StatusCode)
	return 0
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
