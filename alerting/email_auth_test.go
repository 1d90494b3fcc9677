package alerting_test

import (
	"net/smtp"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/internal/smtptest"
)

// The mechanism is the server's choice among those vigil speaks: PLAIN when offered, else
// LOGIN (smtp.office365.com and some Exchange servers offer LOGIN alone), whose prompts
// are answered with the user name and the password in base64 (the test server decodes
// them and checks both). A server offering neither is named with what it offers.
func TestEmailAuthMechanisms(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		offered []string
		want    string // the mechanism used; "" when the send must fail
		says    string
	}{
		{"LOGIN alone", []string{"LOGIN"}, "LOGIN", ""},
		{"PLAIN preferred", []string{"LOGIN", "PLAIN"}, "PLAIN", ""},
		{"PLAIN alone", nil, "PLAIN", ""},
		{"neither", []string{"XOAUTH2", "CRAM-MD5"}, "", "the server offers only AUTH XOAUTH2, CRAM-MD5; vigil authenticates with PLAIN or LOGIN"},
		{"none", []string{}, "", "the server offers no AUTH mechanism"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, smtptest.Options{AuthMechanisms: tt.offered})
			err := newNotifier(t, emailConfig(srv), nil).Deliver(t.Context(), deployFailed(), alerting.State{})
			msgs := srv.Messages()
			if tt.want == "" {
				if err == nil || !alerting.Permanent(err) || !strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), "AUTH") {
					t.Fatalf("Deliver = %v; want a permanent error saying %q", err, tt.says)
				}
				if len(msgs) != 0 {
					t.Errorf("%d messages accepted", len(msgs))
				}
				return
			}
			if err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			if len(msgs) != 1 || !msgs[0].TLS || msgs[0].User != smtptest.Username || msgs[0].Mechanism != tt.want {
				t.Fatalf("messages %+v; want one, over TLS, from %q authenticated with %s", msgs, smtptest.Username, tt.want)
			}
		})
	}
}

// A wrong password over AUTH LOGIN is refused for good, as over PLAIN, and not quoted.
func TestEmailAuthLoginRefused(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{AuthMechanisms: []string{"LOGIN"}})
	cfg := emailConfig(srv)
	cfg.Password = "not-the-password-123"
	err := newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{})
	if err == nil || !alerting.Permanent(err) || !strings.Contains(err.Error(), "AUTH: answered 535") || !strings.Contains(err.Error(), "check username and password") {
		t.Fatalf("Deliver = %v; want a permanent 535 naming the credentials", err)
	}
	assertNoSecret(t, []string{"not-the-password-123", smtptest.Password}, err.Error())
}

// AUTH LOGIN never starts without TLS, not even to localhost (net/smtp's PLAIN allows
// that one): the notifier's config already refuses a username without TLS, and this is
// the second lock. Over TLS it answers the user name, then the password, and no third
// prompt.
func TestEmailAuthLoginOnlyOverTLS(t *testing.T) {
	t.Parallel()
	for _, host := range []string{"localhost", "127.0.0.1", "smtp.example.com"} {
		if _, _, err := alerting.LoginAuth("u", "p").Start(&smtp.ServerInfo{Name: host, TLS: false, Auth: []string{"LOGIN"}}); err == nil ||
			!strings.Contains(err.Error(), "without TLS") {
			t.Errorf("%s without TLS: %v", host, err)
		}
	}
	a := alerting.LoginAuth("u", "p")
	if mech, ir, err := a.Start(&smtp.ServerInfo{Name: "smtp.example.com", TLS: true, Auth: []string{"LOGIN"}}); mech != "LOGIN" || ir != nil || err != nil {
		t.Fatalf("Start over TLS = %q, %q, %v", mech, ir, err)
	}
	for _, step := range []struct{ prompt, answer string }{{"Username:", "u"}, {"Password:", "p"}} {
		if got, err := a.Next([]byte(step.prompt), true); err != nil || string(got) != step.answer {
			t.Errorf("Next(%q) = %q, %v; want %q", step.prompt, got, err, step.answer)
		}
	}
	if got, err := a.Next([]byte("Username:"), true); err == nil {
		t.Errorf("a third prompt: %q; want an error", got)
	}
}

// A hint follows the step a reply answers, not its code alone: a 535 or Exchange Online's
// 550 5.7.30 to AUTH is about the account (its credentials, or password authentication
// the provider has turned off, past which vigil cannot go: it speaks no OAuth), never
// "check from and to"; a 550 to MAIL FROM or RCPT TO is. Each is permanent and sends
// nothing.
func TestEmailHintsFollowTheStep(t *testing.T) {
	t.Parallel()
	const (
		creds  = "check username and password"
		basic  = "the provider has disabled password (basic) authentication for SMTP"
		oauth  = "OAuth is not supported"
		fromTo = "check from and to"
	)
	for _, tt := range []struct {
		name, step string
		code       int
		reply      string
		says, not  []string
	}{
		{"535 to AUTH", "AUTH", 535, "5.7.8 Authentication credentials invalid",
			[]string{"AUTH: answered 535", creds}, []string{fromTo}},
		{"Exchange Online 535 5.7.139", "AUTH", 535, "5.7.139 Authentication unsuccessful, basic authentication is disabled.",
			[]string{"AUTH: answered 535", basic, oauth}, []string{fromTo}},
		{"Exchange Online 550 5.7.30", "AUTH", 550, "5.7.30 Basic authentication is not supported for Client Submission.",
			[]string{"AUTH: answered 550", basic, oauth}, []string{fromTo}},
		{"550 to MAIL FROM", "MAIL", 550, "5.7.1 Sender not allowed", []string{"MAIL FROM: answered 550", fromTo}, []string{creds}},
		{"550 to DATA", "DATA", 550, "5.7.1 Message rejected as spam", []string{"DATA: answered 550"}, []string{fromTo, creds}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, smtptest.Options{AuthMechanisms: []string{"LOGIN"}})
			srv.Fail(tt.step, tt.code, tt.reply)
			err := newNotifier(t, emailConfig(srv), nil).Deliver(t.Context(), deployFailed(), alerting.State{})
			if err == nil || !alerting.Permanent(err) {
				t.Fatalf("Deliver = %v; want a permanent error", err)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%v\ndoes not say %q", err, s)
				}
			}
			for _, s := range tt.not {
				if strings.Contains(err.Error(), s) {
					t.Errorf("%v\nsays %q", err, s)
				}
			}
			if !strings.Contains(err.Error(), tt.reply) {
				t.Errorf("%v\ndoes not quote the server's %q", err, tt.reply)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("%d messages accepted", n)
			}
		})
	}
}
