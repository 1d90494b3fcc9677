package checks

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"syscall"
	"time"

	"github.com/expr-lang/expr/types"
	"github.com/vigil-monitor/vigil/configs"
)

// tcpVars are the tcp kind's variables; the TLS ones are set when the connection speaks TLS.
var tcpVars = withVars(types.Map{
	"connect_ms": types.Float64,
	"tls":        types.Bool,
	"expects":    types.Int,
	"last_line":  types.String,
}, tlsVars)

// tcpMaxLine bounds one line read from the server: a peer that never sends a newline
// cannot make vigil buffer without end.
const tcpMaxLine = 64 << 10

// TCP is the tcp kind: connect, optionally speak TLS (from the first byte or after
// STARTTLS), then send lines and wait for lines matching regular expressions. Each run
// opens its own connection, so a deploy's verification never reuses one from before it.
type TCP struct {
	address  string
	tlsOn    bool
	startTLS string
	tls      tlsDialer
	steps    []tcpStep
}

type tcpStep struct {
	send   string
	expect *regexp.Regexp
}

// dialTCP connects to address within ctx and makes every later read and write on the
// connection end when ctx does.
func dialTCP(ctx context.Context, address string, run *Run) (net.Conn, error) {
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, noAnswer(fmt.Errorf("could not connect to %s: %w", address, err))
	}
	run.Vars["connect_ms"] = ms(time.Since(start))
	run.Transcript.Printf("connected to %s (%s) in %s", address, conn.RemoteAddr(), time.Since(start).Round(time.Microsecond))
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	return &ctxConn{Conn: conn, stop: stop}, nil
}

// ctxConn stops its context hook when closed.
type ctxConn struct {
	net.Conn
	stop func() bool
}

func (c *ctxConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// lineReader reads bounded lines and keeps the transcript of what it read.
type lineReader struct {
	r   *bufio.Reader
	run *Run
	n   int
}

func newLineReader(conn io.Reader, run *Run) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(conn, 4096), run: run}
}

// line returns the next line without its line ending.
func (l *lineReader) line() (string, error) {
	var buf []byte
	for {
		part, err := l.r.ReadSlice('\n')
		buf = append(buf, part...)
		if len(buf) > tcpMaxLine {
			return "", fmt.Errorf("the server sent a line longer than %d KiB", tcpMaxLine>>10)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && (len(buf) == 0 || !errors.Is(err, io.EOF)) {
			return "", err
		}
		s := string(bytes.TrimRight(buf, "\r\n"))
		l.n++
		l.run.Transcript.Printf("< %s", Trim(s, 200))
		return s, nil
	}
}

// expect reads lines until one matches re; it returns the last line read.
func (l *lineReader) expect(re *regexp.Regexp) (string, error) {
	last := ""
	for {
		s, err := l.line()
		if err != nil {
			return last, err
		}
		last = s
		if re.MatchString(s) {
			return s, nil
		}
	}
}

// send writes s and records it.
func send(conn net.Conn, s string, run *Run) error {
	run.Transcript.Printf("> %s", Trim(s, 200))
	if _, err := io.WriteString(conn, s); err != nil {
		return fmt.Errorf("sending %q: %w", Trim(s, 40), err)
	}
	return nil
}

// readErr says why a read ended, in the words of a run's reason.
func readErr(err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "no complete line arrived before the check's timeout"
	case errors.Is(err, io.EOF):
		return "the server closed the connection"
	case errors.Is(err, syscall.ECONNRESET):
		return "the server reset the connection"
	}
	return err.Error()
}

