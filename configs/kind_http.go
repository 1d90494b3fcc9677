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
	// ServedVersion is where an answer names the version of the service that gave it. In
	// a deploy's verification, an answer from another version is inconclusive, not judged.
	ServedVersion *ServedVersion `koanf:"served_version"`
}

// ServedVersion is where an answer names its version: a response header, or a gjson path
// into a JSON body; for a browser check's page, a header of its document or an element of
// it (Selector: its text, or its Attribute). Exactly one of them is set.
type ServedVersion struct {
	Header    string `koanf:"header"`
	Field     string `koanf:"field"`
	Selector  string `koanf:"selector"`
	Attribute string `koanf:"attribute"`
}

func (s *HTTPSpec) applyDefaults(_ *Config, ch *Check) { defaultRequest(&s.Request, ch.Timeout) }

func (s *HTTPSpec) validate(v *validator, _ *Check, p string) {
	v.request(p+".request", &s.Request)
	v.servedVersion(p+".served_version", s.ServedVersion)
}

// servedVersion checks a served_version block at p: exactly one of header and field.
func (v *validator) servedVersion(p string, sv *ServedVersion) {
	if sv == nil {
		return
	}
	const fix = "set header (X-App-Version) or field (a path in a JSON body, such as build.version), one of them"
	switch {
	case sv.Selector != "" || sv.Attribute != "":
		v.errf(p, fix, "selector and attribute name an element of a page, for browser checks; an API answer names its version in a header or a JSON field")
	case sv.Header == "" && sv.Field == "":
		v.errf(p, fix, "neither header nor field is set")
	case sv.Header != "" && sv.Field != "":
		v.errf(p, fix, "both header and field are set")
	}
}
