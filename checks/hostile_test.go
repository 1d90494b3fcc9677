package checks_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/checks"
)

// rawServer accepts TCP connections, reads each one's request headers and hands it to
// serve (an answer before the request is not an answer); it stops with the test.
func rawServer(t *testing.T, serve func(c net.Conn)) string { return listen(t, true, serve) }

// listen accepts TCP connections and hands each to serve, after reading its HTTP request
// when readRequest says so.
func listen(t *testing.T, readRequest bool, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if readRequest {
					if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
						return
					}
				}
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// dnsServer answers every query on a loopback UDP port: NXDOMAIN, or nothing at all.
func dnsServer(t *testing.T, answer bool) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if !answer || n < 12 {
				continue
			}
			msg := append([]byte(nil), buf[:n]...)
			msg[2] |= 0x80                 // QR: a response
			msg[3] = (msg[3] & 0xf0) | 0x3 // RCODE 3: NXDOMAIN
			_, _ = pc.WriteTo(msg, from)
		}
	}()
	return pc.LocalAddr().String()
}

// TestHostileTargets points a check at targets that misbehave in every way a network
// can: each run must end within its timeout (plus scheduling slack), with an outcome and a
// reason that say what happened.
func TestHostileTargets(t *testing.T) {
	const timeout = time.Second
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })

	silent := rawServer(t, func(c net.Conn) { <-block })
	drip := rawServer(t, func(c net.Conn) {
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
		for {
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
			select {
			case <-block:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	dripHeaders := rawServer(t, func(c net.Conn) {
		for _, b := range []byte("HTTP/1.1 200 OK\r\nX-Slow: " + strings.Repeat("a", 1000)) {
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
			select {
			case <-block:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	hugeHeaders := rawServer(t, func(c net.Conn) {
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\n")
		for i := range 10_000 {
			if _, err := fmt.Fprintf(c, "X-Pad-%d: %s\r\n", i, strings.Repeat("a", 200)); err != nil {
				return
			}
		}
	})
	resetMidBody := rawServer(t, func(c net.Conn) {
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("x", 1000))
		time.Sleep(50 * time.Millisecond)
		_ = c.(*net.TCPConn).SetLinger(0) // close with RST
	})
	tlsHang := listen(t, false, func(c net.Conn) { <-block }) // accepts, never speaks TLS
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestSpeed)
	zeros := make([]byte, 1<<20)
	for range 64 { // 64 MiB of zeros in a few hundred KiB
		_, _ = zw.Write(zeros)
	}
	zw.Close()
	var infiniteSent atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/infinite", func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("y"), 32<<10)
		for {
			n, err := w.Write(chunk)
			infiniteSent.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/bomb", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(bomb.Bytes())
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	app := httptest.NewServer(mux)
	defer app.Close()
	badTLS := httptest.NewTLSServer(mux) // a certificate no one signed
	defer badTLS.Close()

	cases := []struct {
		name, url string
		assert    string
		outcome   checks.Outcome
		want      string // in the first reason (error) or the transcript (measured)
		resolver  string // a loopback DNS server to use
		// noAnswer: an error in which the service gave no answer (Result.NoAnswer), not
		// vigil's trouble
		noAnswer bool
	}{
		{name: "never answers", url: "http://" + silent + "/", outcome: checks.Error, want: "timed out", noAnswer: true},
		{name: "drips its body", url: "http://" + drip + "/", outcome: checks.Error, want: "timed out", noAnswer: true},
		{name: "drips its headers", url: "http://" + dripHeaders + "/", outcome: checks.Error, want: "timed out", noAnswer: true},
		{name: "infinite body", url: app.URL + "/infinite", assert: "body_truncated", outcome: checks.Pass, want: "cut at the 1048576-byte cap"},
		{name: "gzip bomb", url: app.URL + "/bomb", assert: "body_truncated", outcome: checks.Pass, want: "cut at the 1048576-byte cap"},
		{name: "redirect loop", url: app.URL + "/loop", outcome: checks.Fail, want: "stopped after 20 redirects"},
		{name: "huge headers", url: "http://" + hugeHeaders + "/", outcome: checks.Fail, want: "headers exceeded"}, // no client reads it
		{name: "bad TLS certificate", url: badTLS.URL + "/loop", outcome: checks.Error, want: "certificate"},
		{name: "TLS handshake never ends", url: "https://" + tlsHang + "/", outcome: checks.Error, want: "timed out", noAnswer: true},
		{name: "reset mid-body", url: "http://" + resetMidBody + "/", outcome: checks.Error, want: "the body broke off after 1000 bytes", noAnswer: true},
		{name: "unresolvable host", url: "http://vigil-hostile.invalid/", outcome: checks.Error, want: "no such host", resolver: dnsServer(t, true), noAnswer: true},
		{name: "DNS never answers", url: "http://vigil-hostile.invalid/", outcome: checks.Error, want: "timed out", resolver: dnsServer(t, false)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client := checks.NewHTTPClient("vigil-test")
			defer client.CloseIdle()
			if c.resolver != "" {
				client.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, "udp", c.resolver)
				}}
			}
			assert := ""
			if c.assert != "" {
				assert = fmt.Sprintf(", assert: [%q]", c.assert)
			}
			// Targets that hang get the short timeout, which the test is about; the others
			// answer at once, and a long one keeps a loaded machine from turning their answer
			// into a timeout.
			limit := timeout
			if c.want != "timed out" {
				limit = 15 * time.Second
			}
			cs := buildDeps(t, checks.Deps{HTTP: client}, c.url, fmt.Sprintf(
				`checks: [{name: hostile, kind: http, timeout: %s, retries: 0, request: {url: "${T}"}%s}]`, limit, assert))
			start := time.Now()
			r := cs["hostile"].Run(context.Background(), checks.Input{})
			took := time.Since(start)
			text := r.Summary() + "\n" + strings.Join(r.Transcript, "\n")
			if r.Outcome != c.outcome || !strings.Contains(text, c.want) {
				t.Errorf("%s, want %s mentioning %q:\n%s", r.Outcome, c.outcome, c.want, text)
			}
			if r.NoAnswer != c.noAnswer {
				t.Errorf("no answer from the service: %v, want %v (%s)", r.NoAnswer, c.noAnswer, r.Summary())
			}
			if took > limit+2*time.Second {
				t.Errorf("took %s with a %s timeout", took, limit)
			}
			silent := ""
			if r.NoAnswer {
				silent = " (no answer from the service)"
			}
			t.Logf("reliability: hostile target, %s: %s%s after %s (timeout %s): %s", c.name, r.Outcome, silent,
				took.Round(time.Millisecond), limit, checks.Trim(r.Summary(), 110))
		})
	}
	if n := infiniteSent.Load(); n > 64<<20 {
		t.Errorf("the infinite body was read for %d MiB", n>>20)
	}
}
