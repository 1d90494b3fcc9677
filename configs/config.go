// Package configs is vigil's configuration contract: the types a vigil.yaml decodes into,
// loading (koanf: YAML file, then VIGIL_* environment, then flags), `${VAR}` expansion,
// defaults, and validation whose every error names the file, the key path and a fix.
//
// configs imports no other vigil package. It checks shapes, references and values; the
// checks package compiles assertions and templates and reports through the same Error type,
// so `vigil validate` gives one consistent list.
package configs

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

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

	// File is the path the configuration was read from ("" when built in memory).
	File string `koanf:"-"`
	// Dir is the folder relative paths (store.dsn, CA files, log globs) are resolved against.
	Dir string `koanf:"-"`

	lines map[string]int // key path -> line in File, for errors raised after load
	// problems are what LoadPartial found (see Broken).
	problems Errors
	// expandedSecrets are ${VAR} values that are credentials by their variable's or key's
	// name; redactor is built from them and the config's other secrets once loaded.
	expandedSecrets []string
	redactor        *Redactor
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
}

// Store configures where runs, deploys, verdicts and the outbox are kept.
type Store struct {
	Driver    string        `koanf:"driver"`
	DSN       string        `koanf:"dsn"`
	Retention time.Duration `koanf:"retention"`
	// MaxSize bounds the history by size as Retention does by age: past it the oldest runs
	// (then the oldest finished notifications) are deleted.
	MaxSize ByteSize `koanf:"max_size"`
}

// ByteSize is a size in bytes; in YAML a number of bytes or a number with a unit: 500MB,
// 2GB (powers of 1000), 512MiB, 1GiB (powers of 1024).
type ByteSize int64

func (b ByteSize) String() string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", b>>30)
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", b>>20)
	case b >= 1e9:
		return fmt.Sprintf("%.1fGB", float64(b)/1e9)
	case b >= 1e6:
		return fmt.Sprintf("%.1fMB", float64(b)/1e6)
	}
	return fmt.Sprintf("%dB", int64(b))
}

var byteUnits = map[string]float64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}

// ParseByteSize reads "500MB", "1GiB", "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.ToUpper(strings.TrimSpace(s[i:]))
	}
	mult, ok := byteUnits[unit]
	n, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || n < 0 || n*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return ByteSize(n * mult), nil
}

// decodeRaw reads a size as a number of bytes or a number with a unit.
func (b *ByteSize) decodeRaw(d *decoder, path string, raw any) {
	fix := "write a size such as 500MB, 2GB or 1GiB"
	switch v := raw.(type) {
	case int, int64, uint64, float64:
		n, _ := toFloat(v)
		if n < 0 || n != math.Trunc(n) {
			d.errorf(path, fix, "%v is not a size", v)
			return
		}
		*b = ByteSize(n)
	case string:
		n, err := ParseByteSize(v)
		if err != nil {
			d.errorf(path, fix, "%v", err)
			return
		}
		*b = n
	default:
		d.errorf(path, fix, "expected a size, got %s", describe(raw))
	}
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
	SuccessThreshold int           `koanf:"success_threshold"`
	// RepeatInterval re-sends an open check incident (a reminder) this often while it
	// stays failing, as Alertmanager's repeat_interval; 0 never reminds.
	RepeatInterval time.Duration `koanf:"repeat_interval"`
	Notify         []string      `koanf:"notify"`
}

// Service groups the checks that verify a deploy of one deployable thing.
type Service struct {
	Checks    []string `koanf:"checks"`
	Verify    Verify   `koanf:"verify"`
	OnFailure Routes   `koanf:"on_failure"`
	// DryRun announces what rollback or halt would have been called, without calling it.
	DryRun     bool       `koanf:"dry_run"`
	Owners     Owners     `koanf:"owners"`      // owners.go
	RunbookURL RunbookURL `koanf:"runbook_url"` // owners.go

	Name string `koanf:"-"`
}

// Verify is a deploy's verification window, as an Argo Rollouts analysis.
type Verify struct {
	// InitialDelay is how long after registration the first round runs (Argo Rollouts'
	// initialDelay): time for new pods to start and be scraped.
	InitialDelay          time.Duration `koanf:"initial_delay"`
	Interval              time.Duration `koanf:"interval"`
	Count                 int           `koanf:"count"`
	FailureLimit          int           `koanf:"failure_limit"`
	InconclusiveLimit     int           `koanf:"inconclusive_limit"`
	ConsecutiveErrorLimit *int          `koanf:"consecutive_error_limit"`
	// BaselineRuns is how many passing runs before the deploy make up the baseline.
	BaselineRuns int `koanf:"baseline_runs"`
}

