package alerting_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/smtptest"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

func emailConfig(s *smtptest.Server) *configs.Notifier {
	return &configs.Notifier{Type: configs.NotifierEmail, Name: "mail", Host: s.Host(), Port: s.Port(),
		From: "vigil <vigil@example.com>", To: []string{"oncall@example.com", "Web Team <web@example.com>"},
		Username: smtptest.Username, Password: smtptest.Password, TLS: configs.TLS{CAFile: s.CAFile}}
}

// mailParts is a received message: its header and its parts by content type, decoded.
type mailParts struct {
	header mail.Header
	parts  map[string][]byte
	files  map[string][]byte
}

func parseMail(t *testing.T, data []byte) mailParts {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a mail message: %v\n%s", err, data)
	}
	out := mailParts{header: msg.Header, parts: map[string][]byte{}, files: map[string][]byte{}}
	var walk func(ct string, r io.Reader)
	walk = func(ct string, r io.Reader) {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			t.Fatalf("Content-Type %q: %v", ct, err)
		}
		if !strings.HasPrefix(mt, "multipart/") {
			body, _ := io.ReadAll(r)
			out.parts[mt] = body
			return
		}
		mr := multipart.NewReader(r, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatalf("multipart: %v", err)
			}
			if name := p.FileName(); name != "" {
				out.files[name], _ = io.ReadAll(p) // multipart decodes quoted-printable only; base64 below
				continue
			}
			walk(p.Header.Get("Content-Type"), p)
		}
	}
	walk(msg.Header.Get("Content-Type"), msg.Body)
	return out
}

// A failed deploy over STARTTLS with AUTH PLAIN: a text and HTML message with the evidence
// and the screenshot attached; the rollback's result and the resolving deploy answer it.
func TestEmailThreadOverSTARTTLS(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{})
	n := newNotifier(t, emailConfig(srv), nil)
	st := alerting.State{}
	for _, ev := range []*alerting.Event{deployFailed(), actionResult(), resolvedBy()} {
		if err := n.Deliver(t.Context(), ev, st); err != nil {
			t.Fatalf("%s: %v", ev.Name, err)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3", len(msgs))
	}
	for _, m := range msgs {
		if !m.TLS || m.User != smtptest.Username || m.From != "vigil@example.com" ||
			strings.Join(m.To, ",") != "oncall@example.com,web@example.com" {
			t.Errorf("session: TLS %v, user %q, from %q, to %v", m.TLS, m.User, m.From, m.To)
		}
	}
	first := parseMail(t, msgs[0].Data)
	if id := first.header.Get("Message-ID"); id != "<d-42.deploy_failed@example.com>" {
		t.Errorf("Message-ID %q", id)
	}
	if s := first.header.Get("Subject"); s != "[vigil] Deploy of web v2.1.0 in prod failed verification" {
		t.Errorf("Subject %q", s)
	}
	plain, html := string(first.parts["text/plain"]), string(first.parts["text/html"])
	for _, want := range []string{"v2.1.0", "prod", "abc1234", "TypeError: e.init is not a function",
		"http://vigil.example/runs/981", "4bf92f3577b34da6a3ce929d0e0e4736", "status == 200 was false", "screenshot attached", "4 of 6 checks passed",
		"https://wiki.example/runbooks/home", "https://ci.example/runs/7", "180 ms before the deploy"} {
		if !strings.Contains(plain, want) || !strings.Contains(html, want) {
			t.Errorf("the text or the HTML lacks %q:\n%s\n%s", want, plain, html)
		}
	}
	if !strings.Contains(plain, "Version: v2.1.0 · Environment: prod") || !strings.Contains(html, "<th align=\"left\" style=\"padding:2px 12px 2px 0\">Version</th><td>v2.1.0</td>") {
		t.Errorf("the facts are missing:\n%s\n%s", plain, html)
	}
	if !strings.Contains(html, `<a href="http://vigil.example/runs/981">Run</a>`) || !strings.Contains(html, `<a href="http://vigil.example/deploys/d-42">Status page</a>`) {
		t.Errorf("the HTML lacks the links:\n%s", html)
	}
	shot, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(first.files["home-screenshot.png"]), "\r\n", ""))
	if err != nil || !bytes.Equal(shot, png) {
		t.Errorf("the screenshot did not arrive intact (%d bytes, %v)", len(shot), err)
	}
	for i, m := range msgs[1:] {
		p := parseMail(t, m.Data)
		if p.header.Get("In-Reply-To") != "<d-42.deploy_failed@example.com>" || p.header.Get("References") != "<d-42.deploy_failed@example.com>" {
			t.Errorf("message %d does not answer the first: In-Reply-To %q", i+2, p.header.Get("In-Reply-To"))
		}
		if s := p.header.Get("Subject"); s != "Re: [vigil] Deploy of web v2.1.0 in prod failed verification" {
			t.Errorf("message %d: Subject %q", i+2, s)
		}
	}
	if !strings.Contains(string(parseMail(t, msgs[2].Data).parts["text/plain"]), "Resolved") {
		t.Error("the passing deploy should read as the resolution")
	}
}

