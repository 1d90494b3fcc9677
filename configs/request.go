package configs

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// Request is one HTTP request, as http, script steps, sla, propagation and fleet send it.
type Request struct {
	Method          string            `koanf:"method"`
	URL             string            `koanf:"url"`
	Headers         map[string]string `koanf:"headers"`
	Body            string            `koanf:"body"`
	Timeout         time.Duration     `koanf:"timeout"`
	FollowRedirects *bool             `koanf:"follow_redirects"`
	TLS             TLS               `koanf:"tls"`
	Auth            Auth              `koanf:"auth"`
	MaxBodyBytes    int64             `koanf:"max_body_bytes"`
	// Protocol is how the request speaks HTTP. Unset, as a browser does: HTTP/1.1 over
	// plain http, HTTP/2 when TLS negotiates it. h2c: HTTP/2 over plain http with prior
	// knowledge, for a service that speaks nothing else (gRPC-gateway, Envoy listeners).
	Protocol string `koanf:"protocol" jsonschema:"enum=h2c"`
}

// ProtocolH2C is HTTP/2 over plain http, with prior knowledge (RFC 9113, section 3.3).
const ProtocolH2C = "h2c"

// TLS options for a request.
type TLS struct {
	InsecureSkipVerify bool   `koanf:"insecure_skip_verify"`
	CAFile             string `koanf:"ca_file"`
	ServerName         string `koanf:"server_name"`
}

// Auth is basic or bearer authentication. Credentials are secrets: never logged or shown.
type Auth struct {
	Username string `koanf:"username"`
	Password Secret `koanf:"password"`
	Bearer   Secret `koanf:"bearer"`
}

// DefaultMaxBodyBytes is how much of a response body a request reads unless it says.
const DefaultMaxBodyBytes = 1 << 20

// defaultRequest fills a request's defaults; timeout falls back to the check's.
func defaultRequest(r *Request, timeout time.Duration) {
	setStr(&r.Method, "GET")
	if r.Timeout == 0 || r.Timeout > timeout {
		r.Timeout = timeout
	}
	if r.MaxBodyBytes == 0 {
		r.MaxBodyBytes = DefaultMaxBodyBytes
	}
}

// request validates one HTTP request. Templated URLs ({{ }}) are checked after rendering.
func (v *validator) request(p string, r *Request) {
	if r.URL == "" {
		v.errf(p+".url", "set the URL to request, e.g. http://127.0.0.1:8080/healthz", "missing")
		return
	}
	if !strings.Contains(r.URL, "{{") {
		v.url(p+".url", r.URL)
	}
	if !slices.Contains(methods, r.Method) {
		v.errf(p+".method", DidYouMean(strings.ToUpper(r.Method), methods), "%q is not an HTTP method", r.Method)
	}
	if r.Timeout <= 0 && v.c.written(p+".timeout") {
		v.errf(p+".timeout", "use a positive duration such as 5s", "must be positive")
	}
	if r.MaxBodyBytes < 0 {
		v.errf(p+".max_body_bytes", "use a positive size in bytes", "must be positive")
	}
	v.tls(p+".tls", &r.TLS)
	v.auth(p+".auth", r.Auth)
	switch {
	case r.Protocol != "" && r.Protocol != ProtocolH2C:
		v.errf(p+".protocol", DidYouMean(r.Protocol, []string{ProtocolH2C}),
			"%q is not a protocol this key sets: h2c is HTTP/2 over plain http; over https, HTTP/2 is negotiated without it", r.Protocol)
	case r.Protocol == ProtocolH2C && strings.HasPrefix(strings.ToLower(r.URL), "https:"):
		v.errf(p+".protocol", "remove it: over https, HTTP/2 is negotiated without it", "h2c is HTTP/2 over plain http, and the url is https")
	}
}

var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions}

// auth rejects credentials that say two things at once.
func (v *validator) auth(p string, a Auth) {
	if a.Bearer.IsSet() && (a.Username != "" || a.Password.IsSet()) {
		v.errf(p, "use either bearer or username and password", "both bearer and basic credentials are set")
	}
}

// statuses checks a list of HTTP status codes at p.
func (v *validator) statuses(p string, list []int) {
	for i, st := range list {
		if st < 100 || st > 599 {
			v.errf(indexPath(p, i), "use HTTP status codes such as 200", "%d is not a status code", st)
		}
	}
}
