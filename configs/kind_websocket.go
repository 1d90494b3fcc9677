package configs

import "net/url"

// KindWebSocket opens a WebSocket, sends messages and waits for messages that match.
const KindWebSocket = "websocket"

// WebSocketSpec is the websocket kind.
type WebSocketSpec struct {
	URL          string            `koanf:"url"`
	Headers      map[string]string `koanf:"headers"`
	Auth         Auth              `koanf:"auth"`
	Subprotocols []string          `koanf:"subprotocols"`
	TLS          TLS               `koanf:"tls"`
	// Steps send text messages and wait for messages matching regular expressions.
	Steps []TCPStep `koanf:"steps"`
	// MaxMessageBytes bounds one message read; default 1 MiB.
	MaxMessageBytes ByteSize `koanf:"max_message_bytes"`
}

func (s *WebSocketSpec) applyDefaults(*Config, *Check) {
	if s.MaxMessageBytes == 0 {
		s.MaxMessageBytes = 1 << 20
	}
}

func (s *WebSocketSpec) validate(v *validator, _ *Check, p string) {
	u, err := url.Parse(s.URL)
	switch {
	case s.URL == "":
		v.errf(p+".url", "set the WebSocket URL, e.g. ws://127.0.0.1:8080/ws", "missing")
	case err != nil || u.Host == "":
		v.errf(p+".url", "write an absolute URL such as ws://127.0.0.1:8080/ws", "%q is not a URL with a host", s.URL)
	case u.Scheme != "ws" && u.Scheme != "wss":
		v.errf(p+".url", "use ws:// or wss:// (wss for TLS)", "%q needs a ws or wss scheme", s.URL)
	case u.Scheme == "ws" && s.TLS != (TLS{}):
		v.errf(p+".tls", "use a wss:// URL, or remove tls", "tls is set but %s does not speak TLS", s.URL)
	}
	v.tls(p+".tls", &s.TLS)
	v.auth(p+".auth", s.Auth)
	v.steps(p+".steps", s.Steps)
	if s.MaxMessageBytes < 0 {
		v.errf(p+".max_message_bytes", "use a positive size such as 1MiB", "must be positive")
	}
}
