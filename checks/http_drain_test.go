package checks

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// connRequests is the key of a connection's request count in a drainingBackend's contexts.
type connRequests struct{}

// drainingBackend is an old pod behind a load balancer in a rollout: it answers the first
// request on each connection, and drops the connection without an answer when a kept-alive
// one carries another (the request read, then the socket reset: a backend past its drain
// timeout, or a balancer's idle timeout closing the connection as the request arrives).
// dropFresh drops every request instead, on new connections too: a backend that crashes on
// it. drops counts the requests dropped.
func drainingBackend(t *testing.T, dropFresh bool, drops *atomic.Int64) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, sent := r.Header["Idempotency-Key"]; sent {
			http.Error(w, "vigil's mark went on the wire", http.StatusBadRequest) // it must not
			return
		}
		if n := r.Context().Value(connRequests{}).(*atomic.Int64).Add(1); n > 1 || dropFresh {
			drops.Add(1)
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // a reset, as a balancer's idle timeout sends
				}
				c.Close()
			}
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-App-Version", "v2")
		fmt.Fprint(w, `{"token":"t"}`)
	}))
	srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, connRequests{}, new(atomic.Int64))
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// TestDrainedKeptAliveConnectionIsSentAgain: in a rollout, a backend resets a kept-alive
// connection as the next request arrives on it. A browser sends that request again on a
// new connection, whatever its method (Chromium resends a request that got no answer on a
// reused connection), and the visitor never sees it. Go's client did so for a GET only: a
// POST (a login, a checkout API) came back as no answer, an sla burst of POSTs counted
// every drop in error_rate and failed a good rollout, and a scheduled http check erred on
// each run whose request went out on the last run's connection. vigil sends it again as a browser does, and an sla burst
// counts it in retried, as it did for a GET.
func TestDrainedKeptAliveConnectionIsSentAgain(t *testing.T) {
	var drops atomic.Int64
	lb := newL4Balancer(t, drainingBackend(t, false, &drops).URL)

	t.Run("sla burst of POSTs", func(t *testing.T) {
		drops.Store(0)
		y := fmt.Sprintf(`
checks:
  - name: login-sla
    kind: sla
    timeout: 20s
    request: {method: POST, url: %q, body: '{"user":"synthetic"}'}
    requests: 20
    concurrency: 4
    assert: ["error_rate == 0"]
`, lb.URL()+"/api/login")
		res := run(t, buildOne(t, y), Input{})
		wantOutcome(t, res, Pass)
		// each worker's first request goes out on a new connection; every later one on a kept-alive
		// connection that the backend drops, and again on a new one
		if r := res.Vars["retried"].(int); r == 0 || int64(r) != drops.Load() || res.Vars["requests"] != 20 {
			t.Fatalf("retried %d, %d dropped, requests %v: every drop sent again and counted", r, drops.Load(), res.Vars["requests"])
		}
		// and a burst that asserts on it fails on it
		res = run(t, buildOne(t, strings.Replace(y, `["error_rate == 0"]`, `["error_rate == 0", "retried == 0"]`, 1)), Input{})
		wantOutcome(t, res, Fail, "retried == 0 is false", "sent again on a new connection")
	})

	// Scheduled runs share the client's kept-alive connections (a verification's rounds each
	// open their own: TestHTTPRoundsOpenTheirOwnConnections): the next run's POST goes out on
	// the last one's connection, which the balancer resets.
	t.Run("http POST in scheduled runs", func(t *testing.T) {
		drops.Store(0)
		c := buildOne(t, fmt.Sprintf(`
checks:
  - name: login
    kind: http
    timeout: 5s
    request: {method: POST, url: %q, body: '{"user":"synthetic"}'}
    assert: ["status == 200", "json.token != nil"]
`, lb.URL()+"/api/login"))
		for i := 1; i <= 3; i++ {
			res := run(t, c, Input{})
			wantOutcome(t, res, Pass)
			if i > 1 && !strings.Contains(strings.Join(res.Transcript, "\n"), "the request was sent again on a new connection") {
				t.Fatalf("run %d: the transcript does not say the request was sent again:\n%s", i, strings.Join(res.Transcript, "\n"))
			}
		}
		if drops.Load() != 2 {
			t.Fatalf("%d requests dropped; want the second and third runs' first tries", drops.Load())
		}
	})

	// A request dropped on a new connection is not the keep-alive race: the service gave no
	// answer (it crashed on the request), and it is not sent again.
	t.Run("dropped on a new connection", func(t *testing.T) {
		var crashes atomic.Int64
		crashing := newL4Balancer(t, drainingBackend(t, true, &crashes).URL)
		res := run(t, buildOne(t, fmt.Sprintf(`
checks:
  - name: login
    kind: http
    timeout: 5s
    request: {method: POST, url: %q, body: '{"user":"synthetic"}'}
`, crashing.URL()+"/api/login")), Input{})
		wantOutcome(t, res, Error)
		if !res.NoAnswer || crashes.Load() != 1 {
			t.Fatalf("NoAnswer %v, %d requests dropped: want no answer, asked once", res.NoAnswer, crashes.Load())
		}
	})
}

