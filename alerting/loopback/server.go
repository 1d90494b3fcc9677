// Package loopback is production code: stand-ins, on 127.0.0.1, for the services vigil
// notifies, which record what arrives. `vigil demo` runs its Slack on one (there is no
// real Slack in a demo), and the tests of every package deliver to them: a Slack Web API
// server (chat.postMessage, chat.update, the files v2 upload flow, auth.test), a PagerDuty
// Events v2 endpoint (enqueue and change), a webhook receiver that verifies signatures
// by the documented formula and counts deliveries per Idempotency-Key, an Opsgenie Alert
// API, and Teams and Discord webhooks that check what those services check. Each can be told to
// fail (Fault). Start and Close are for programs; the New* constructors, for tests, start
// one and close it at the test's cleanup. Tests assert on what arrived here, not on the
// calls a client made.
package loopback

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Fault is how a receiver answers instead of doing its job, for Times requests in a row.
type Fault struct {
	// Times is how many requests the fault answers; 0 means 1.
	Times int
	// Status is the HTTP status; 0 means 200 (with SlackError) or 500.
	Status int
	// RetryAfter, when set, is sent as the Retry-After header (seconds or an HTTP-date).
	RetryAfter string
	// SlackError makes the Slack server answer 200 {"ok":false,"error":SlackError}.
	SlackError string
	// Body is the answer's body; ContentType its type (default text/plain).
	Body        []byte
	ContentType string
	// BodySize streams that many bytes of garbage as the body (a huge answer).
	BodySize int64
	// Hang holds the request without answering until the client gives up or the
	// receiver closes.
	Hang bool
	// AcceptThenHang (webhook receiver, Slack server): the delivery is accepted and
	// counted, as if the receiver acted on it (the Slack server carries the method out: the
	// message is posted), and then the answer is held as with Hang. A sender killed now
	// never learns that it was accepted.
	AcceptThenHang bool
	// Stall answers the status and headers, then holds the body open without writing.
	Stall bool
	// Cut answers the status and headers promising more body than it writes (Body), then
	// closes the connection: a receiver that accepted and died mid-answer.
	Cut bool
	// Drop (Slack server): the method is carried out (the message is posted) and the
	// connection is then closed without an answer: a connection that died after Slack
	// posted, or an answer lost to a timeout.
	Drop bool
}

// server is the listener, fault queues and lifecycle the three receivers share.
type server struct {
	mu      sync.Mutex
	addr    string
	handler http.Handler
	srv     *http.Server
	faults  map[string][]Fault
	done    chan struct{} // closed by Close: releases hanging handlers
	closed  bool
}

func (s *server) start(addr string, h http.Handler) error {
	s.handler = h
	s.faults = map[string][]Fault{}
	s.done = make(chan struct{})
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	return nil
}

func (s *server) serve(ln net.Listener) {
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.srv = srv
	go func() { _ = srv.Serve(ln) }()
}

// Addr is host:port the receiver listens on (the same after Down and Up).
func (s *server) Addr() string { return s.addr }

// Down closes the listener and every open connection: clients see connection refused.
func (s *server) Down() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Up listens again on the same port after Down.
func (s *server) Up() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("receiver is closed")
	}
	if s.srv != nil {
		return nil
	}
	var err error
	for range 50 { // the port may linger for a moment after Close
		var ln net.Listener
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			s.serve(ln)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("listening again on %s: %w", s.addr, err)
}

// Close stops the receiver for good.
func (s *server) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	s.mu.Unlock()
	s.Down()
}

// Fail queues a fault for a route (a Slack method, "upload", a PagerDuty path, or "" for
// the webhook receiver). Faults are answered in order, each Times times.
func (s *server) fail(route string, f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[route] = append(s.faults[route], f)
}

// takeFault pops the next fault for route, if any.
func (s *server) takeFault(route string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[route]
	if len(q) == 0 {
		return Fault{}, false
	}
	f := q[0]
	q[0].Times--
	if q[0].Times <= 0 {
		s.faults[route] = q[1:]
	}
	return f, true
}

// status is the HTTP status the fault answers with (0 when it hangs).
func (f Fault) status() int {
	switch {
	case f.Hang:
		return 0
	case f.AcceptThenHang:
		return http.StatusOK
	case f.Status == 0:
		return http.StatusInternalServerError
	}
	return f.Status
}

// answerFault writes the fault's answer.
func (s *server) answerFault(w http.ResponseWriter, r *http.Request, f Fault) {
	if f.Hang || f.AcceptThenHang {
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	}
	status := f.status()
	if f.Cut {
		cut(w, status, f.Body)
		return
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	ct := f.ContentType
	if ct == "" {
		ct = "text/plain; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	if f.BodySize > 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(f.BodySize+int64(len(f.Body)), 10))
	}
	w.WriteHeader(status)
	if f.Stall {
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	}
	_, _ = w.Write(f.Body)
	if f.BodySize > 0 {
		chunk := make([]byte, 32<<10)
		for i := range chunk {
			chunk[i] = "garbage{["[i%9]
		}
		for left := f.BodySize; left > 0; {
			n := min(left, int64(len(chunk)))
			if _, err := w.Write(chunk[:n]); err != nil {
				break
			}
			left -= n
		}
	}
}

// drop closes the request's connection without writing an answer.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
		}
	}
}

// cut writes status and body on the raw connection, with a Content-Length a kilobyte
// longer than body, and closes it.
func cut(w http.ResponseWriter, status int, body []byte) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot cut this connection", http.StatusInternalServerError)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		status, http.StatusText(status), len(body)+1024)
	_, _ = buf.Write(body)
	_ = buf.Flush()
}

func mustStart(tb testing.TB, start func() error, closer func()) {
	tb.Helper()
	if err := start(); err != nil {
		tb.Fatalf("starting a loopback receiver: %v", err)
	}
	tb.Cleanup(closer)
}
