package alerting

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/text"
)

// defaultEmailTimeout bounds one attempt: the whole SMTP conversation.
const defaultEmailTimeout = 30 * time.Second

// Email sends one message per event over SMTP: submission with STARTTLS (port 587, the
// default) or implicit TLS (465), AUTH PLAIN or LOGIN only over TLS, a text and an HTML
// rendering of the evidence with the failure screenshots attached. Message-ID derives from the
// idempotency key, so a retry after a lost answer is the same message to a mail client;
// the follow-ups of an incident answer its first message sent (In-Reply-To, References),
// so clients thread them; which follow-ups go out is as for Teams (followUpSkipped).
type Email struct {
	base
	addr      string // host:port
	host      string
	from      *mail.Address
	to        []string // bare addresses, for RCPT TO
	toHeader  []string
	user      string
	password  string
	implicit  bool // TLS from the first byte (port 465)
	starttls  bool
	tlsConfig *tls.Config
}

// Email State keys.
const (
	mailRoot    = "message_id" // the Message-ID of the incident's first message
	mailSubject = "subject"    // and its subject, which the follow-ups answer
)

func newEmail(cfg *configs.Notifier, opts Options) (*Email, error) {
	p := "notifiers." + cfg.Name
	bad := func(key, format string, args ...any) error {
		return permanentf(nil, cfg.Name, "new", "%s.%s: "+format, append([]any{p, key}, args...)...)
	}
	if cfg.Host == "" {
		return nil, bad("host", "missing; set the SMTP server's host name")
	}
	port := cfg.Port
	if port == 0 {
		port = 587
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, bad("from", "%q is not a mail address", cfg.From)
	}
	if len(cfg.To) == 0 {
		return nil, bad("to", "missing; list the recipients")
	}
	m := &Email{base: newBase(cfg, opts, defaultEmailTimeout), addr: net.JoinHostPort(cfg.Host, strconv.Itoa(port)), host: cfg.Host,
		from: from, user: cfg.Username, password: cfg.Password.Value(), implicit: port == configs.SMTPSPort,
		starttls: cfg.StartTLS == nil || *cfg.StartTLS}
	for i, to := range cfg.To {
		a, err := mail.ParseAddress(to)
		if err != nil {
			return nil, bad("to["+strconv.Itoa(i)+"]", "%q is not a mail address", to)
		}
		m.to, m.toHeader = append(m.to, a.Address), append(m.toHeader, a.String())
	}
	if m.user != "" && !m.implicit && !m.starttls {
		return nil, bad("starttls", "false with a username: the password would cross the network in clear")
	}
	m.tlsConfig = &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.TLS.InsecureSkipVerify}
	if cfg.TLS.ServerName != "" {
		m.tlsConfig.ServerName = cfg.TLS.ServerName
	}
	if cfg.TLS.CAFile != "" {
		pem, err := os.ReadFile(cfg.TLS.CAFile)
		pool := x509.NewCertPool()
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			return nil, bad("tls.ca_file", "cannot read PEM certificates from %s", cfg.TLS.CAFile)
		}
		m.tlsConfig.RootCAs = pool
	}
	return m, nil
}

// Wants: as Teams.
func (m *Email) Wants(event string) bool { return m.wantsIncident(event) }

// Deliver sends the event's message once.
func (m *Email) Deliver(ctx context.Context, ev *Event, st State) error {
	if err := checkEvent(m.name, ev); err != nil {
		return err
	}
	if st == nil {
		st = State{}
	}
	if err := m.followUpSkipped(ev, st); err != nil {
		return err
	}
	msg := m.message(ev, st, m.opts.Now())
	if m.dryRun {
		return m.dryRunError(ev, st, "SMTP", "smtp://"+m.addr, "", ev.Name+" for "+describeSubject(ev)+" to "+fmt.Sprint(m.to))
	}
	attempting(ev, st)
	ctx, cancel := m.attempt(ctx)
	defer cancel()
	if err := m.send(ctx, msg.data); err != nil {
		return err
	}
	if st[mailRoot] == "" {
		st[mailRoot], st[mailSubject] = msg.id, msg.subject
	}
	told(ev, st)
	return nil
}

