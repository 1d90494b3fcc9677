package agent

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The API server must stay answerable when clients misbehave: a thousand connections that
// never finish their body, or hundreds that send megabyte headers, must neither hold the
// agent's files and memory nor keep /healthz from answering. Read and write deadlines bound
// how long a request may take to arrive and to be answered (a long-poll extends its own);
// headers are capped; and the number of connections is capped by connLimiter, which makes
// room for a new connection by closing the oldest one that is not serving a request, so a
// probe on a fresh connection is answered however many idle or trickling connections
// there are.

const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second // the whole request, body included
	writeTimeout      = 30 * time.Second // the answer (Options.APIWriteTimeout); a long-poll or a manual run extends it
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 64 << 10
	// connOverflow connections beyond the cap are accepted when every connection is busy
	// serving a request (long-polls): a health probe still gets through.
	connOverflow = 16
	connWait     = 2 * time.Second
	connGrace    = time.Second
)

// newServer is the API server with its limits.
func (a *Agent) newServer() *http.Server {
	return &http.Server{
		Handler:           a.trackBusy(a.Handler()),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      a.writeTimeout(),
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*trackedConn); ok {
				return context.WithValue(ctx, connKey{}, tc)
			}
			return ctx
		},
	}
}

// serve serves the API on ln behind the connection cap (agent.max_connections, applied on
// reload too).
func (a *Agent) serve(ln net.Listener) error {
	a.conns = newConnLimiter(ln, func() int { return a.Runtime().Config.Agent.MaxConnections })
	registerConnMetrics(a.opts.Registry, func() float64 { return float64(a.conns.open()) },
		func() float64 { return float64(a.conns.evicted.Load() + a.conns.refused.Load()) })
	return a.server.Serve(a.conns)
}

// registerConnMetrics exports the API server's connection counts.
func registerConnMetrics(reg prometheus.Registerer, open, dropped func() float64) {
	f := promauto.With(reg)
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "vigil_api_connections",
		Help: "Open connections to the API server (agent.max_connections caps them)."}, open)
	f.NewCounterFunc(prometheus.CounterOpts{Name: "vigil_api_connections_dropped_total",
		Help: "Connections the API server closed to stay under agent.max_connections: idle or still sending their request."}, dropped)
}

func (a *Agent) writeTimeout() time.Duration {
	if a.opts.APIWriteTimeout > 0 {
		return a.opts.APIWriteTimeout
	}
	return writeTimeout
}

// extendWriteDeadline gives a request that legitimately takes long (a long-poll, a manual
// run) d, plus the usual time to write its answer: past the server's write deadline the
// answer would be dropped. (The read deadline does not cut a handler: the server clears it
// once the request is read.)
func (a *Agent) extendWriteDeadline(w http.ResponseWriter, d time.Duration) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d + a.writeTimeout()))
}

type connKey struct{}

// trackBusy marks a connection busy while a request that has arrived whole is served, so
// the limiter never closes it; a connection still sending its request, or idle between
// requests, can be closed to make room.
func (a *Agent) trackBusy(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tc, _ := r.Context().Value(connKey{}).(*trackedConn)
		if tc == nil {
			next.ServeHTTP(w, r)
			return
		}
		defer tc.pending.Store(false)
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			tc.busy.Add(1)
		} else {
			r.Body = &busyOnEOF{ReadCloser: r.Body, tc: tc}
		}
		defer func() {
			if b, ok := r.Body.(*busyOnEOF); !ok || b.marked {
				tc.busy.Add(-1)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// busyOnEOF marks its connection busy once the whole body has been read.
type busyOnEOF struct {
	io.ReadCloser
	tc     *trackedConn
	marked bool
}

func (b *busyOnEOF) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.marked {
		b.marked = true
		b.tc.busy.Add(1)
	}
	return n, err
}

// connLimiter caps the connections of a listener. At the cap, a new connection closes the
// oldest one that is neither serving a request nor holding a whole GET that waits for its
// handler, and that has been heard from or given connGrace to speak: a probe that just
// connected, or whose request waits for a scheduler slot, is not closed before it is
// heard. When there is none, up to connOverflow more are let in; past that, Accept waits up
// to connWait for a connection to close or become closable (connections behind it wait in
// the kernel's queue), and only then closes the new one.
type connLimiter struct {
	net.Listener
	max func() int

	mu      sync.Mutex
	conns   map[*trackedConn]struct{}
	changed chan struct{} // a connection closed or was first read
	evicted atomic.Int64
	refused atomic.Int64
}

func newConnLimiter(ln net.Listener, max func() int) *connLimiter {
	return &connLimiter{Listener: ln, max: max, conns: map[*trackedConn]struct{}{}, changed: make(chan struct{}, 1)}
}

func (l *connLimiter) signal() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// Accept implements net.Listener.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, l: l, opened: time.Now()}
		if l.admit(tc) {
			return tc, nil
		}
		l.refused.Add(1)
		c.Close()
	}
}

// admit makes room for tc, waiting up to connWait; false: there was none.
func (l *connLimiter) admit(tc *trackedConn) bool {
	var wait *time.Timer
	defer func() {
		if wait != nil {
			wait.Stop()
		}
	}()
	for {
		var victim *trackedConn
		l.mu.Lock()
		n := len(l.conns)
		if n >= l.max() {
			victim = l.oldestIdle()
		}
		ok := n < l.max() || victim != nil || n < l.max()+connOverflow
		if ok {
			if victim != nil {
				delete(l.conns, victim)
			}
			l.conns[tc] = struct{}{}
		}
		l.mu.Unlock()
		if victim != nil {
			l.evicted.Add(1)
			victim.Conn.Close()
		}
		if ok {
			return true
		}
		if wait == nil {
			wait = time.NewTimer(connWait)
		}
		select {
		case <-l.changed:
		case <-wait.C:
			return false
		}
	}
}

func (l *connLimiter) oldestIdle() *trackedConn {
	var oldest *trackedConn
	graced := time.Now().Add(-connGrace)
	for c := range l.conns {
		if c.busy.Load() != 0 || c.pending.Load() || (!c.heard.Load() && c.opened.After(graced)) {
			continue
		}
		if oldest == nil || c.opened.Before(oldest.opened) {
			oldest = c
		}
	}
	return oldest
}

// open is how many connections are open.
func (l *connLimiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// trackedConn is a connection the limiter counts.
type trackedConn struct {
	net.Conn
	l      *connLimiter
	opened time.Time
	busy   atomic.Int32
	heard  atomic.Bool // it sent something
	// pending: a whole GET (a health probe, a page) has arrived and waits for its handler,
	// which marks the connection busy instead.
	pending atomic.Bool
	once    sync.Once
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.heard.Load() {
		if b := p[:n]; (bytes.HasPrefix(b, []byte("GET ")) || bytes.HasPrefix(b, []byte("HEAD "))) && bytes.Contains(b, []byte("\r\n\r\n")) {
			c.pending.Store(true)
		}
		c.heard.Store(true)
		c.l.signal()
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		c.l.signal()
	})
	return c.Conn.Close()
}
