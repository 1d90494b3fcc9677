// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp) on 127.0.0.1 for
// tests: STARTTLS or implicit TLS with a certificate made for the test, AUTH PLAIN (or the
// mechanisms a test names: LOGIN, as Office 365 offers it), and the messages it accepted,
// with what the session looked like (TLS, the authenticated user and mechanism).
// It can refuse a step (AUTH, MAIL, RCPT, DATA) with an SMTP reply, as a real server does.
// Only tests import it.
package smtptest

import (
	"bytes"
	"crypto/tls"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/vigil-monitor/vigil/internal/selfsigned"
)

// The credentials the server accepts.
const (
	Username = "vigil"
	Password = "smtp-test-password-0123"
)

// Options shape the server.
type Options struct {
	// ImplicitTLS: TLS from the first byte (port 465 style) instead of STARTTLS.
	ImplicitTLS bool
	// NoTLS: offer no STARTTLS at all (a relay without TLS).
	NoTLS bool
	// CertNames, when set, are the only names the server's certificate is for (no
	// address): a server reached at 127.0.0.1 by a name it is not issued for.
	CertNames []string
	// AuthMechanisms are the AUTH mechanisms the server offers (after TLS); nil is PLAIN.
	// It speaks PLAIN and LOGIN; any other it offers, it refuses when asked for.
	AuthMechanisms []string
}

// Message is an accepted message.
type Message struct {
	From string
	To   []string
	Data []byte
	// TLS: the session was encrypted when the message arrived.
	TLS bool
	// User is who authenticated ("" for nobody), and Mechanism how (PLAIN, LOGIN).
	User      string
	Mechanism string
	// ServerName is the name the client asked for in its TLS hello (SNI); "" for none.
	ServerName string
}

// Server is a running SMTP server.
type Server struct {
	// Addr is host:port.
	Addr string
	// CAFile is a PEM file with the certificate the server presents (its own CA).
	CAFile string

	srv    *smtp.Server
	mechs  []string
	mu     sync.Mutex
	msgs   []Message
	faults map[string][]*smtp.SMTPError
}

// Start starts a server for the test and stops it at the test's cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	cert, caFile := certificate(t, opts.CertNames)
	s := &Server{CAFile: caFile, faults: map[string][]*smtp.SMTPError{}, mechs: opts.AuthMechanisms}
	if s.mechs == nil {
		s.mechs = []string{sasl.Plain}
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{s: s, c: c}, nil }))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.MaxMessageBytes = 10 << 20
	srv.ErrorLog = log.New(io.Discard, "", 0)
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if !opts.NoTLS {
		srv.TLSConfig = tlsCfg
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.ImplicitTLS {
		ln = tls.NewListener(ln, tlsCfg)
	}
	s.Addr, s.srv = ln.Addr().String(), srv
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// Host and Port split Addr.
func (s *Server) Host() string { h, _, _ := net.SplitHostPort(s.Addr); return h }

// Port is the server's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Fail makes the next command of a step ("AUTH", "MAIL", "RCPT", "DATA") answer with an
// SMTP error, e.g. 451 (try again later) or 550 (no such mailbox). An AUTH fails once the
// client has given its credentials, right or wrong, as a server refuses an account:
// Exchange Online's 535 5.7.139 when basic authentication is disabled. A msg that starts
// with an enhanced status code ("5.7.139 Authentication unsuccessful") is sent with that
// code, as the server would; without one, go-smtp adds the generic X.0.0.
func (s *Server) Fail(step string, code int, msg string) {
	e := &smtp.SMTPError{Code: code, Message: msg}
	if m := enhanced.FindStringSubmatch(msg); m != nil {
		for i := range 3 {
			e.EnhancedCode[i], _ = strconv.Atoi(m[i+1])
		}
		e.Message = msg[len(m[0]):]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[step] = append(s.faults[step], e)
}

var enhanced = regexp.MustCompile(`^([245])\.(\d{1,3})\.(\d{1,3}) `)

func (s *Server) fault(step string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[step]
	if len(q) == 0 {
		return nil
	}
	s.faults[step] = q[1:]
	return q[0]
}

// Messages returns the accepted messages, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

type session struct {
	s    *Server
	c    *smtp.Conn
	user string
	mech string
	from string
	to   []string
}

func (se *session) AuthMechanisms() []string { return se.s.mechs }

func (se *session) Auth(mech string) (sasl.Server, error) {
	check := func(username, password string) error {
		if err := se.s.fault("AUTH"); err != nil {
			return err
		}
		if username != Username || password != Password {
			return smtp.ErrAuthFailed
		}
		se.user, se.mech = username, mech
		return nil
	}
	switch {
	case !slices.Contains(se.s.mechs, mech):
		return nil, smtp.ErrAuthUnknownMechanism
	case mech == sasl.Plain:
		return sasl.NewPlainServer(func(_, username, password string) error { return check(username, password) }), nil
	case mech == sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// loginServer is AUTH LOGIN with Office 365's prompts, "Username:" and "Password:", each
// answered with the value in base64 (go-smtp encodes the prompts and decodes the answers:
// an answer that is not base64 is refused there). It wants no initial response, so a
// client that passes has waited for the prompts.
type loginServer struct {
	check func(username, password string) error
	step  int
	user  string
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if response != nil {
			return nil, false, &smtp.SMTPError{Code: 501, Message: "AUTH LOGIN takes no initial response here"}
		}
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(response)
		return []byte("Password:"), false, nil
	}
	return nil, true, l.check(l.user, string(response))
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if err := se.s.fault("MAIL"); err != nil {
		return err
	}
	se.from = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := se.s.fault("RCPT"); err != nil {
		return err
	}
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := se.s.fault("DATA"); err != nil {
		return err
	}
	state, encrypted := se.c.TLSConnectionState()
	se.s.mu.Lock()
	se.s.msgs = append(se.s.msgs, Message{From: se.from, To: slices.Clone(se.to), Data: bytes.Clone(data), TLS: encrypted, User: se.user,
		Mechanism: se.mech, ServerName: state.ServerName})
	se.s.mu.Unlock()
	return nil
}

func (se *session) Reset()        { se.from, se.to = "", nil }
func (se *session) Logout() error { return nil }

// certificate makes a self-signed certificate for 127.0.0.1 and localhost (or for names
// only), and writes it as a PEM file clients can trust (tls.ca_file).
func certificate(t testing.TB, names []string) (tls.Certificate, string) {
	t.Helper()
	certPEM, keyPEM, err := selfsigned.Loopback("vigil smtptest")
	if names != nil {
		certPEM, keyPEM, err = selfsigned.Certificate("vigil smtptest", names, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "smtp-ca.pem")
	if err := os.WriteFile(file, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, file
}

// Silent is a listener that accepts connections and never says a word: an SMTP server
// that hangs before its greeting.
func Silent(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}
