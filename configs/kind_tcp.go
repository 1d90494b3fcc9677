package configs

import "slices"

// KindTCP opens a TCP connection, optionally speaks TLS (from the first byte or after a
// STARTTLS upgrade) and exchanges lines.
const KindTCP = "tcp"

// TCPSpec is the tcp kind: connect to address, then run steps in order.
type TCPSpec struct {
	Address string `koanf:"address"`
	// TLS starts TLS right after connecting (implicit TLS, as on ports 465, 993, 995).
	TLS bool `koanf:"tls"`
	// StartTLS upgrades a plain connection with the protocol's own command: smtp, imap or pop3.
	StartTLS  string    `koanf:"starttls"`
	TLSConfig TLS       `koanf:"tls_config"`
	Steps     []TCPStep `koanf:"steps"`
}

// TCPStep is one line sent, or one line awaited: exactly one of Send and Expect.
type TCPStep struct {
	// Send is written as is; end it with \r\n or \n when the protocol wants a line.
	Send string `koanf:"send"`
	// Expect is a regular expression: lines are read until one matches.
	Expect string `koanf:"expect"`
}

// StartTLSProtocols are the protocols whose STARTTLS upgrade the tcp kind speaks.
var StartTLSProtocols = []string{"smtp", "imap", "pop3"}

// UsesTLS reports whether the connection is, or becomes, a TLS one.
func (s *TCPSpec) UsesTLS() bool { return s.TLS || s.StartTLS != "" }

func (s *TCPSpec) applyDefaults(*Config, *Check) {}

func (s *TCPSpec) validate(v *validator, _ *Check, p string) {
	v.hostPort(p+".address", s.Address)
	if s.StartTLS != "" && !slices.Contains(StartTLSProtocols, s.StartTLS) {
		v.errf(p+".starttls", DidYouMean(s.StartTLS, StartTLSProtocols), "%q is not a STARTTLS protocol vigil speaks (smtp, imap, pop3)", s.StartTLS)
	}
	if s.TLS && s.StartTLS != "" {
		v.errf(p+".tls", "use tls: true for TLS from the first byte (ports 465, 993, 995) or starttls for an upgrade (25, 587, 143, 110), not both",
			"tls and starttls are both set")
	}
	if s.TLSConfig != (TLS{}) && !s.UsesTLS() {
		v.errf(p+".tls_config", "set tls: true or starttls, or remove tls_config", "tls_config is set but the connection never speaks TLS")
	}
	v.tls(p+".tls_config", &s.TLSConfig)
	v.steps(p+".steps", s.Steps)
}

// steps validates send/expect steps (tcp, websocket).
func (v *validator) steps(p string, steps []TCPStep) {
	for i, st := range steps {
		sp := indexPath(p, i)
		switch {
		case st.Send == "" && st.Expect == "":
			v.errf(sp, `give the step either send: "PING\r\n" or expect: "^\+PONG"`, "empty step")
		case st.Send != "" && st.Expect != "":
			v.errf(sp, "split it into two steps: one send, then one expect", "a step has both send and expect")
		case st.Expect != "":
			v.regexp(sp+".expect", st.Expect)
		}
	}
}
