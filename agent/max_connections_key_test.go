package agent

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// agent.max_connections caps the API's open connections: past it the oldest idle one is
// closed to make room. Forty keep-alive connections, each idle after one /healthz, on an
// agent capped at 32: the eight oldest are closed by the agent, the newest still answers.
// (Under the default of 512 all forty would stay open for the idle timeout, a minute.)
func TestMaxConnectionsKeyClosesTheOldestIdleConnections(t *testing.T) {
	h := startAgent(t, "", `agent: {api_token: s3cret-token, max_connections: 32}
checks:
  - {name: home, kind: http, every: 24h, request: {url: "http://127.0.0.1:1/"}}
`)
	type conn struct {
		c net.Conn
		r *bufio.Reader
	}
	get := func(c conn) error {
		if _, err := io.WriteString(c.c, "GET /healthz HTTP/1.1\r\nHost: vigil\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(c.r, nil)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	const open = 40
	var conns []conn
	for i := range open {
		c, err := net.Dial("tcp", h.url[len("http://"):])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cn := conn{c, bufio.NewReader(c)}
		if err := get(cn); err != nil {
			t.Fatalf("connection %d: /healthz: %v", i, err)
		}
		conns = append(conns, cn)
	}
	var closed atomic.Int32
	var wg sync.WaitGroup
	for _, cn := range conns[:open-1] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = cn.c.SetReadDeadline(time.Now().Add(3 * time.Second)) // bounds the wait on one the agent keeps
			if _, err := cn.r.ReadByte(); err != nil {
				if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
					closed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := closed.Load(); n < open-32 {
		t.Errorf("the agent closed %d of %d idle connections; want at least %d past max_connections 32", n, open, open-32)
	}
	if err := get(conns[open-1]); err != nil {
		t.Errorf("the newest connection: /healthz: %v", err)
	}
}
