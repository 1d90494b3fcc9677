package configs

import (
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

const nameFix = "use letters, digits, '-', '_' and '.', starting with a letter or digit, at most 63 characters"

// validator collects semantic errors, located through the config's line index.
type validator struct {
	c    *Config
	errs Errors
}

func (v *validator) errf(path, fix, format string, args ...any) {
	v.errs = append(v.errs, v.c.Err(path, fix, format, args...))
}

func (c *Config) validate() Errors {
	v := &validator{c: c}
	v.agent()
	v.store()
	names := v.checks()
	v.services(names)
	v.notifiers()
	v.maintenance(names)
	return v.errs
}

func (v *validator) agent() {
	a := &v.c.Agent
	host, _, err := net.SplitHostPort(a.Listen)
	if err != nil {
		v.errf("agent.listen", "write host:port, e.g. 127.0.0.1:9090 or :9090", "%q is not an address: %v", a.Listen, err)
	} else if !IsLoopbackHost(host) && !a.APIToken.IsSet() {
		v.errf("agent.listen", "set agent.api_token (e.g. api_token: ${VIGIL_API_TOKEN}), or listen on 127.0.0.1",
			"%q is reachable from other hosts, so the API needs a token", a.Listen)
	}
	if a.Concurrency < 1 {
		v.errf("agent.concurrency", "use 1 or more", "must be at least 1, got %d", a.Concurrency)
	}
	if a.BrowserConcurrency < 1 {
		v.errf("agent.browser_concurrency", "use 1 or more", "must be at least 1, got %d", a.BrowserConcurrency)
	}
	if a.MaxConnections < 32 {
		v.errf("agent.max_connections", "use 32 or more, e.g. 512; keep it under the process's file limit", "%d is too few to keep the API answerable", a.MaxConnections)
	}
	if a.PublicURL != "" {
		v.url("agent.public_url", a.PublicURL)
	}
	v.tracing()
}

func (v *validator) tracing() {
	t := v.c.Tracing
	if t.OTLPEndpoint != "" {
		v.url("tracing.otlp_endpoint", t.OTLPEndpoint)
	}
	if r := t.SampleRatio; r != nil && (*r < 0 || *r > 1 || *r != *r) {
		v.errf("tracing.sample_ratio", "use a share from 0 to 1, e.g. 0.1 for one trace in ten", "%v is not between 0 and 1", *r)
	}
	if t.TraceURL != "" {
		if !strings.Contains(t.TraceURL, "{trace_id}") {
			v.errf("tracing.trace_url", "put {trace_id} where the trace id goes, e.g. https://jaeger.example/trace/{trace_id}", "has no {trace_id}")
		} else {
			v.url("tracing.trace_url", strings.ReplaceAll(t.TraceURL, "{trace_id}", "0"))
		}
	}
}

// IsLoopbackHost reports whether a listen host only accepts local connections.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (v *validator) store() {
	s := &v.c.Store
	if s.Driver != "sqlite" {
		v.errf("store.driver", `use "sqlite"`, "unsupported driver %q", s.Driver)
	}
	if s.MaxSize < minMaxSize {
		v.errf("store.max_size", "use at least 1MiB, e.g. 1GB", "%s is too small to keep a day of history", s.MaxSize)
	}
	if s.Retention < time.Hour {
		v.errf("store.retention", "keep at least 1h of history, e.g. 168h", "%s is too short", s.Retention)
	}
}

// url checks an absolute http(s) URL.
func (v *validator) url(p, s string) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		v.errf(p, "write an absolute URL such as http://127.0.0.1:8080/path", "%q is not a URL", s)
	case u.Scheme != "http" && u.Scheme != "https":
		v.errf(p, "write an absolute URL starting with http:// or https://", "%q needs an http or https scheme", s)
	case u.Host == "":
		v.errf(p, "write an absolute URL such as http://127.0.0.1:8080/path", "%q has no host", s)
	}
}

// regexp compiles a configured regular expression at p; nil when it does not compile.
func (v *validator) regexp(p, src string) *regexp.Regexp {
	re, err := regexp.Compile(src)
	if err != nil {
		v.errf(p, "write a Go regular expression (RE2)", "bad regex: %v", err)
		return nil
	}
	return re
}

// countSet counts the options that are set, for "exactly one of" rules.
func countSet(set ...bool) int {
	n := 0
	for _, s := range set {
		if s {
			n++
		}
	}
	return n
}
