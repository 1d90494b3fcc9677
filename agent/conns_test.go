package agent

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// A long-poll and a manual run of a slow check take longer than the server's write
// deadline (which bounds slow clients and handlers); they extend their own and are answered.
func TestLongRequestsOutliveServerTimeouts(t *testing.T) {
	const writeTimeout = time.Second
	wait := 3 * writeTimeout
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(wait)
	}))
	defer slow.Close()
	dir := t.TempDir()
	logs := &vigiltest.Buffer{}
	l := launch(t, dir, withToken(fmt.Sprintf(`
checks:
  - {name: slow, kind: http, timeout: %s, retries: 0, every: 1h, request: {url: %q}}
services:
  web: {checks: [slow], verify: {interval: 1h, count: 2}}
`, wait+5*time.Second, slow.URL)), Options{APIWriteTimeout: writeTimeout, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	h := &harness{t: t, a: l.a, dir: dir, cfgPath: l.path, url: l.url, token: l.cfg.Agent.APIToken.Value(), logs: logs}
	t.Cleanup(func() { _ = l.stop() })
	id := h.deploy("web", "v2")
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		start := time.Now()
		status, out := h.request("GET", fmt.Sprintf("/api/v1/deploys/%s?wait=%s", id, wait), "")
		took := time.Since(start)
		t.Logf("reliability: long-poll ?wait=%s with a %s write deadline: %d after %s", wait, writeTimeout, status, took.Round(time.Millisecond))
		if status != 200 || took < wait-time.Second {
			t.Errorf("long-poll of %s: %d after %s: %v", wait, status, took, out)
		}
	}()
	go func() {
		defer wg.Done()
		start := time.Now()
		status, out := h.request("POST", "/api/v1/checks/slow/run", "")
		if took := time.Since(start); status != 200 || out["outcome"] != "pass" {
			t.Errorf("manual run of a check that takes %s: %d after %s: %v", wait, status, took, out)
		}
	}()
	wg.Wait()
}

// The limiter closes the oldest connection that is neither busy nor waiting to be served,
// and never one serving a request.
func TestConnLimiterMakesRoom(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newConnLimiter(ln, func() int { return 2 })
	defer l.Close()
	accepted := make(chan *trackedConn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			tc := c.(*trackedConn)
			accepted <- tc
			go func() { _, _ = io.Copy(io.Discard, tc) }() // the server reading
		}
	}()
	dial := func(send string) (net.Conn, *trackedConn) {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if send != "" {
			_, _ = io.WriteString(c, send)
		}
		tc := <-accepted
		eventually(t, 2*time.Second, "the connection to be heard", func() bool { return send == "" || tc.heard.Load() })
		return c, tc
	}
	closed := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF
	}
	busy, busyTC := dial("POST /api/v1/deploys HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
	busyTC.busy.Add(1) // its handler is running
	trickle, _ := dial("POST /api/v1/deploys HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
	probe, _ := dial("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if !closed(trickle) {
		t.Errorf("the trickling connection was not closed to make room")
	}
	if closed(busy) || closed(probe) {
		t.Errorf("a busy connection or a probe waiting for its handler was closed")
	}
	if n := l.open(); n != 2 {
		t.Errorf("%d connections open, want 2", n)
	}
	if l.evicted.Load() != 1 {
		t.Errorf("evicted %d", l.evicted.Load())
	}
}

// Headers past 64 KiB are refused with 431 rather than buffered (1 MB each was the default).
func TestHugeHeadersRefused(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 1h, count: 2"}.String())
	req, _ := http.NewRequest("GET", h.url+"/healthz", nil)
	req.Header.Set("X-Pad", strings.Repeat("a", 100<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Logf("reliability: a request with a 100 KiB header: %d", resp.StatusCode)
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 100 KiB header: %d, want 431", resp.StatusCode)
	}
	req.Header.Set("X-Pad", strings.Repeat("a", 30<<10))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("a 30 KiB header: %v %v", err, resp)
	}
}

// Pipelines long-polling a deploy by the hundred do not keep a probe out: at most half of
// agent.max_connections wait for a verdict at once, the rest are answered 503 with
// Retry-After, and their connections, idle then, make room for a fresh one. (Every waiting
// connection was busy, never closed for room: 600 of them held /healthz for 19 s.)
func TestLongPollsLeaveRoomForAProbe(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", "agent: {api_token: s3cret-token, max_connections: 32}\n"+webConfig{url: tg.srv.URL, verify: "interval: 1m, count: 3"}.String())
	id := h.deploy("web", "v2")
	const polls = 120
	var wg sync.WaitGroup
	var waited, refused atomic.Int32
	for range polls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
			defer c.CloseIdleConnections()
			req, _ := http.NewRequest("GET", h.url+"/api/v1/deploys/"+id+"?wait=8s", nil)
			req.Header.Set("Authorization", "Bearer s3cret-token")
			resp, err := c.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "2":
				refused.Add(1)
			case resp.StatusCode == http.StatusOK:
				waited.Add(1)
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond) // the long-polls are in
	c := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	start := time.Now()
	resp, err := c.Get(h.url + "/healthz")
	if err != nil {
		t.Fatalf("/healthz with %d long-polls open: %v", polls, err)
	}
	resp.Body.Close()
	t.Logf("reliability: /healthz with %d long-polls on an agent of max_connections 32: %d in %s", polls, resp.StatusCode, time.Since(start).Round(time.Millisecond))
	wg.Wait()
	if refused.Load() == 0 || waited.Load() > 16 {
		t.Errorf("%d long-polls waited and %d were told to come back; want at most 16 waiting (half of 32)", waited.Load(), refused.Load())
	}
}