// Port 465 speaks TLS from the first byte; a retry of the same event is the same message.
func TestEmailImplicitTLSAndSameMessageOnRetry(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{ImplicitTLS: true})
	n := newNotifier(t, emailConfig(srv), nil)
	alerting.ImplicitTLS(n)
	for range 2 {
		if err := n.Deliver(t.Context(), checkEvent(configs.EventCheckFailed, "3"), alerting.State{}); err != nil {
			t.Fatal(err)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != 2 || !msgs[0].TLS {
		t.Fatalf("%d messages (TLS %v)", len(msgs), len(msgs) > 0 && msgs[0].TLS)
	}
	a, b := parseMail(t, msgs[0].Data).header, parseMail(t, msgs[1].Data).header
	if a.Get("Message-ID") != b.Get("Message-ID") || a.Get("Message-ID") != "<check.home.3.check_failed@example.com>" {
		t.Errorf("Message-IDs %q and %q", a.Get("Message-ID"), b.Get("Message-ID"))
	}
}

// Text from a check cannot add a header.
func TestEmailHeaderInjection(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{})
	ev := deployFailed()
	ev.Deploy.Version = "v2\r\nBcc: attacker@example.net"
	if err := newNotifier(t, emailConfig(srv), nil).Deliver(t.Context(), ev, alerting.State{}); err != nil {
		t.Fatal(err)
	}
	h := parseMail(t, srv.Messages()[0].Data).header
	if h.Get("Bcc") != "" || !strings.Contains(h.Get("Subject"), "v2  Bcc: attacker@example.net") {
		t.Errorf("headers %v", h)
	}
}

func TestEmailRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		opts      smtptest.Options
		setup     func(*smtptest.Server, *configs.Notifier)
		permanent bool
		says      string
	}{
		{"451 at MAIL is retried", smtptest.Options{}, func(s *smtptest.Server, _ *configs.Notifier) { s.Fail("MAIL", 451, "try later") }, false, "MAIL FROM: answered 451"},
		{"550 at every RCPT is permanent", smtptest.Options{}, func(s *smtptest.Server, _ *configs.Notifier) {
			s.Fail("RCPT", 550, "no such user")
			s.Fail("RCPT", 550, "no such user")
		}, true, "check from and to"},
		{"552 at DATA is permanent", smtptest.Options{}, func(s *smtptest.Server, _ *configs.Notifier) { s.Fail("DATA", 552, "too big") }, true, "DATA: answered 552"},
		{"wrong password", smtptest.Options{}, func(_ *smtptest.Server, c *configs.Notifier) { c.Password = "not-the-password-123" }, true, "check username and password"},
		{"untrusted certificate", smtptest.Options{}, func(_ *smtptest.Server, c *configs.Notifier) { c.TLS.CAFile = "" }, true, "tls.ca_file"},
		{"no STARTTLS offered", smtptest.Options{NoTLS: true}, nil, true, "does not offer STARTTLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, tt.opts)
			cfg := emailConfig(srv)
			if tt.setup != nil {
				tt.setup(srv, cfg)
			}
			err := newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{})
			if err == nil || alerting.Permanent(err) != tt.permanent || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("Deliver = %v; want permanent %v, saying %q", err, tt.permanent, tt.says)
			}
			assertNoSecret(t, []string{smtptest.Password, "not-the-password-123"}, err.Error())
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("%d messages accepted", n)
			}
		})
	}
}

// One mailbox the server refuses for good (someone who left) does not cost the others
// their page: the message goes to the accepted ones, and the refusal is logged (the whole
// send was aborted and dead-lettered, the on-call paged by nobody).
func TestEmailOneRefusedRecipient(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{})
	srv.Fail("RCPT", 550, "5.1.1 no such user")
	logs := &vigiltest.Buffer{}
	if err := newNotifier(t, emailConfig(srv), logs).Deliver(t.Context(), deployFailed(), alerting.State{}); err != nil {
		t.Fatalf("Deliver with one of two recipients refused: %v", err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages accepted; want 1, to the other recipient", n)
	}
	if !strings.Contains(logs.String(), "oncall@example.com") || !strings.Contains(logs.String(), "refused the others for good") {
		t.Errorf("the refused recipient is not logged:\n%s", logs.String())
	}
}

// A server that never greets, and one that is not there: retryable, bounded by the timeout.
func TestEmailNoAnswer(t *testing.T) {
	t.Parallel()
	cfg := &configs.Notifier{Type: configs.NotifierEmail, Name: "mail", Host: "127.0.0.1", From: "vigil@example.com",
		To: []string{"oncall@example.com"}, Timeout: 200 * time.Millisecond}
	_, port, _ := strings.Cut(smtptest.Silent(t), ":")
	cfg.Port = atoi(t, port)
	err := newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{})
	if err == nil || alerting.Permanent(err) || !strings.Contains(err.Error(), "per-attempt timeout") {
		t.Fatalf("a silent server: %v", err)
	}
	cfg.Port = 1 // nothing listens on port 1 of the loopback
	err = newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{})
	if err == nil || alerting.Permanent(err) || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("no server: %v", err)
	}
}

