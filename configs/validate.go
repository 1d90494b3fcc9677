package configs

import (
	"net"
	"strings"
	"time"
)

// validate checks every section, after defaults, and returns what is wrong.
func (c *Config) validate() Errors {
	v := &validator{c: c}
	v.agent()
	v.store()
	v.defaults()
	names := v.checks()
	v.services(names)
	v.notifiers()
	v.maintenance(names)
	v.locations()
	return v.errs
}

func (v *validator) agent() {
	a := &v.c.Agent
	host, _, err := net.SplitHostPort(a.Listen)
	if err != nil {
		v.errf("agent.listen", "write host:port, e.g. 127.0.0.1:9595 or :9595", "%q is not an address: %v", a.Listen, err)
	} else if !IsLoopbackHost(host) && !a.APIToken.IsSet() && len(v.c.unsetVars["agent.api_token"]) == 0 && !v.c.checksOnly {
		// A token written as ${VAR} with VAR unset is reported at agent.api_token: saying
		// here to set the token the file sets would send the reader the wrong way.
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
	if a.ShutdownGrace < 0 || a.ShutdownGrace > time.Hour {
		v.errf("agent.shutdown_grace", "use 1s to 1h, e.g. 10s, and less than the orchestrator waits before it kills (Kubernetes: terminationGracePeriodSeconds, 30s by default)",
			"%s is out of range", a.ShutdownGrace)
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
	if s.Driver != DriverSQLite && s.Driver != DriverPostgres {
		v.errf("store.driver", `use "sqlite" (one agent) or "postgres" (agents sharing a store)`, "unsupported driver %q", s.Driver)
	}
	if s.Driver == DriverSQLite && s.MaxSize < minMaxSize {
		v.errf("store.max_size", "use at least 1MiB, e.g. 1GB", "%s is too small to keep a day of history", s.MaxSize)
	}
	if s.Retention < time.Hour {
		v.errf("store.retention", "keep at least 1h of history, e.g. 168h", "%s is too short", s.Retention)
	}
}
