package checks

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// tcpServer accepts loopback connections and hands each to handle; it stops, and waits
// for its handlers, when the test ends. Handlers that wait must also watch done.
func tcpServer(t *testing.T, handle func(c net.Conn, done <-chan struct{})) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(done)
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				stop := make(chan struct{})
				defer close(stop)
				go func() { // a handler blocked in a read ends when the test does
					select {
					case <-done:
						c.Close()
					case <-stop:
					}
				}()
				handle(c, done)
			}()
		}
	}()
	return ln.Addr().String()
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	return strings.TrimPrefix(closedURL(t), "http://")
}

// redis answers PING with +PONG, like the servers a tcp check most often watches.
func redis(pong string) func(net.Conn, <-chan struct{}) {
	return func(c net.Conn, _ <-chan struct{}) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if strings.TrimSpace(line) == "PING" {
				fmt.Fprintf(c, "%s\r\n", pong)
			}
		}
	}
}

// silent accepts and never says anything: the hostile server of issue 19.
func silent(c net.Conn, done <-chan struct{}) { <-done }

func tcpCheck(addr, extra string) string {
	return fmt.Sprintf(`
checks:
  - name: t
    kind: tcp
    timeout: 2s
    address: %q
%s`, addr, extra)
}

const pingSteps = `    steps:
      - send: "PING\r\n"
      - expect: "^\\+PONG$"
`

func TestTCPConnectAndExchange(t *testing.T) {
	addr := tcpServer(t, redis("+PONG"))
	res := run(t, buildOne(t, tcpCheck(addr, pingSteps+`    assert: ["expects == 1", "connect_ms >= 0", "last_line == '+PONG'", "!tls"]`)), Input{})
	wantOutcome(t, res, Pass)
	if !strings.Contains(strings.Join(res.Transcript, "\n"), "> PING") {
		t.Errorf("transcript lacks what was sent: %q", res.Transcript)
	}

	// Connected without steps: the connection is the measurement.
	wantOutcome(t, run(t, buildOne(t, tcpCheck(addr, "")), Input{}), Pass)
}

func TestTCPWrongAnswerFails(t *testing.T) {
	addr := tcpServer(t, func(c net.Conn, _ <-chan struct{}) {
		_, _ = bufio.NewReader(c).ReadString('\n')
		fmt.Fprint(c, "-ERR NOAUTH Authentication required\r\n")
	})
	res := run(t, buildOne(t, tcpCheck(addr, pingSteps)), Input{})
	wantOutcome(t, res, Fail, `steps[1]: no line matched "^\\+PONG$"`, "the server closed the connection", "-ERR NOAUTH")
}

func TestTCPUnreachableIsError(t *testing.T) {
	res := run(t, buildOne(t, tcpCheck(closedAddr(t), pingSteps)), Input{})
	wantOutcome(t, res, Error, "could not connect to 127.0.0.1:")
}

// A server that accepts and never answers: the expect ends at the check's timeout, as a
// failure that says nothing came.
func TestTCPSilentServerFailsWithinTimeout(t *testing.T) {
	addr := tcpServer(t, silent)
	c := buildOne(t, strings.Replace(tcpCheck(addr, pingSteps), "timeout: 2s", "timeout: 300ms", 1))
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "no complete line arrived before the check's timeout", "read no line at all")
}