// send holds one SMTP conversation: connect, (STARTTLS), (AUTH), MAIL, RCPT, DATA, QUIT,
// every step bounded by ctx.
func (m *Email) send(ctx context.Context, data []byte) error {
	step := "connect"
	fail := func(err error) error { return m.classify(ctx, step, err) }
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) }) // the caller gave up
	defer stop()
	if m.implicit {
		step = "TLS handshake"
		tc := tls.Client(conn, m.tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(err)
		}
		conn = tc
	}
	step = "greeting"
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	// EHLO with the machine's name: some servers refuse the "localhost" net/smtp says.
	if name, err := os.Hostname(); err == nil && name != "" && !strings.ContainsAny(name, " \r\n") {
		step = "EHLO"
		if err := c.Hello(name); err != nil {
			return fail(err)
		}
	}
	if !m.implicit && m.starttls {
		step = "STARTTLS"
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return permanentf(nil, m.name, m.op(step), "the server does not offer STARTTLS; use port 465 for implicit TLS, or starttls: false only for a relay you trust")
		}
		if err := c.StartTLS(m.tlsConfig); err != nil {
			return fail(err)
		}
	}
	if m.user != "" {
		step = "AUTH"
		auth, err := m.auth(c)
		if err != nil {
			return err
		}
		if err := c.Auth(auth); err != nil {
			return fail(err)
		}
	}
	step = "MAIL FROM"
	if err := c.Mail(m.from.Address); err != nil {
		return fail(err)
	}
	// A mailbox the server refuses for good (550: someone who left) does not cost the
	// others their page: the message goes to the accepted ones, and the refusal is logged.
	// A refusal for now (4xx) retries the whole message; all refused fails it.
	var refused []string
	var lastRefusal error
	for _, to := range m.to {
		step = "RCPT TO " + to
		if err := c.Rcpt(to); err != nil {
			var tp *textproto.Error
			if !errors.As(err, &tp) || tp.Code < 500 {
				return fail(err)
			}
			refused, lastRefusal = append(refused, to), fail(err)
		}
	}
	if len(refused) == len(m.to) {
		return lastRefusal
	}
	if len(refused) > 0 {
		m.log.Warn("email sent to some recipients: the server refused the others for good", "refused", refused, "error", lastRefusal)
	}
	step = "DATA"
	w, err := c.Data()
	if err != nil {
		return fail(err)
	}
	if _, err := w.Write(data); err != nil {
		return fail(err)
	}
	if err := w.Close(); err != nil {
		return fail(err)
	}
	_ = c.Quit() // the message is accepted; a lost goodbye does not undo that
	return nil
}

// auth is the mechanism the server offers that vigil speaks: PLAIN, or else LOGIN (what
// Exchange servers, smtp.office365.com among them, and some relays offer alone).
func (m *Email) auth(c *smtp.Client) (smtp.Auth, error) {
	_, offered := c.Extension("AUTH")
	mechs := strings.Fields(strings.ToUpper(offered))
	switch {
	case slices.Contains(mechs, "PLAIN"):
		return smtp.PlainAuth("", m.user, m.password, m.host), nil
	case slices.Contains(mechs, "LOGIN"):
		return &loginAuth{user: m.user, password: m.password}, nil
	}
	what := "no AUTH mechanism"
	if len(mechs) > 0 {
		what = "only AUTH " + strings.Join(mechs, ", ")
	}
	return nil, permanentf(nil, m.name, m.op("AUTH"), "the server offers %s; vigil authenticates with PLAIN or LOGIN: enable one of them "+
		"for the account, or remove username and password for a relay that needs none", text.Clip(what, 200))
}

// loginAuth is AUTH LOGIN, the mechanism Exchange servers offer without PLAIN: the server
// prompts for the user name, then the password, and the client answers each (net/smtp
// base64-encodes the answers and decodes the prompts). Like net/smtp's PlainAuth it
// refuses to run without TLS, and more strictly: not even to localhost.
type loginAuth struct {
	user, password string
	step           int
}