// goAwayBackend is an old pod speaking HTTP/2 (prior knowledge, as behind an h2c listener)
// that shuts down gracefully in a rollout: it answers the first request on each
// connection, and when a second arrives it sends GOAWAY naming the first as the last it
// processed, and closes the connection, as a server's graceful shutdown does to a request
// that crossed its GOAWAY on the wire. requests counts the requests it answered.
func goAwayBackend(t *testing.T, requests *atomic.Int64) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	frame := func(typ, flags byte, stream uint32, payload []byte) []byte {
		n := len(payload)
		return append([]byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags,
			byte(stream >> 24), byte(stream >> 16), byte(stream >> 8), byte(stream)}, payload...)
	}
	serve := func(c net.Conn) {
		defer c.Close()
		preface := make([]byte, len("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
		if _, err := io.ReadFull(c, preface); err != nil {
			return
		}
		if _, err := c.Write(frame(0x4, 0, 0, nil)); err != nil { // SETTINGS
			return
		}
		var first uint32
		for {
			head := make([]byte, 9)
			if _, err := io.ReadFull(c, head); err != nil {
				return
			}
			payload := make([]byte, int(head[0])<<16|int(head[1])<<8|int(head[2]))
			if _, err := io.ReadFull(c, payload); err != nil {
				return
			}
			typ, flags := head[3], head[4]
			stream := (uint32(head[5])<<24 | uint32(head[6])<<16 | uint32(head[7])<<8 | uint32(head[8])) & 0x7fffffff
			switch {
			case typ == 0x4 && flags&0x1 == 0: // SETTINGS: acknowledged
				_, _ = c.Write(frame(0x4, 0x1, 0, nil))
			case typ == 0x1 && first != 0 && stream != first: // a request after the first: GOAWAY, last stream the first
				goAway := []byte{byte(first >> 24), byte(first >> 16), byte(first >> 8), byte(first), 0, 0, 0, 0}
				_, _ = c.Write(frame(0x7, 0, 0, goAway))
				return
			case typ == 0x1 && first == 0:
				first = stream
				fallthrough
			case typ == 0x0 && stream == first:
				if flags&0x1 != 0 { // END_STREAM: the request is whole; 200 (HPACK static index 8) and a body
					requests.Add(1)
					_, _ = c.Write(append(frame(0x1, 0x4, first, []byte{0x88}), frame(0x0, 0x1, first, []byte(`{"token":"t"}`))...))
				}
			}
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestGoAwayInARolloutIsSentAgain: over HTTP/2 a draining backend says GOAWAY, naming the
// last request it processed; a request it did not process is sent again on a new
// connection, a POST too (Go's HTTP/2 client does this itself, as browsers do: the server
// said it did not see it). Scheduled POST checks and an sla burst of POSTs pass, and the
// burst counts the repeats in retried.
func TestGoAwayInARolloutIsSentAgain(t *testing.T) {
	var answered atomic.Int64
	lb := newL4Balancer(t, goAwayBackend(t, &answered))
	c := buildOne(t, fmt.Sprintf(`
checks:
  - name: login
    kind: http
    timeout: 5s
    request: {method: POST, url: %q, body: '{"user":"synthetic"}', protocol: h2c}
    assert: ["status == 200", "proto == 'HTTP/2.0'", "json.token != nil"]
`, lb.URL()+"/api/login"))
	for i := 1; i <= 3; i++ { // scheduled runs: the next run's request goes out on the last one's connection
		wantOutcome(t, run(t, c, Input{}), Pass)
	}
	// (Go's client may dial a spare connection as a GOAWAY comes: at least one a run)
	if answered.Load() != 3 || lb.Conns() < 3 {
		t.Fatalf("%d answered over %d connections; want each run's request answered once, on a new connection after the GOAWAY", answered.Load(), lb.Conns())
	}

	res := run(t, buildOne(t, fmt.Sprintf(`
checks:
  - name: login-sla
    kind: sla
    timeout: 20s
    request: {method: POST, url: %q, body: '{"user":"synthetic"}', protocol: h2c}
    requests: 20
    concurrency: 4
    assert: ["error_rate == 0"]
`, lb.URL()+"/api/login")), Input{})
	wantOutcome(t, res, Pass)
	if r := res.Vars["retried"].(int); r == 0 || res.Vars["requests"] != 20 {
		t.Fatalf("retried %d, requests %v: want the requests after each GOAWAY sent again and counted", r, res.Vars["requests"])
	}
}
