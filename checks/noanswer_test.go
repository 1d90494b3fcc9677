package checks

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// A run in which the service gave no answer (nothing listens, the connection dropped
// before an answer, none in time) is an error marked NoAnswer, in every kind whose
// request goes to the service: a deploy's verification fails a service that answered
// before it and goes silent (agent/verdict.go). vigil's own trouble stays unmarked: a
// certificate it cannot verify, a Prometheus that is down, a request it could not build.
func TestNoAnswer(t *testing.T) {
	done := testDone(t)
	down := closedURL(t)
	downAddr := strings.TrimPrefix(down, "http://")
	hung := serve(t, hang(done)).URL
	// dropped reads the request and closes the connection without a word.
	dropped := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
			c.Close()
		}
	})).URL
	ca := newTestCA(t)
	secure := newTLSServer(t, ca)
	grpcHung := newGRPCServer(t, nil, func(s *grpc.Server) { healthpb.RegisterHealthServer(s, hangingHealth{done: done}) })
	grpcTLS := newGRPCServer(t, credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{ca.leaf(t, 30*24*time.Hour)}, MinVersion: tls.VersionTLS12}),
		withHealth(serving))

	writer := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })).URL
	propagation := func(reader string) string {
		return fmt.Sprintf("\nchecks:\n  - {name: feed, kind: propagation, timeout: 1s, write: {method: POST, url: %q}, read: [%q]}\n",
			writer+"/items", reader+"/items")
	}
	// h2 is an HTTPS server speaking HTTP/2 whose handler ends the request without an
	// answer as abort does.
	h2 := func(abort func(srv *httptest.Server, r *http.Request)) string {
		var srv *httptest.Server
		srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { abort(srv, r) }))
		srv.EnableHTTP2 = true
		srv.TLS = serverTLS(ca.leaf(t, 24*time.Hour))
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return fmt.Sprintf("\nchecks:\n  - {name: api, kind: http, timeout: 2s, request: {url: %q, tls: {ca_file: %q}}}\n", srv.URL+"/", ca.pemFile)
	}
	httpCheck := func(url string) string {
		return fmt.Sprintf("\nchecks:\n  - {name: api, kind: http, timeout: 1s, request: {url: %q}}\n", url+"/healthz")
	}
	for _, tc := range []struct {
		name, yaml string
		noAnswer   bool
		reason     string
	}{
		{"http: nothing listens", httpCheck(down), true, "connection refused"},
		{"http: sent, never answered", httpCheck(hung), true, "timed out: no complete answer"},
		{"http: dropped before an answer", httpCheck(dropped), true, "EOF"},
		{"http/2: the stream reset (a handler that panicked)", h2(func(*httptest.Server, *http.Request) { panic(http.ErrAbortHandler) }), true, "INTERNAL_ERROR; received from peer"},
		// Closed with bytes unread, the socket sends a reset: which the client reads first
		// depends on timing (seen in CI: "connection reset by peer").
		{"http/2: the connection dropped", h2(func(srv *httptest.Server, r *http.Request) { srv.CloseClientConnections(); <-r.Context().Done() }), true, "unexpected EOF|connection reset by peer"},
		{"script: a step not answered", fmt.Sprintf("\nchecks:\n  - {name: j, kind: script, timeout: 1s, steps: [{request: {url: %q}}]}\n", down), true, "step 1"},
		{"sla: no request answered", strings.Replace(slaYAML(down, 5, 2, ""), "timeout: 20s", "timeout: 2s", 1), true, "none of 5 requests got an answer"},
		{"tcp: nothing listens", tcpCheck(downAddr, ""), true, "connection refused"},
		{"tls: nothing listens", fmt.Sprintf("\nchecks:\n  - {name: c, kind: tls, timeout: 1s, address: %q}\n", downAddr), true, "connection refused"},
		{"websocket: nothing listens", wsCheck("ws://"+downAddr+"/feed", ""), true, "connection refused"},
		{"grpc: nothing listens", grpcCheck(downAddr, ""), true, "Unavailable"},
		{"grpc: never answered", strings.Replace(grpcCheck(grpcHung.addr, ""), "timeout: 2s", "timeout: 300ms", 1), true, "DeadlineExceeded"},
		{"propagation: the write not answered", fmt.Sprintf(`
checks:
  - name: feed
    kind: propagation
    timeout: 2s
    write: {method: POST, url: %q}
    read: [%q]
`, down+"/items", down+"/items"), true, "write"},
		{"propagation: a reader that refuses", propagation(down), true, "no answer from 1 of 1 readers"},
		{"propagation: a reader that hangs", propagation(hung), true, "the first read had no answer before the run's deadline"},

		{"http: a certificate vigil cannot verify", httpCheck(secure), false, "unknown authority"},
		{"grpc: a certificate vigil cannot verify", grpcCheck(grpcTLS.addr, "    tls: true\n"), false, "Unavailable"},
		{"promql: Prometheus down", fmt.Sprintf("\nchecks:\n  - {name: p, kind: promql, timeout: 1s, server: %q, query: up}\n", down), false, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, buildOne(t, tc.yaml), Input{})
			reason := tc.reason // "a|b": either
			for _, alt := range strings.Split(tc.reason, "|") {
				if strings.Contains(strings.Join(res.Reasons, "\n"), alt) {
					reason = alt
				}
			}
			wantOutcome(t, res, Error, reason)
			if res.NoAnswer != tc.noAnswer {
				t.Errorf("NoAnswer = %v; want %v (%s)", res.NoAnswer, tc.noAnswer, res.Summary())
			}
		})
	}
}

// newTLSServer is an HTTPS server on loopback with a certificate of ca.
func newTLSServer(t *testing.T, ca *testCA) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, TLSConfig: serverTLS(ca.leaf(t, 30*24*time.Hour)),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String()
}

// The classification alone, for errors no loopback server can make: a proxy vigil cannot
// reach is vigil's path, not the service; a name that does not exist is the service's.
func TestNoAnswerClassification(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"refused", fmt.Errorf("GET http://127.0.0.1:1/: %w", refused), true},
		{"the proxy refused", fmt.Errorf("GET https://shop/: %w", &net.OpError{Op: "proxyconnect", Net: "tcp", Err: refused}), false},
		{"no such host", &net.DNSError{Err: "no such host", Name: "shop.internal", IsNotFound: true}, true},
		{"the resolver failed", &net.DNSError{Err: "server misbehaving", Name: "shop.internal", IsTemporary: true}, false},
		{"the resolver timed out", &net.DNSError{Err: "i/o timeout", Name: "shop.internal", IsTimeout: true}, false},
		{"no route from vigil", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}, false},
		{"the host is gone", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, true},
		{"a request vigil could not build", errors.New("building request: bad URL"), false},
	} {
		if got := isNoAnswer(noAnswer(tc.err)); got != tc.want {
			t.Errorf("%s: no answer = %v; want %v (%v)", tc.name, got, tc.want, tc.err)
		}
	}
}