func TestEmailDryRunAndConfig(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{})
	cfg := emailConfig(srv)
	cfg.DryRun = true
	err := newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{})
	if !errors.Is(err, alerting.ErrDryRun) || !strings.Contains(err.Error(), "oncall@example.com") || len(srv.Messages()) != 0 {
		t.Fatalf("dry run: %v", err)
	}
	f := false
	for _, tt := range []struct {
		cfg  configs.Notifier
		want string
	}{
		{configs.Notifier{From: "a@b.c", To: []string{"d@e.f"}}, "notifiers.m.host: missing"},
		{configs.Notifier{Host: "h", From: "not an address", To: []string{"d@e.f"}}, "notifiers.m.from:"},
		{configs.Notifier{Host: "h", From: "a@b.c"}, "notifiers.m.to: missing"},
		{configs.Notifier{Host: "h", From: "a@b.c", To: []string{"d@e.f", "nope"}}, "notifiers.m.to[1]:"},
		{configs.Notifier{Host: "h", From: "a@b.c", To: []string{"d@e.f"}, Username: "u", Password: "p", StartTLS: &f}, "notifiers.m.starttls:"},
	} {
		tt.cfg.Type, tt.cfg.Name = configs.NotifierEmail, "m"
		if _, err := alerting.New(&tt.cfg, alerting.Options{}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			t.Fatalf("not a port: %q", s)
		}
		n = n*10 + int(r-'0')
	}
	return n
}

// A check incident is one thread too: the reminder and the recovery answer the failure's
// message (In-Reply-To, References) under its subject with Re:.
func TestEmailCheckIncidentThread(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{})
	n := newNotifier(t, emailConfig(srv), nil)
	reminder := checkEvent(configs.EventCheckFailed, "3")
	reminder.Key, reminder.Reminder = reminder.Key+":reminder:1", 1
	st := alerting.State{}
	for _, ev := range []*alerting.Event{checkEvent(configs.EventCheckFailed, "3"), reminder, checkEvent(configs.EventCheckRecovered, "3")} {
		if err := n.Deliver(t.Context(), ev, st); err != nil {
			t.Fatalf("%s: %v", ev.Name, err)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3", len(msgs))
	}
	first := parseMail(t, msgs[0].Data).header
	root, subject := first.Get("Message-ID"), first.Get("Subject")
	if root != "<check.home.3.check_failed@example.com>" || !strings.HasPrefix(subject, "[vigil] ") || first.Get("In-Reply-To") != "" {
		t.Fatalf("the first message: Message-ID %q, Subject %q, In-Reply-To %q", root, subject, first.Get("In-Reply-To"))
	}
	if first.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("Auto-Submitted %q", first.Get("Auto-Submitted"))
	}
	ids := map[string]bool{root: true}
	for i, m := range msgs[1:] {
		h := parseMail(t, m.Data).header
		if h.Get("In-Reply-To") != root || h.Get("References") != root || h.Get("Subject") != "Re: "+subject {
			t.Errorf("message %d: In-Reply-To %q, References %q, Subject %q", i+2, h.Get("In-Reply-To"), h.Get("References"), h.Get("Subject"))
		}
		if ids[h.Get("Message-ID")] {
			t.Errorf("message %d repeats Message-ID %q", i+2, h.Get("Message-ID"))
		}
		ids[h.Get("Message-ID")] = true
	}
}

// A server's 421 (closing the session: shutting down, too busy) in the middle of the
// conversation is for now: retried, and nothing was accepted.
func TestEmail421MidSession(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"MAIL", "RCPT", "DATA"} {
		t.Run(step, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{})
			srv.Fail(step, 421, "4.3.2 service shutting down")
			n := newNotifier(t, emailConfig(srv), nil)
			err := n.Deliver(t.Context(), deployFailed(), alerting.State{})
			if err == nil || alerting.Permanent(err) || !strings.Contains(err.Error(), "421") {
				t.Fatalf("Deliver = %v; want a retryable error quoting the 421", err)
			}
			if err := n.Deliver(t.Context(), deployFailed(), alerting.State{}); err != nil || len(srv.Messages()) != 1 {
				t.Fatalf("the retry: %v, %d messages", err, len(srv.Messages()))
			}
		})
	}
}

// starttls: false sends to a relay that offers no STARTTLS, in clear, without a password.
func TestEmailPlainRelay(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{NoTLS: true})
	cfg := emailConfig(srv)
	cfg.Username, cfg.Password, cfg.StartTLS = "", "", new(bool)
	if err := newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{}); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if m := srv.Messages(); len(m) != 1 || m[0].TLS || m[0].User != "" {
		t.Fatalf("messages %d; want one, in clear, unauthenticated", len(m))
	}
}
