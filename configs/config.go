// Package configs is vigil's configuration contract: the types a vigil.yaml decodes into,
// loading (koanf: YAML file, then VIGIL_* environment, then flags), `${VAR}` expansion,
// defaults, and validation whose every error names the file, the key path and a fix.
//
// Each check kind's keys, defaults and rules live in one file, kind_<name>.go, registered
// in the kinds table (kinds.go). configs imports no other vigil package but the leaf
// internal/text. It checks shapes, references and values; the checks package compiles
// assertions and templates and reports through the same Error type, so `vigil validate`
// gives one consistent list.
package configs

import "time"

// Config is one loaded, defaulted and validated vigil configuration.
type Config struct {
	Agent       Agent                `koanf:"agent"`
	Store       Store                `koanf:"store"`
	Browser     Browser              `koanf:"browser"`
	Tracing     Tracing              `koanf:"tracing"`
	Defaults    Defaults             `koanf:"defaults"`
	Services    map[string]*Service  `koanf:"services"`
	Checks      []*Check             `koanf:"checks"`
	Notifiers   map[string]*Notifier `koanf:"notifiers"`
	Maintenance []*Maintenance       `koanf:"maintenance"`
	Locations   Locations            `koanf:"locations"`

	// File is the path the configuration was read from ("" when built in memory).
	File string `koanf:"-"`
	// Dir is the folder relative paths (store.dsn, CA files, log globs) are resolved against.
	Dir string `koanf:"-"`

	lines map[string]int // key path -> line in File, for errors raised after load
	// overrides maps the key paths set by VIGIL_* variables and flags to their names.
	overrides map[string]string
	// zeros are the key paths written as a 0 that means something (zero.go): the defaults
	// leave them.
	zeros map[string]bool
	// problems are what LoadPartial found (see Broken).
	problems Errors
	// unsetVars maps the key paths whose ${VAR} was not set in the environment to the
	// variables' names: a rule broken by the empty value names the variable.
	unsetVars map[string][]string
	// expandedSecrets are ${VAR} values that are credentials by their variable's or key's
	// name; redactor is built from them and the config's other secrets once loaded.
	expandedSecrets []string
	redactor        *Redactor
	// checksOnly is Options.ChecksOnly: loaded to run the checks once.
	checksOnly bool
}

// Agent configures the long-running process: its listener and its limits.
type Agent struct {
	Listen             string `koanf:"listen"`
	APIToken           Secret `koanf:"api_token"`
	Location           string `koanf:"location"`
	Concurrency        int    `koanf:"concurrency"`
	BrowserConcurrency int    `koanf:"browser_concurrency"`
	// PublicURL is how people reach this agent (links in Slack messages and webhooks).
	PublicURL string `koanf:"public_url"`
	// StatusPageAuth requires the bearer token for the status page too.
	StatusPageAuth bool `koanf:"status_page_auth"`
	// ShutdownGrace is how long runs in flight may finish after SIGTERM before they are cancelled.
	ShutdownGrace time.Duration `koanf:"shutdown_grace"`
	// MaxConnections caps the API server's open connections; past it the oldest connection
	// not serving a request is closed to make room.
	MaxConnections int `koanf:"max_connections"`
	// Name is the agent's name among agents sharing a store (default <hostname>/<location>);
	// Heartbeat is how often it tells them it is alive (locations.go).
	Name      string        `koanf:"name"`
	Heartbeat time.Duration `koanf:"heartbeat"`
	// OutboxLease is how long a claimed notification is this agent's to deliver; an agent
	// killed mid-delivery leaves it to the others once it is over (locations.go).
	OutboxLease time.Duration `koanf:"outbox_lease"`
}

// Store configures where runs, deploys, verdicts and the outbox are kept.
type Store struct {
	Driver    string        `koanf:"driver"`
	DSN       string        `koanf:"dsn"`
	Retention time.Duration `koanf:"retention"`
	// MaxSize bounds the history by size as Retention does by age: past it the oldest runs
	// (then the oldest finished notifications) are deleted.
	MaxSize ByteSize `koanf:"max_size"`
	// Pool sizes PostgreSQL's connection pool (locations.go).
	Pool StorePool `koanf:"pool"`
}

// Browser configures the Chromium that browser checks share.
type Browser struct {
	Path  string   `koanf:"path"`
	Flags []string `koanf:"flags"`
}