func (a *loginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS {
		return "", nil, errors.New("AUTH LOGIN refused without TLS: the password would cross the network in clear")
	}
	return "LOGIN", nil, nil
}

// Next answers a prompt by what it asks for ("Username:", "Password:", as servers send
// them), or by its place when it names neither: the user name first, the password second.
func (a *loginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	if a.step++; a.step > 2 {
		return nil, fmt.Errorf("AUTH LOGIN: a third prompt, after the user name and the password: %q", text.Clip(string(fromServer), 100))
	}
	prompt := strings.ToLower(string(fromServer))
	if strings.Contains(prompt, "pass") || !strings.Contains(prompt, "user") && a.step == 2 {
		return []byte(a.password), nil
	}
	return []byte(a.user), nil
}

func (m *Email) op(step string) string { return "SMTP " + m.addr + " " + step }

// smtpHints say what to do about the replies a configuration causes, at any step but
// AUTH (authHint) and, for 550 and 553, at MAIL FROM and RCPT TO alone: a 550 is a
// refused mailbox there, and at AUTH Exchange Online's "basic authentication disabled".
var smtpHints = map[int]string{
	530: "the server wants authentication: set username and password",
	534: "the server wants a stronger authentication mechanism or an app password",
	550: "the server refused a mailbox: check from and to",
	553: "the server refused an address: check from (the account may only send as itself)",
	554: "the server refused the message",
}

// smtpHint is what to do about a reply to step.
func smtpHint(step string, code int, msg string) string {
	if step == "AUTH" {
		return authHint(code, msg)
	}
	if (code == 550 || code == 553) && step != "MAIL FROM" && !strings.HasPrefix(step, "RCPT TO") {
		return ""
	}
	return smtpHints[code]
}

// basicAuthOff is what a server says when the provider has turned password authentication
// off: Exchange Online answers 535 5.7.139 or 550 5.7.30, and its words name it.
var basicAuthOff = []string{"5.7.139", "5.7.30", "basic auth"}

// authHint is what to do about a refused AUTH: the credentials, or a provider that has
// turned password authentication off, which vigil cannot get past (it speaks no OAuth).
func authHint(code int, msg string) string {
	lower := strings.ToLower(msg)
	switch {
	case code < 500:
		return ""
	case slices.ContainsFunc(basicAuthOff, func(s string) bool { return strings.Contains(lower, s) }):
		return "the provider has disabled password (basic) authentication for SMTP; vigil authenticates with a password only " +
			"(OAuth is not supported): enable authenticated SMTP for this account (Microsoft 365: SMTP AUTH), or send through a relay"
	case code == 534:
		return smtpHints[534]
	}
	return "the server refused the credentials: check username and password; if they are right, the provider may have " +
		"disabled password (basic) authentication for SMTP, and vigil does not support OAuth"
}

// classify turns an SMTP step's failure into an Error: 4xx replies are worth a retry, 5xx
// are not; a certificate the client cannot trust is configuration; no answer is retried.
// The password never appears: net/smtp's errors do not carry it.
func (m *Email) classify(ctx context.Context, step string, err error) error {
	op := m.op(step)
	var tp *textproto.Error
	if errors.As(err, &tp) {
		e := &Error{Notifier: m.name, Op: op, Permanent: tp.Code >= 500, msg: fmt.Sprintf("answered %d %s", tp.Code, quoteBody([]byte(tp.Msg)))}
		if h := smtpHint(step, tp.Code, tp.Msg); h != "" {
			e.msg += " (" + h + ")"
		}
		return e
	}
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	if errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) {
		return permanentf(err, m.name, op, "the server's certificate is not trusted (set tls.ca_file to its CA, or tls.server_name to the name it is issued for)")
	}
	var ne net.Error
	if ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
		return retryablef(err, m.name, op, "no answer within the %s per-attempt timeout (or the caller's deadline)", m.timeout)
	}
	if step == "AUTH" && !errors.As(err, &ne) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		// net/smtp refuses PLAIN without TLS itself; any other local refusal is configuration.
		return permanentf(err, m.name, op, "authentication failed")
	}
	return retryablef(err, m.name, op, "failed")
}
