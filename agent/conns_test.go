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
