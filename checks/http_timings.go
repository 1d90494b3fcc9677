package checks

import (
	"crypto/tls"
	"fmt"
	"math"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"time"
)

// timingRecorder records a request's phases from httptrace's callbacks. They run on the
// transport's dial goroutines, which can outlive the request's choice of connection (a
// dial racing an idle connection), so it locks.
type timingRecorder struct {
	mu                            sync.Mutex
	tm                            Timings
	dnsStart, connStart, tlsStart time.Time
	reused, dnsDone               bool
	// wrote is set from a request written until its answer's first byte: a connection got
	// meanwhile is the transport sending it again (retried).
	wrote   bool
	retried int
	// informational counts the 1xx answers (103 Early Hints, 100 Continue) read before the
	// final one since the last first byte: the first byte was theirs, not the final answer's.
	// infoBytes is about how many header bytes they held.
	informational int
	infoBytes     int
}

// trace is the ClientTrace that feeds r for a request sent at start.
func (r *timingRecorder) trace(start time.Time) *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) { r.mark(&r.dnsStart) },
		DNSDone: func(httptrace.DNSDoneInfo) {
			r.phase(&r.tm.DNS, &r.dnsStart)
			r.mu.Lock()
			r.dnsDone = true
			r.mu.Unlock()
		},
		ConnectStart:      func(string, string) { r.mark(&r.connStart) },
		ConnectDone:       func(string, string, error) { r.phase(&r.tm.Connect, &r.connStart) },
		TLSHandshakeStart: func() { r.mark(&r.tlsStart) },
		TLSHandshakeDone:  func(tls.ConnectionState, error) { r.phase(&r.tm.TLS, &r.tlsStart) },
		GotConn:           r.gotConn,
		WroteRequest: func(httptrace.WroteRequestInfo) {
			r.mu.Lock()
			r.wrote = true
			r.mu.Unlock()
		},
		// Once per request, for the first byte of whatever answers first: a 1xx's, when
		// one comes before the final answer.
		GotFirstResponseByte: func() {
			r.mu.Lock()
			r.tm.TTFB = time.Since(start)
			r.wrote = false
			r.informational, r.infoBytes = 0, 0
			r.mu.Unlock()
		},
		// Go's transport stops bounding 1xx answers once a trace watches them; without one,
		// their headers count against the response header cap, which this keeps, in Go's
		// words (notHTTP reads them: an answer no client reads).
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.informational++
			r.infoBytes += len("HTTP/1.1 103 Early Hints\r\n\r\n") + headerBytes(http.Header(h))
			if r.infoBytes > maxHeaderBytes {
				return fmt.Errorf("server response headers exceeded %d bytes in %d informational (1xx) answers, the last %d, before any final answer",
					maxHeaderBytes, r.informational, code)
			}
			return nil
		},
	}
}

// gotFinal is called when the final answer's header has arrived. After a 1xx, the time
// to first byte is this moment: Go has no callback for the final answer's first byte, and
// a 103 sent at once in front of a slow backend would otherwise read as a fast answer.
func (r *timingRecorder) gotFinal(start time.Time) {
	r.mu.Lock()
	if r.informational > 0 {
		r.tm.TTFB = time.Since(start)
	}
	r.mu.Unlock()
}

// resolving says whether a host name lookup began and has not ended.
func (r *timingRecorder) resolving() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.dnsStart.IsZero() && !r.dnsDone
}

func (r *timingRecorder) mark(t *time.Time) {
	r.mu.Lock()
	*t = time.Now()
	r.mu.Unlock()
}

func (r *timingRecorder) phase(d *time.Duration, start *time.Time) {
	r.mu.Lock()
	if !start.IsZero() && !r.reused { // after a reused conn, phases belong to a background dial
		*d = time.Since(*start)
	}
	r.mu.Unlock()
}

func (r *timingRecorder) gotConn(info httptrace.GotConnInfo) {
	r.mu.Lock()
	if r.wrote {
		r.retried++
		r.wrote = false
	}
	r.reused = info.Reused
	if info.Reused {
		r.tm.DNS, r.tm.Connect, r.tm.TLS = 0, 0, 0
	}
	r.mu.Unlock()
}

func (r *timingRecorder) result() (Timings, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tm, r.reused
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}

// setupTimed are the variables timed from the start of a request, before its connection
// was opened: on a new connection they include the DNS lookup, the TCP connect and the TLS
// handshake, on a kept-alive one none of it.
var setupTimed = [...]string{"duration_ms", "ttfb_ms"}

func isSetupTimed(name string) bool { return name == setupTimed[0] || name == setupTimed[1] }

// connectionSetup is how much of a run's setupTimed variables went on opening connections:
// a script journey's setup_ms, an HTTP answer's dns_ms + connect_ms + tls_ms (0 on a
// kept-alive connection). false for the other kinds' runs: a tcp, websocket or grpc run
// opens its own connection every time, scheduled or not, so theirs compare as they are.
func connectionSetup(vars map[string]any) (float64, bool) {
	if s, ok := asFloat(vars["setup_ms"]); ok {
		return s, true
	}
	if _, http := vars["conn_reused"].(bool); !http {
		return 0, false
	}
	var sum float64
	for _, k := range [...]string{"dns_ms", "connect_ms", "tls_ms"} {
		if f, ok := asFloat(vars[k]); ok {
			sum += f
		}
	}
	return sum, true
}

// lessSetup is a time less the connection setup within it, to the microsecond (the *_ms
// variables' precision), never below 0.
func lessSetup(ms, setup float64) float64 {
	return max(math.Round((ms-setup)*1000)/1000, 0)
}

// ms converts a duration to float milliseconds, the unit of every *_ms variable.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