// Routes maps an event to the notifiers it goes to. In YAML it is either a list (every
// event goes to those notifiers, each filtering by its own `events`) or a map from event
// name to a list.
type Routes map[string][]string

// AnyEvent is the Routes key a plain list decodes to.
const AnyEvent = "*"

// For returns the notifiers an event is routed to.
func (r Routes) For(event string) []string {
	seen := map[string]bool{}
	var out []string
	for _, key := range []string{event, AnyEvent} {
		for _, n := range r[key] {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

// Check kinds.
const (
	KindHTTP        = "http"
	KindScript      = "script"
	KindBrowser     = "browser"
	KindPropagation = "propagation"
	KindSLA         = "sla"
	KindLogscan     = "logscan"
	KindPromQL      = "promql"
	KindFleet       = "fleet"
)

// Kinds lists every check kind, in the order the README documents them.
var Kinds = []string{KindHTTP, KindScript, KindBrowser, KindPropagation, KindSLA, KindLogscan, KindPromQL, KindFleet}

// Check is one configured check. Exactly one of the kind fields is set, matching Kind.
type Check struct {
	Name             string            `koanf:"name"`
	Kind             string            `koanf:"kind"`
	Every            time.Duration     `koanf:"every"`
	Timeout          time.Duration     `koanf:"timeout"`
	Retries          *int              `koanf:"retries"`
	FailureThreshold int               `koanf:"failure_threshold"`
	SuccessThreshold int               `koanf:"success_threshold"`
	RepeatInterval   time.Duration     `koanf:"repeat_interval"`
	Notify           []string          `koanf:"notify"`
	Assert           []string          `koanf:"assert"`
	Labels           map[string]string `koanf:"labels"`
	Owners           Owners            `koanf:"owners"`      // owners.go
	RunbookURL       RunbookURL        `koanf:"runbook_url"` // owners.go
	// Service is the service this check belongs to (from services.*.checks); "" for none.
	Services []string `koanf:"-"`

	HTTP        *HTTPSpec        `koanf:"-"`
	Script      *ScriptSpec      `koanf:"-"`
	Browser     *BrowserSpec     `koanf:"-"`
	Propagation *PropagationSpec `koanf:"-"`
	SLA         *SLASpec         `koanf:"-"`
	Logscan     *LogscanSpec     `koanf:"-"`
	PromQL      *PromQLSpec      `koanf:"-"`
	Fleet       *FleetSpec       `koanf:"-"`

	// Index is the check's position in the file, for error paths (checks[Index]).
	Index int `koanf:"-"`
}

// Path is the check's key path prefix in errors: "checks[3]".
func (c *Check) Path() string { return indexPath("checks", c.Index) }

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
}

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

// HTTPSpec is the http kind: one request, assertions over the response.
type HTTPSpec struct {
	Request Request `koanf:"request"`
	// StoreBody keeps the response body in stored results: an excerpt of every run, and
	// the body itself (up to a cap) as evidence of a failing run. Off by default: bodies
	// can hold personal data and tokens, and they are what made stores grow.
	StoreBody bool `koanf:"store_body"`
}

// ScriptSpec is the script kind: an ordered API journey.
type ScriptSpec struct {
	Steps []*ScriptStep `koanf:"steps"`
}

// ScriptStep is one request of a journey; Extract pulls values for later steps.
type ScriptStep struct {
	Name    string            `koanf:"name"`
	Request Request           `koanf:"request"`
	Extract map[string]string `koanf:"extract"`
	Assert  []string          `koanf:"assert"`
}

// BrowserSpec is the browser kind: a real Chromium page load or journey.
type BrowserSpec struct {
	URL          string            `koanf:"url"`
	WaitFor      string            `koanf:"wait_for"`
	Steps        []*BrowserStep    `koanf:"steps"`
	Headers      map[string]string `koanf:"headers"`
	Cookies      []*Cookie         `koanf:"cookies"`
	Viewport     Viewport          `koanf:"viewport"`
	IgnoreErrors []string          `koanf:"ignore_errors"`
	ignore       []*regexp.Regexp  // IgnoreErrors, compiled by validation
	// NavigationTimeout bounds the first navigation inside the check's timeout.
	NavigationTimeout time.Duration `koanf:"navigation_timeout"`
}

// BrowserStep is one action of a browser journey. Exactly one action field is set.
type BrowserStep struct {
	Navigate   string        `koanf:"navigate"`
	Click      string        `koanf:"click"`
	Type       *TypeArg      `koanf:"type"`
	WaitFor    string        `koanf:"wait_for"`
	AssertText *TextArg      `koanf:"assert_text"`
	Sleep      time.Duration `koanf:"sleep"`
}

// TypeArg types Text into the element matching Selector.
type TypeArg struct {
	Selector string `koanf:"selector"`
	Text     Secret `koanf:"text"`
}

// TextArg asserts the element matching Selector contains Contains.
type TextArg struct {
	Selector string `koanf:"selector"`
	Contains string `koanf:"contains"`
}

// Cookie is set before the first navigation.
type Cookie struct {
	Name   string `koanf:"name"`
	Value  Secret `koanf:"value"`
	Domain string `koanf:"domain"`
	Path   string `koanf:"path"`
}

// Viewport is the browser window size.
type Viewport struct {
	Width  int `koanf:"width"`
	Height int `koanf:"height"`
}

// PropagationSpec is the propagation kind: write a marker, time until every reader sees it.
type PropagationSpec struct {
	Write   Request       `koanf:"write"`
	Read    []*Reader     `koanf:"read"`
	Poll    time.Duration `koanf:"poll"`
	Cleanup *Request      `koanf:"cleanup"`
	Match   ReadMatch     `koanf:"match"`
	Backoff BackoffCfg    `koanf:"backoff"`
}

// Reader is one read endpoint. In YAML it is a URL string or a full request.
type Reader struct {
	Name    string    `koanf:"name"`
	Request Request   `koanf:"request"`
	Match   ReadMatch `koanf:"match"`
}

// ReadMatch decides whether a read response shows the marker. The zero value means the
// body contains the nonce.
type ReadMatch struct {
	Contains string `koanf:"contains"`
	Path     string `koanf:"path"`
	Expr     string `koanf:"expr"`
}

// BackoffCfg shapes propagation polling: start at the poll interval, grow by Factor up to Max.
type BackoffCfg struct {
	Factor float64       `koanf:"factor"`
	Max    time.Duration `koanf:"max"`
}

// SLASpec is the sla kind: a bounded burst with latency percentiles and an error rate.
type SLASpec struct {
	Request     Request       `koanf:"request"`
	Requests    int           `koanf:"requests"`
	Concurrency int           `koanf:"concurrency"`
	Rate        float64       `koanf:"rate"`
	MaxDuration time.Duration `koanf:"max_duration"`
	AllowLoad   bool          `koanf:"allow_load"`
	// OKStatus lists the statuses that count as success; default 2xx and 3xx.
	OKStatus []int `koanf:"ok_status"`
}

// SLAMaxRequests is the per-run request cap without allow_load.
const SLAMaxRequests = 2000

// LogscanSpec is the logscan kind: count regex matches in logs written since the deploy.
type LogscanSpec struct {
	Source   LogSource     `koanf:"source"`
	Pattern  string        `koanf:"pattern"`
	Patterns []string      `koanf:"patterns"`
	Window   time.Duration `koanf:"window"`
	Samples  int           `koanf:"samples"`
	// MaxBytes caps the log bytes one run reads (files) or downloads (url); past it the
	// run notes what it skipped instead of reading without bound.
	MaxBytes int64 `koanf:"max_bytes"`

	compiled []*regexp.Regexp // Pattern then Patterns, compiled by validation
}

// Regexps returns pattern and patterns, compiled when the config was validated.
func (l *LogscanSpec) Regexps() []*regexp.Regexp { return l.compiled }

// IgnoreRegexps returns ignore_errors, compiled when the config was validated.
func (b *BrowserSpec) IgnoreRegexps() []*regexp.Regexp { return b.ignore }

// LogscanMaxBytes is the default per-run read cap of a logscan check.
const LogscanMaxBytes = 64 << 20

// LogSource is a file glob or a Loki-style query_range API.
type LogSource struct {
	File    string            `koanf:"file"`
	URL     string            `koanf:"url"`
	Query   string            `koanf:"query"`
	Headers map[string]string `koanf:"headers"`
	Auth    Auth              `koanf:"auth"`
}

// PromQLSpec is the promql kind: an instant query.
type PromQLSpec struct {
	Server  string            `koanf:"server"`
	Query   string            `koanf:"query"`
	Headers map[string]string `koanf:"headers"`
	Auth    Auth              `koanf:"auth"`
}

// FleetSpec is the fleet kind: every instance's health and version.
type FleetSpec struct {
	Targets     FleetTargets `koanf:"targets"`
	Health      FleetHealth  `koanf:"health"`
	Version     FleetVersion `koanf:"version"`
	Concurrency int          `koanf:"concurrency"`
}

// FleetTargets is a static list of base URLs or a discovery URL plus a gjson path.
type FleetTargets struct {
	Static  []string          `koanf:"static"`
	URL     string            `koanf:"url"`
	Path    string            `koanf:"path"`
	Headers map[string]string `koanf:"headers"`
}

// FleetHealth is the per-instance health request: a path appended to the instance URL.
type FleetHealth struct {
	Path   string `koanf:"path"`
	Status []int  `koanf:"status"`
	// Timeout bounds each instance's health and version requests, so one hanging instance
	// is reported unhealthy instead of using up the whole run.
	Timeout time.Duration `koanf:"timeout"`
}

// FleetVersion is where an instance reports its version: a path, and a gjson field in its
// JSON answer (empty: the whole trimmed body).
type FleetVersion struct {
	Path   string `koanf:"path"`
	Field  string `koanf:"field"`
	Header string `koanf:"header"`
}

// Notifier types.
const (
	NotifierSlack     = "slack"
	NotifierPagerDuty = "pagerduty"
	NotifierWebhook   = "webhook"
)

// Notifier is a named destination for events.
type Notifier struct {
	Type   string   `koanf:"type"`
	Events []string `koanf:"events"`
	DryRun bool     `koanf:"dry_run"`

	// slack
	Token   Secret `koanf:"token"`
	Channel string `koanf:"channel"`
	APIURL  string `koanf:"api_url"`

	// pagerduty
	RoutingKey Secret `koanf:"routing_key"`
	Severity   string `koanf:"severity"`

	// webhook (url is also pagerduty's Events v2 endpoint override)
	URL         string            `koanf:"url"`
	Secret      Secret            `koanf:"secret"`
	Headers     map[string]string `koanf:"headers"`
	Action      string            `koanf:"action"` // rollback, halt, or "" (informational)
	Timeout     time.Duration     `koanf:"timeout"`
	MaxAttempts int               `koanf:"max_attempts"`

	Name string `koanf:"-"`
}

// Events a notifier can receive.
const (
	EventDeployFailed       = "deploy_failed"
	EventDeployHalted       = "deploy_halted"
	EventDeployInconclusive = "deploy_inconclusive"
	EventDeployPassed       = "deploy_passed"
	EventDeployStarted      = "deploy_started"
	EventCheckFailed        = "check_failed"
	EventCheckRecovered     = "check_recovered"
)

// Events lists every event name.
var Events = []string{EventDeployFailed, EventDeployHalted, EventDeployInconclusive, EventDeployPassed,
	EventDeployStarted, EventCheckFailed, EventCheckRecovered}

// Maintenance is a recurring or one-off window in which failures are recorded but not sent.
type Maintenance struct {
	Name     string   `koanf:"name"`
	Checks   []string `koanf:"checks"`
	Services []string `koanf:"services"`
	// Start and End bound a one-off window (RFC 3339).
	Start string `koanf:"start"`
	End   string `koanf:"end"`
	// Weekly windows: days (mon..sun, empty: every day), a start time of day and a duration.
	Days     []string      `koanf:"days"`
	At       string        `koanf:"at"`
	Duration time.Duration `koanf:"duration"`
	Timezone string        `koanf:"timezone"`
	Reason   string        `koanf:"reason"`

	// The parsed times (maintenance.go), filled once by validation.
	parsed   bool
	schedule *Schedule
	problems []schedProblem
}

// Built-in defaults, applied where neither the check nor the defaults block sets a value.
const (
	DefaultEvery            = time.Minute
	DefaultTimeout          = 10 * time.Second
	DefaultRetries          = 1
	DefaultFailureThreshold = 2
	DefaultSuccessThreshold = 1
	DefaultMaxBodyBytes     = 1 << 20
	DefaultListen           = "127.0.0.1:9090"
	DefaultConcurrency      = 32
	DefaultBrowserConc      = 2
	DefaultMaxConnections   = 512
	DefaultRetention        = 168 * time.Hour
	DefaultMaxSize          = ByteSize(1 << 30)
	MinMaxSize              = ByteSize(1 << 20)
	DefaultVerifyInterval   = 5 * time.Second
	DefaultVerifyCount      = 6
	DefaultBaselineRuns     = 5
)

// CheckByName returns the named check, or nil.
func (c *Config) CheckByName(name string) *Check {
	for _, ch := range c.Checks {
		if ch.Name == name {
			return ch
		}
	}
	return nil
}
