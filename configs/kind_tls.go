package configs

import "slices"

// KindTLS is a TLS handshake on any port that reads the certificate chain, without
// speaking HTTP.
const KindTLS = "tls"

// TLSSpec is the tls kind: connect to address (upgrading with STARTTLS when set) and
// read what the server presents.
type TLSSpec struct {
	Address   string `koanf:"address"`
	StartTLS  string `koanf:"starttls"`
	TLSConfig TLS    `koanf:"tls_config"`
}

func (s *TLSSpec) applyDefaults(*Config, *Check) {}

func (s *TLSSpec) validate(v *validator, _ *Check, p string) {
	v.hostPort(p+".address", s.Address)
	if s.StartTLS != "" && !slices.Contains(StartTLSProtocols, s.StartTLS) {
		v.errf(p+".starttls", DidYouMean(s.StartTLS, StartTLSProtocols), "%q is not a STARTTLS protocol vigil speaks (smtp, imap, pop3)", s.StartTLS)
	}
	v.tls(p+".tls_config", &s.TLSConfig)
}
