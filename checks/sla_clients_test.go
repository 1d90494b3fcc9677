package checks

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingServer answers after a short wait (requests overlap, as under load) and counts
// the requests and connections it got.
type countingServer struct {
	srv            *httptest.Server
	requests, news atomic.Int64
}

func newCountingServer(t *testing.T, tlsH2 bool) *countingServer {
	t.Helper()
	c := &countingServer{}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		time.Sleep(5 * time.Millisecond)
		fmt.Fprint(w, "ok")
	}))
	c.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.news.Add(1)
		}
	}
	if tlsH2 {
		c.srv.EnableHTTP2 = true
		c.srv.StartTLS()
	} else {
		c.srv.Start()
	}
	t.Cleanup(c.srv.Close)
	return c
}

// TestSLAConcurrencyIsThatManyClients: `concurrency: N` stands for N clients, each with a
// connection of its own, as N browsers or N API clients have.
//
// Over HTTPS, Go's client speaks HTTP/2 and put the whole burst on one connection as
// streams; behind a connection-level balancer that connection reaches one pod, so 40
// requests "at concurrency 4" all went to one backend, and the other pods, the new ones a
// rollout added among them, never saw the burst.
//
// Over HTTP/1.1 with more workers than the client kept idle connections for (64 per host),
// connections were closed after their request and dialled again, so many requests measured
// a new connection, and the service took a connection storm no N clients make.
func TestSLAConcurrencyIsThatManyClients(t *testing.T) {
	t.Run("http2 behind a connection balancer", func(t *testing.T) {
		a, b := newCountingServer(t, true), newCountingServer(t, true)
		lb := newL4Balancer(t, a.srv.URL[len("https://"):], b.srv.URL[len("https://"):])
		url := "https://" + strings.TrimPrefix(lb.URL(), "http://")
		res := run(t, buildOne(t, fmt.Sprintf(`
checks:
  - name: burst
    kind: sla
    timeout: 10s
    request: {url: %q, tls: {insecure_skip_verify: true}}
    requests: 40
    concurrency: 4
`, url)), Input{})
		wantOutcome(t, res, Pass)
		t.Logf("backend a: %d requests on %d connections; b: %d on %d", a.requests.Load(), a.news.Load(), b.requests.Load(), b.news.Load())
		if a.requests.Load() == 0 || b.requests.Load() == 0 {
			t.Fatalf("one backend got the whole burst (a %d, b %d requests): 4 clients are 4 connections", a.requests.Load(), b.requests.Load())
		}
	})
	t.Run("http1 above 64 clients", func(t *testing.T) {
		s := newCountingServer(t, false)
		res := run(t, buildOne(t, fmt.Sprintf(`
checks:
  - name: burst
    kind: sla
    timeout: 20s
    request: {url: %q}
    requests: 800
    concurrency: 100
`, s.srv.URL)), Input{})
		wantOutcome(t, res, Pass)
		t.Logf("%d requests on %d connections", s.requests.Load(), s.news.Load())
		if n := s.news.Load(); n > 100 {
			t.Fatalf("100 clients opened %d connections for 800 requests; each keeps its own", n)
		}
	})
}