// A server that streams one endless line cannot make vigil buffer without end.
func TestTCPEndlessLineFails(t *testing.T) {
	addr := tcpServer(t, func(c net.Conn, _ <-chan struct{}) {
		chunk := []byte(strings.Repeat("x", 4096))
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	res := run(t, buildOne(t, tcpCheck(addr, `    steps: [{expect: "^OK"}]`+"\n")), Input{})
	wantOutcome(t, res, Fail, "longer than 64 KiB")
}

func TestTCPImplicitTLS(t *testing.T) {
	ca := newTestCA(t)
	cfg := serverTLS(ca.leaf(t, 90*24*time.Hour))
	addr := tcpServer(t, func(c net.Conn, done <-chan struct{}) { redis("+PONG")(tls.Server(c, cfg), done) })
	extra := fmt.Sprintf("    tls: true\n    tls_config: {ca_file: %q}\n%s    assert: [\"tls\", \"verified\", \"cert_expiry_days > 80\", \"expects == 1\"]\n", ca.pemFile, pingSteps)
	wantOutcome(t, run(t, buildOne(t, tcpCheck(addr, extra)), Input{}), Pass)

	// Without the CA the chain does not verify: the run fails before any step, as a
	// client would refuse the connection.
	res := run(t, buildOne(t, tcpCheck(addr, "    tls: true\n"+pingSteps)), Input{})
	wantOutcome(t, res, Fail, "is not valid for 127.0.0.1", "unknown authority")
}

// mailServer speaks enough SMTP, IMAP or POP3 for a STARTTLS upgrade, then answers one
// command over TLS.
func mailServer(proto string, cfg *tls.Config) func(net.Conn, <-chan struct{}) {
	return func(c net.Conn, _ <-chan struct{}) {
		r := bufio.NewReader(c)
		say := func(s string) { fmt.Fprint(c, s+"\r\n") }
		read := func() string { l, _ := r.ReadString('\n'); return strings.TrimSpace(l) }
		switch proto {
		case "smtp":
			say("220-mail.test ESMTP")
			say("220 ready")
			if !strings.HasPrefix(read(), "EHLO") {
				return
			}
			say("250-mail.test")
			say("250-STARTTLS")
			say("250 8BITMIME")
			if read() != "STARTTLS" {
				return
			}
			say("220 go ahead")
		case "imap":
			say("* OK [CAPABILITY IMAP4rev1 STARTTLS] ready")
			tag, _, _ := strings.Cut(read(), " ")
			say(tag + " OK begin TLS")
		case "pop3":
			say("+OK POP3 ready")
			if read() != "STLS" {
				return
			}
			say("+OK begin TLS")
		}
		redis("+PONG")(tls.Server(c, cfg), nil)
	}
}

func TestTCPStartTLS(t *testing.T) {
	ca := newTestCA(t)
	cfg := serverTLS(ca.leaf(t, 30*24*time.Hour))
	for _, proto := range []string{"smtp", "imap", "pop3"} {
		t.Run(proto, func(t *testing.T) {
			addr := tcpServer(t, mailServer(proto, cfg))
			extra := fmt.Sprintf("    starttls: %s\n    tls_config: {ca_file: %q}\n%s    assert: [\"tls\", \"verified\", \"expects == 1\"]\n", proto, ca.pemFile, pingSteps)
			wantOutcome(t, run(t, buildOne(t, tcpCheck(addr, extra)), Input{}), Pass)
		})
	}
}

func TestTCPStartTLSRefused(t *testing.T) {
	addr := tcpServer(t, func(c net.Conn, _ <-chan struct{}) {
		r := bufio.NewReader(c)
		fmt.Fprint(c, "220 ready\r\n")
		_, _ = r.ReadString('\n')
		fmt.Fprint(c, "250 mail.test\r\n")
		_, _ = r.ReadString('\n')
		fmt.Fprint(c, "454 TLS not available due to temporary reason\r\n")
	})
	res := run(t, buildOne(t, tcpCheck(addr, "    starttls: smtp\n")), Input{})
	wantOutcome(t, res, Fail, "smtp STARTTLS was refused", "454 TLS not available")
}

func TestTCPConfigErrors(t *testing.T) {
	for _, tc := range []struct{ extra, want string }{
		{"    starttls: smtps\n", `checks[0].starttls: "smtps" is not a STARTTLS protocol`},
		{"    tls: true\n    starttls: smtp\n", "checks[0].tls: tls and starttls are both set"},
		{"    tls_config: {insecure_skip_verify: true}\n", "tls_config is set but the connection never speaks TLS"},
		{"    steps: [{send: a, expect: b}]\n", "checks[0].steps[0]: a step has both send and expect"},
		{"    steps: [{expect: '('}]\n", "checks[0].steps[0].expect: bad regex"},
		{"    steps: [{}]\n", "checks[0].steps[0]: empty step"},
		{"    assert: ['certificate_days > 3']\n", "checks[0].assert[0]"},
	} {
		wantBuildError(t, tcpCheck("127.0.0.1:6379", tc.extra), tc.want)
	}
	wantBuildError(t, tcpCheck("127.0.0.1", ""), `checks[0].address: "127.0.0.1" is not host:port`)
	wantBuildError(t, tcpCheck("127.0.0.1:0", ""), "no valid port")
}

// A plain connection has no certificate: an assertion over one is not judged, and the
// run is inconclusive rather than passed.
func TestTCPPlainHasNoCertificate(t *testing.T) {
	addr := tcpServer(t, redis("+PONG"))
	res := run(t, buildOne(t, tcpCheck(addr, `    assert: ["cert_expiry_days > 14"]`+"\n")), Input{})
	wantOutcome(t, res, Inconclusive, "the connection is plain TCP")
}

// FuzzTCPLines: whatever a server sends, lines come back bounded, without line endings,
// and reading stops with an error instead of growing.
func FuzzTCPLines(f *testing.F) {
	f.Add([]byte("+PONG\r\n-ERR x\n"))
	f.Add([]byte("no newline at all"))
	f.Add([]byte("\r\n\n\r\r\n"))
	f.Add(bytes.Repeat([]byte("x"), 70<<10))
	f.Fuzz(func(t *testing.T, data []byte) {
		run := &Run{Vars: map[string]any{}, Transcript: newRunTranscript(nil)}
		lr := newLineReader(bytes.NewReader(data), run)
		for i := 0; ; i++ {
			s, err := lr.line()
			if err != nil {
				return
			}
			if len(s) > tcpMaxLine || strings.Contains(s, "\n") {
				t.Fatalf("line %d: %d bytes, newline inside: %v", i, len(s), strings.Contains(s, "\n"))
			}
			if i > len(data) {
				t.Fatalf("more lines (%d) than bytes (%d)", i, len(data))
			}
		}
	})
}

// A server that drips a byte at a time and never ends the line, and one that resets the
// connection: each ends within the timeout with a reason.
func TestTCPDripAndReset(t *testing.T) {
	drip := tcpServer(t, func(c net.Conn, done <-chan struct{}) {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if _, err := c.Write([]byte("+")); err != nil {
					return
				}
			}
		}
	})
	c := buildOne(t, strings.Replace(tcpCheck(drip, pingSteps), "timeout: 2s", "timeout: 300ms", 1))
	wantOutcome(t, run(t, c, Input{}), Fail, "before the check's timeout")

	reset := tcpServer(t, func(c net.Conn, _ <-chan struct{}) {
		_, _ = bufio.NewReader(c).ReadString('\n')
		_ = c.(*net.TCPConn).SetLinger(0) // close with RST
	})
	wantOutcome(t, run(t, buildOne(t, tcpCheck(reset, pingSteps)), Input{}), Fail, "the server reset the connection")
}

// A banner that arrives in pieces is one line. A load balancer that accepts and closes at
// once (no healthy backend) passes a check with no steps, the connect being all it
// measures; an expect tells the two apart.
func TestTCPBannerInPiecesAndAcceptClose(t *testing.T) {
	pieces := tcpServer(t, func(c net.Conn, done <-chan struct{}) {
		for _, p := range []string{"220 mail", ".test ES", "MTP ready\r", "\n"} {
			if _, err := c.Write([]byte(p)); err != nil {
				return
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		<-done
	})
	res := run(t, buildOne(t, tcpCheck(pieces, `    steps: [{expect: "^220 mail\\.test ESMTP ready$"}]`+"\n")), Input{})
	wantOutcome(t, res, Pass)

	closes := tcpServer(t, func(net.Conn, <-chan struct{}) {})
	wantOutcome(t, run(t, buildOne(t, tcpCheck(closes, "")), Input{}), Pass)
	res = run(t, buildOne(t, tcpCheck(closes, `    steps: [{expect: "^220 "}]`+"\n")), Input{})
	wantOutcome(t, res, Fail, `steps[0]: no line matched "^220 "`, "(read no line at all)")
}