// startTLS upgrades a plain connection with the protocol's STARTTLS exchange. Nothing is
// left buffered when it returns: each protocol waits for the client's handshake.
func startTLS(conn net.Conn, proto string, run *Run) error {
	lr := newLineReader(conn, run)
	var steps []tcpStep
	switch proto {
	case "smtp":
		// Multi-line replies continue with "250-"; the last line has a space after the code.
		steps = []tcpStep{{expect: regexp.MustCompile(`^220 `)}, {send: "EHLO vigil\r\n"}, {expect: regexp.MustCompile(`^250 `)},
			{send: "STARTTLS\r\n"}, {expect: regexp.MustCompile(`^[2-5]\d\d `)}}
	case "imap":
		steps = []tcpStep{{expect: regexp.MustCompile(`^\* OK`)}, {send: "v1 STARTTLS\r\n"}, {expect: regexp.MustCompile(`^v1 `)}}
	case "pop3":
		steps = []tcpStep{{expect: regexp.MustCompile(`^\+OK`)}, {send: "STLS\r\n"}, {expect: regexp.MustCompile(`^[+-]`)}}
	default:
		return fmt.Errorf("no STARTTLS for protocol %q", proto)
	}
	last := ""
	for _, st := range steps {
		if st.send != "" {
			if err := send(conn, st.send, run); err != nil {
				return err
			}
			continue
		}
		s, err := lr.expect(st.expect)
		if err != nil {
			return fmt.Errorf("%s STARTTLS: waiting for %q: %s", proto, st.expect, readErr(err))
		}
		last = s
	}
	if !regexp.MustCompile(`^(220 |v1 OK|\+OK)`).MatchString(last) {
		return fmt.Errorf("%s STARTTLS was refused: %q", proto, Trim(last, 200))
	}
	if lr.r.Buffered() > 0 {
		return fmt.Errorf("%s STARTTLS: the server sent data before the TLS handshake", proto)
	}
	return nil
}

// Probe implements Prober.
func (t *TCP) Probe(ctx context.Context, run *Run) error {
	var conn net.Conn
	conn, err := dialTCP(ctx, t.address, run)
	if err != nil {
		return err
	}
	defer conn.Close()
	run.Vars["tls"] = false
	run.Vars["expects"] = 0
	run.Vars["last_line"] = ""
	switch {
	case t.startTLS != "":
		if err := startTLS(conn, t.startTLS, run); err != nil {
			run.Failf("%v", err)
			return nil
		}
		fallthrough
	case t.tlsOn:
		tc, err := t.tls.handshake(ctx, conn, run)
		if err != nil {
			return err
		}
		run.Vars["tls"] = true
		if len(run.failures) > 0 {
			return nil // an invalid certificate: a real client stops here too
		}
		conn = tc
	default:
		run.Unmeasured("the connection is plain TCP (set tls: true or starttls)", tlsVarNames()...)
	}
	return t.exchange(conn, run)
}

// exchange runs the steps; the first expect that is not met fails the run.
func (t *TCP) exchange(conn net.Conn, run *Run) error {
	lr := newLineReader(conn, run)
	expects := 0
	for i, st := range t.steps {
		if st.expect == nil {
			if err := send(conn, st.send, run); err != nil {
				return fmt.Errorf("steps[%d]: %w", i, err)
			}
			continue
		}
		last, err := lr.expect(st.expect)
		run.Vars["last_line"] = last
		if err != nil {
			seen := "no line at all"
			if lr.n > 0 {
				seen = fmt.Sprintf("%d line(s), the last %q", lr.n, Trim(last, 120))
			}
			run.Failf("steps[%d]: no line matched %q: %s (read %s)", i, st.expect, readErr(err), seen)
			return nil
		}
		expects++
		run.Vars["expects"] = expects
	}
	return nil
}

func tlsVarNames() []string {
	out := make([]string, 0, len(tlsVars))
	for k := range tlsVars {
		out = append(out, k)
	}
	return out
}

// tcpKind registers the tcp kind (kinds.go).
type tcpKind struct{}

func (tcpKind) vars() types.Map { return tcpVars }

// Instrument implements Instrumented: blackbox_exporter's certificate expiry, for tcp
// checks that speak TLS.
func (tcpKind) Instrument(in Instruments) *Recorder { return instrumentTLS(in) }

func (tcpKind) build(b *builder, c *configs.Check) Prober {
	s := c.Spec.(*configs.TCPSpec)
	t := &TCP{address: s.Address, tlsOn: s.TLS, startTLS: s.StartTLS}
	if s.UsesTLS() {
		d, err := newTLSDialer(s.TLSConfig, s.Address)
		if err != nil {
			b.errf(c.Path()+".tls_config.ca_file", "point it at a PEM file of CA certificates", "%v", err)
			return nil
		}
		t.tls = d
	}
	for _, st := range s.Steps {
		step := tcpStep{send: st.Send}
		if st.Expect != "" {
			step.expect = regexp.MustCompile(st.Expect) // validated when the config loaded
		}
		t.steps = append(t.steps, step)
	}
	return t
}
