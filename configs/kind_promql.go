package configs

import (
	"strings"
	"time"
)

// KindPromQL is an instant query against a Prometheus HTTP API.
const KindPromQL = "promql"

// PromQLSpec is the promql kind: an instant query.
type PromQLSpec struct {
	Server  string            `koanf:"server"`
	Query   string            `koanf:"query"`
	Headers map[string]string `koanf:"headers"`
	Auth    Auth              `koanf:"auth"`
	// Window is the longest range {{ .Window }} stands for in the query: the time since the
	// deploy started, up to Window, in a verification; Window outside one. Zero: 5m, and
	// only a query that reads {{ .Window }} may set it.
	Window time.Duration `koanf:"window"`
	// EvaluationDelay evaluates the query this long before the run (Datadog's and Mimir's
	// evaluation delay, Grafana's query offset): for metrics that arrive late, through
	// remote write or a slow pipeline, so that the query reads a past that is complete.
	EvaluationDelay time.Duration `koanf:"evaluation_delay"`
}

// applyDefaults: a promql check has nothing to default; its query's timeout is the check's.
func (s *PromQLSpec) applyDefaults(*Config, *Check) {}

func (s *PromQLSpec) validate(v *validator, _ *Check, p string) {
	if s.Server == "" {
		v.errf(p+".server", "set the Prometheus base URL, e.g. http://127.0.0.1:9090", "missing")
	} else {
		v.url(p+".server", s.Server)
	}
	if strings.TrimSpace(s.Query) == "" {
		v.errf(p+".query", "write a PromQL instant query, e.g. max(pool_active_connections)", "missing")
	}
	v.auth(p+".auth", s.Auth)
	if s.Window != 0 && s.Window < time.Second {
		v.errf(p+".window", "use 1s or more, e.g. 5m", "%s is too short", s.Window)
	}
	if s.EvaluationDelay < 0 || s.EvaluationDelay > time.Hour {
		v.errf(p+".evaluation_delay", "use 0s to 1h, about how late the metrics arrive, e.g. 1m", "%s is out of range", s.EvaluationDelay)
	}
}