// Tracing configures OpenTelemetry. Tracing is on when an OTLP endpoint is set (here or by
// OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or trace_url is set; off,
// it costs nothing and no request carries a traceparent.
type Tracing struct {
	// OTLPEndpoint is the OTLP/HTTP base URL spans are exported to, e.g.
	// http://127.0.0.1:4318 (/v1/traces is appended); it wins over OTEL_* variables.
	OTLPEndpoint string `koanf:"otlp_endpoint"`
	// SampleRatio is the share of traces sampled (parent-based), 0 to 1; nil: 1, or
	// OTEL_TRACES_SAMPLER_ARG when that is set.
	SampleRatio *float64 `koanf:"sample_ratio"`
	// TraceURL links a trace id to where traces are viewed, with {trace_id} in it, e.g.
	// https://jaeger.example/trace/{trace_id}. Set alone, vigil propagates trace context to
	// the targets (their own tracing backend records the probe's trace) without exporting.
	TraceURL string `koanf:"trace_url"`
}

// Defaults apply to every check that does not set the field itself.
type Defaults struct {
	Every            time.Duration `koanf:"every"`
	Timeout          time.Duration `koanf:"timeout"`
	Retries          *int          `koanf:"retries"`
	FailureThreshold int           `koanf:"failure_threshold"`
	// FailureWindow, when above 0, counts failure_threshold failing runs among the last
	// FailureWindow runs instead of in a row: a service crash-looping behind a load
	// balancer, failing every other run, never fails twice in a row.
	FailureWindow    *int `koanf:"failure_window"`
	SuccessThreshold int  `koanf:"success_threshold"`
	// RepeatInterval re-sends an open check incident (a reminder) this often while it
	// stays failing, as Alertmanager's repeat_interval; 0 never reminds.
	RepeatInterval time.Duration `koanf:"repeat_interval"`
	// NoData is what an inconclusive run (nothing to judge: a query with no series) is to
	// scheduled monitoring: NoDataIgnore changes nothing, NoDataAlert counts it toward
	// failure_threshold as a failing run (Grafana's NoData state set to Alerting).
	NoData string   `koanf:"no_data"`
	Notify []string `koanf:"notify"`
}

// Check is one configured check: the keys every kind shares, and its kind's Spec.
type Check struct {
	Name             string            `koanf:"name"`
	Kind             string            `koanf:"kind"`
	Every            time.Duration     `koanf:"every"`
	Timeout          time.Duration     `koanf:"timeout"`
	Retries          *int              `koanf:"retries"`
	FailureThreshold int               `koanf:"failure_threshold"`
	FailureWindow    *int              `koanf:"failure_window"`
	SuccessThreshold int               `koanf:"success_threshold"`
	RepeatInterval   time.Duration     `koanf:"repeat_interval"`
	NoData           string            `koanf:"no_data"`
	Notify           []string          `koanf:"notify"`
	Assert           []string          `koanf:"assert"`
	Labels           map[string]string `koanf:"labels"`
	Owners           Owners            `koanf:"owners"`      // owners.go
	RunbookURL       RunbookURL        `koanf:"runbook_url"` // owners.go
	// Services are the services this check belongs to (from services.*.checks).
	Services []string `koanf:"-"`

	// Spec holds the kind's own keys: a *HTTPSpec for http, a *BrowserSpec for browser,
	// and so on (the kinds table in kinds.go); nil when the kind is missing or unknown.
	Spec Spec `koanf:"-"`

	// Index is the check's position in the file, for error paths (checks[Index]).
	Index int `koanf:"-"`

	// inherited names the common keys the check took from the defaults block: a bad value
	// there is the block's error, said once at defaults.KEY, not once a check.
	inherited map[string]bool
}

// Path is the check's key path prefix in errors: "checks[3]".
func (c *Check) Path() string { return indexPath("checks", c.Index) }

// Built-in defaults, applied where neither the check nor the defaults block sets a value.
const (
	defaultEvery            = time.Minute
	defaultTimeout          = 10 * time.Second
	defaultRetries          = 1
	defaultFailureThreshold = 2
	// NoDataIgnore and NoDataAlert are no_data's values.
	NoDataIgnore = "ignore"
	NoDataAlert  = "alert"
	// MaxFailureWindow bounds failure_window: the runs of it are kept with each location's
	// streak of the check.
	MaxFailureWindow          = 100
	defaultSuccessThreshold   = 1
	defaultListen             = "127.0.0.1:9595"
	defaultConcurrency        = 32
	defaultBrowserConcurrency = 2
	defaultMaxConnections     = 512
	defaultRetention          = 168 * time.Hour
	defaultMaxSize            = ByteSize(1 << 30)
	minMaxSize                = ByteSize(1 << 20)
)

// CheckByName returns the named check, or nil.
func (c *Config) CheckByName(name string) *Check {
	for _, ch := range c.Checks {
		if ch != nil && ch.Name == name {
			return ch
		}
	}
	return nil
}

// The setters defaults are applied with: each fills a value the file left unset (zero).

func setStr(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

func setDur(p *time.Duration, v time.Duration) {
	if *p == 0 {
		*p = v
	}
}

func ptr[T any](v T) *T { return &v }
