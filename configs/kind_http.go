package configs

// KindHTTP is one request, judged by assertions over the response.
const KindHTTP = "http"

// HTTPSpec is the http kind: one request, assertions over the response.
type HTTPSpec struct {
	Request Request `koanf:"request"`
	// StoreBody keeps the response body in stored results: an excerpt of every run, and
	// the body itself (up to a cap) as evidence of a failing run. Off by default: bodies
	// can hold personal data and tokens, and they are what made stores grow.
	StoreBody bool `koanf:"store_body"`
}

func (s *HTTPSpec) applyDefaults(_ *Config, ch *Check) { defaultRequest(&s.Request, ch.Timeout) }

func (s *HTTPSpec) validate(v *validator, _ *Check, p string) { v.request(p+".request", &s.Request) }
