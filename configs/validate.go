package configs

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
	// Maintenance windows name IANA time zones; embedding the database makes them load
	// the same on a distroless image with no /usr/share/zoneinfo.
	_ "time/tzdata"
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
	v.locations()
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
	if s.Driver != DriverSQLite && s.Driver != DriverPostgres {
		v.errf("store.driver", `use "sqlite" (one agent) or "postgres" (agents sharing a store)`, "unsupported driver %q", s.Driver)
	}
	if s.Driver == DriverSQLite && s.MaxSize < MinMaxSize {
		v.errf("store.max_size", "use at least 1MiB, e.g. 1GB", "%s is too small to keep a day of history", s.MaxSize)
	}
	if s.Retention < time.Hour {
		v.errf("store.retention", "keep at least 1h of history, e.g. 168h", "%s is too short", s.Retention)
	}
}

func (v *validator) checks() map[string]bool {
	names := map[string]bool{}
	first := map[string]int{}
	for i, ch := range v.c.Checks {
		p := indexPath("checks", i)
		if ch == nil {
			v.errf(p, "remove the empty item", "empty check")
			continue
		}
		switch {
		case ch.Name == "":
			v.errf(p+".name", "give every check a unique name", "missing")
		case !nameRE.MatchString(ch.Name):
			v.errf(p+".name", nameFix, "%q is not a valid name", ch.Name)
		default:
			if j, dup := first[ch.Name]; dup {
				v.errf(p+".name", "check names must be unique; rename one of them",
					"%q is already the name of checks[%d]", ch.Name, j)
			} else {
				first[ch.Name] = i
			}
			names[ch.Name] = true
		}
		if ch.Every < time.Second {
			v.errf(p+".every", "use 1s or more", "%s is too frequent", ch.Every)
		}
		if ch.Timeout <= 0 {
			v.errf(p+".timeout", "use a positive duration such as 10s", "must be positive")
		}
		if *ch.Retries < 0 || *ch.Retries > 10 {
			v.errf(p+".retries", "use 0 to 10", "%d is out of range", *ch.Retries)
		}
		if ch.FailureThreshold < 1 || ch.SuccessThreshold < 1 {
			v.errf(p, "thresholds count runs: use 1 or more", "failure_threshold and success_threshold must be at least 1")
		}
		if ch.RepeatInterval != 0 && ch.RepeatInterval < time.Minute {
			v.errf(p+".repeat_interval", "use 1m or more (e.g. 4h), or 0 for no reminders", "%s would page too often", ch.RepeatInterval)
		}
		for j, a := range ch.Assert {
			if strings.TrimSpace(a) == "" {
				v.errf(indexPath(p+".assert", j), "remove it or write an expression such as status == 200", "empty assertion")
			}
		}
		v.kind(ch, p)
	}
	for i, ch := range v.c.Checks {
		if ch == nil {
			continue
		}
		for j, n := range ch.Notify {
			if _, ok := v.c.Notifiers[n]; !ok {
				v.errf(fmt.Sprintf("checks[%d].notify[%d]", i, j), DidYouMean(n, v.notifierNames()), "unknown notifier %q", n)
			}
		}
	}
	for j, n := range v.c.Defaults.Notify {
		if _, ok := v.c.Notifiers[n]; !ok {
			v.errf(indexPath("defaults.notify", j), DidYouMean(n, v.notifierNames()), "unknown notifier %q", n)
		}
	}
	return names
}

func (v *validator) kind(ch *Check, p string) {
	switch {
	case ch.HTTP != nil:
		v.request(p+".request", &ch.HTTP.Request)
	case ch.Script != nil:
		if len(ch.Script.Steps) == 0 {
			v.errf(p+".steps", "add at least one step with a request", "a script needs steps")
		}
		for i, st := range ch.Script.Steps {
			sp := indexPath(p+".steps", i)
			if st == nil {
				v.errf(sp, "remove the empty item", "empty step")
				continue
			}
			v.request(sp+".request", &st.Request)
			for name, from := range st.Extract {
				if !validExtract(from) {
					v.errf(sp+".extract."+name, `write json.PATH (a gjson path), header.NAME, status or body`, "cannot extract from %q", from)
				}
			}
		}
	case ch.Browser != nil:
		v.browser(p, ch.Browser)
	case ch.Propagation != nil:
		v.propagation(p, ch.Propagation)
	case ch.SLA != nil:
		v.sla(p, ch.SLA, ch.Timeout)
	case ch.Logscan != nil:
		v.logscan(p, ch.Logscan)
	case ch.PromQL != nil:
		pq := ch.PromQL
		if pq.Server == "" {
			v.errf(p+".server", "set the Prometheus base URL, e.g. http://127.0.0.1:9090", "missing")
		} else {
			v.url(p+".server", pq.Server)
		}
		if strings.TrimSpace(pq.Query) == "" {
			v.errf(p+".query", "write a PromQL instant query, e.g. max(pool_active_connections)", "missing")
		}
		if pq.Auth.Bearer.IsSet() && (pq.Auth.Username != "" || pq.Auth.Password.IsSet()) {
			v.errf(p+".auth", "use either bearer or username and password", "both bearer and basic credentials are set")
		}
	case ch.Fleet != nil:
		v.fleet(p, ch.Fleet, ch.Timeout)
	}
}

// validExtract accepts the extraction sources a script step supports.
func validExtract(from string) bool {
	switch {
	case from == "status", from == "body":
		return true
	case strings.HasPrefix(from, "json.") && len(from) > 5, from == "json":
		return true
	case strings.HasPrefix(from, "header.") && len(from) > 7:
		return true
	}
	return false
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
	if !validMethod(r.Method) {
		v.errf(p+".method", DidYouMean(strings.ToUpper(r.Method), methods), "%q is not an HTTP method", r.Method)
	}
	if r.Timeout <= 0 {
		v.errf(p+".timeout", "use a positive duration such as 5s", "must be positive")
	}
	if r.MaxBodyBytes < 0 {
		v.errf(p+".max_body_bytes", "use a positive size in bytes", "must be positive")
	}
	if r.TLS.CAFile != "" {
		if !filepath.IsAbs(r.TLS.CAFile) {
			r.TLS.CAFile = filepath.Join(v.c.Dir, r.TLS.CAFile)
		}
		if _, err := os.Stat(r.TLS.CAFile); err != nil {
			v.errf(p+".tls.ca_file", "point it at a PEM file of CA certificates", "cannot read %s", r.TLS.CAFile)
		}
	}
	if r.Auth.Bearer.IsSet() && (r.Auth.Username != "" || r.Auth.Password.IsSet()) {
		v.errf(p+".auth", "use either bearer or username and password", "both bearer and basic credentials are set")
	}
}

var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions}

func validMethod(m string) bool { return contains(methods, m) }

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

func (v *validator) browser(p string, b *BrowserSpec) {
	if b.URL == "" && (len(b.Steps) == 0 || b.Steps[0] == nil || b.Steps[0].Navigate == "") {
		v.errf(p+".url", "set the page to load, or start steps with a navigate", "missing")
	} else if b.URL != "" {
		v.url(p+".url", b.URL)
	}
	for i, st := range b.Steps {
		sp := indexPath(p+".steps", i)
		if st == nil {
			v.errf(sp, "remove the empty item", "empty step")
			continue
		}
		n := 0
		for _, set := range []bool{st.Navigate != "", st.Click != "", st.Type != nil, st.WaitFor != "", st.AssertText != nil, st.Sleep != 0} {
			if set {
				n++
			}
		}
		if n != 1 {
			v.errf(sp, "give each step exactly one of navigate, click, type, wait_for, assert_text, sleep", "a step has %d actions", n)
		}
		if st.Navigate != "" {
			v.url(sp+".navigate", st.Navigate)
		}
		if st.Sleep > 30*time.Second {
			v.errf(sp+".sleep", "use wait_for with a selector instead of long sleeps", "%s is longer than the 30s a sleep may take", st.Sleep)
		}
		if st.Type != nil && st.Type.Selector == "" {
			v.errf(sp+".type.selector", "set the CSS selector of the field to type into", "missing")
		}
		if st.AssertText != nil && st.AssertText.Selector == "" {
			v.errf(sp+".assert_text.selector", "set the CSS selector whose text to check", "missing")
		}
	}
	b.ignore = b.ignore[:0]
	for i, src := range b.IgnoreErrors {
		re, err := regexp.Compile(src)
		if err != nil {
			v.errf(indexPath(p+".ignore_errors", i), "write a Go regular expression (RE2)", "bad regex: %v", err)
			continue
		}
		b.ignore = append(b.ignore, re)
	}
	for i, ck := range b.Cookies {
		if ck == nil || ck.Name == "" {
			v.errf(indexPath(p+".cookies", i), "give each cookie a name and value", "cookie without a name")
		}
	}
	if b.Viewport.Width < 100 || b.Viewport.Height < 100 || b.Viewport.Width > 7680 || b.Viewport.Height > 4320 {
		v.errf(p+".viewport", "use a width and height between 100 and 7680x4320", "%dx%d is out of range", b.Viewport.Width, b.Viewport.Height)
	}
}

func (v *validator) propagation(p string, s *PropagationSpec) {
	v.request(p+".write", &s.Write)
	if len(s.Read) == 0 {
		v.errf(p+".read", "list the endpoints that must show the marker", "at least one reader is needed")
	}
	names := map[string]int{}
	for i, r := range s.Read {
		rp := indexPath(p+".read", i)
		if r == nil {
			v.errf(rp, "remove the empty item", "empty reader")
			continue
		}
		v.request(rp+".request", &r.Request)
		v.match(rp+".match", r.Match)
		if j, dup := names[r.Name]; dup {
			v.errf(rp+".name", "give each reader its own name (name: replica-b); a reader's name defaults to its URL",
				"%q is already the name of read[%d]", r.Name, j)
		} else {
			names[r.Name] = i
		}
	}
	v.match(p+".match", s.Match)
	if s.Cleanup != nil {
		v.request(p+".cleanup", s.Cleanup)
	}
	if s.Poll < 10*time.Millisecond {
		v.errf(p+".poll", "poll every 10ms or slower", "%s is too fast", s.Poll)
	}
	if s.Backoff.Factor < 1 || s.Backoff.Factor > 4 {
		v.errf(p+".backoff.factor", "use 1 (no backoff) to 4", "%g is out of range", s.Backoff.Factor)
	}
	if s.Backoff.Max < s.Poll {
		v.errf(p+".backoff.max", fmt.Sprintf("use at least poll (%s); it caps how far polling slows down", s.Poll),
			"%s is shorter than poll", s.Backoff.Max)
	}
}

func (v *validator) match(p string, m ReadMatch) {
	n := 0
	for _, set := range []bool{m.Contains != "", m.Path != "", m.Expr != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		v.errf(p, "use one of contains, path or expr", "more than one way to match is set")
	}
}

func (v *validator) sla(p string, s *SLASpec, timeout time.Duration) {
	v.request(p+".request", &s.Request)
	if s.Requests < 1 {
		v.errf(p+".requests", "use 1 or more", "must be at least 1")
	}
	if s.Requests > SLAMaxRequests && !s.AllowLoad {
		v.errf(p+".requests", fmt.Sprintf("lower it to %d, or set allow_load: true if this target is meant to take load", SLAMaxRequests),
			"%d requests per run is above the safety cap", s.Requests)
	}
	if s.Concurrency < 1 || s.Concurrency > 1000 {
		v.errf(p+".concurrency", "use 1 to 1000", "%d is out of range", s.Concurrency)
	}
	if s.Rate < 0 {
		v.errf(p+".rate", "use a positive number of requests per second, or leave it out", "must not be negative")
	}
	switch {
	case s.MaxDuration <= 0:
		v.errf(p+".max_duration", "use a positive duration such as 10s", "must be positive")
	case s.MaxDuration > timeout:
		v.errf(p+".max_duration", fmt.Sprintf("lower it to the check's timeout (%s) or raise timeout", timeout),
			"%s is longer than the check's timeout, which would cut the burst", s.MaxDuration)
	case s.Rate > 0 && s.Requests > 0:
		if need := time.Duration(float64(s.Requests-1) / s.Rate * float64(time.Second)); need > s.MaxDuration {
			v.errf(p+".max_duration", fmt.Sprintf("raise max_duration (and timeout) above %s, raise rate, or send fewer requests", need.Round(time.Millisecond)),
				"%d requests at %g/s take %s, longer than max_duration %s", s.Requests, s.Rate, need.Round(time.Millisecond), s.MaxDuration)
		}
	}
	for i, st := range s.OKStatus {
		if st < 100 || st > 599 {
			v.errf(indexPath(p+".ok_status", i), "use HTTP status codes such as 200", "%d is not a status code", st)
		}
	}
}

func (v *validator) logscan(p string, l *LogscanSpec) {
	src := l.Source
	switch {
	case src.File == "" && src.URL == "":
		v.errf(p+".source", "set source.file (a glob) or source.url (a Loki query_range API)", "no source")
	case src.File != "" && src.URL != "":
		v.errf(p+".source", "set either file or url", "both file and url are set")
	case src.File != "":
		if _, err := filepath.Match(src.File, ""); err != nil {
			v.errf(p+".source.file", "write a shell glob such as /var/log/app/*.log", "bad glob: %v", err)
		}
		for _, k := range []struct {
			key string
			set bool
		}{{"query", src.Query != ""}, {"headers", len(src.Headers) > 0}, {"auth", src.Auth.Username != "" || src.Auth.Bearer.IsSet()}} {
			if k.set {
				v.errf(p+".source."+k.key, "remove it: it only applies to a url (Loki) source", "not used with a file source")
			}
		}
	case src.URL != "":
		v.url(p+".source.url", src.URL)
		switch q := strings.TrimSpace(src.Query); {
		case q == "":
			v.errf(p+".source.query", `write a LogQL stream selector such as {app="web"}`, "a url source needs a query")
		case !strings.HasPrefix(q, "{"):
			v.errf(p+".source.query", `write a log query that starts with a stream selector, such as {app="web"} |= "error"; metric queries (rate, count_over_time) return no lines`,
				"%q is not a log query", q)
		}
		if src.Auth.Bearer.IsSet() && (src.Auth.Username != "" || src.Auth.Password.IsSet()) {
			v.errf(p+".source.auth", "use either bearer or username and password", "both bearer and basic credentials are set")
		}
	}
	pats := l.Patterns
	if l.Pattern != "" {
		pats = append([]string{l.Pattern}, pats...)
	}
	if len(pats) == 0 {
		v.errf(p+".pattern", "set pattern (a regex) or patterns (a list)", "missing")
	}
	seen := map[string]bool{}
	l.compiled = l.compiled[:0]
	compile := func(path, src string) {
		re, err := regexp.Compile(src)
		if err != nil {
			v.errf(path, "write a Go regular expression (RE2)", "bad regex: %v", err)
			return
		}
		l.compiled = append(l.compiled, re)
	}
	if l.Pattern != "" {
		compile(p+".pattern", l.Pattern)
	}
	for i, re := range l.Patterns {
		ip := indexPath(p+".patterns", i)
		compile(ip, re)
		if seen[re] || re == l.Pattern {
			v.errf(ip, "remove the duplicate", "pattern %q is listed twice", re)
		}
		seen[re] = true
	}
	if l.Window < time.Second {
		v.errf(p+".window", "use 1s or more, e.g. 5m", "%s is too short", l.Window)
	}
	if l.Samples < 0 || l.Samples > 100 {
		v.errf(p+".samples", "use 0 to 100", "%d is out of range", l.Samples)
	}
	if l.MaxBytes < 4096 {
		v.errf(p+".max_bytes", fmt.Sprintf("use at least 4096, e.g. %d (the default)", LogscanMaxBytes), "%d is too small", l.MaxBytes)
	}
}

func (v *validator) fleet(p string, f *FleetSpec, timeout time.Duration) {
	t := f.Targets
	switch {
	case len(t.Static) == 0 && t.URL == "":
		v.errf(p+".targets", "set targets.static (a list of base URLs) or targets.url with targets.path", "no targets")
	case len(t.Static) > 0 && t.URL != "":
		v.errf(p+".targets", "set either static or url", "both static and url are set")
	case t.URL != "":
		v.url(p+".targets.url", t.URL)
		if t.Path == "" {
			v.errf(p+".targets.path", "write the gjson path to the instance URLs, e.g. instances.#.url", "a discovery url needs a path")
		}
	}
	if len(t.Static) > 0 && (t.Path != "" || len(t.Headers) > 0) {
		v.errf(p+".targets", "remove path and headers: they only apply to a discovery url", "path or headers set with a static list")
	}
	seen := map[string]int{}
	for i, s := range t.Static {
		sp := indexPath(p+".targets.static", i)
		v.url(sp, s)
		if j, dup := seen[s]; dup {
			v.errf(sp, "list each instance once", "%q is already targets.static[%d]", s, j)
		} else {
			seen[s] = i
		}
	}
	if !strings.HasPrefix(f.Health.Path, "/") {
		v.errf(p+".health.path", "start it with /, e.g. /healthz", "%q is not a path", f.Health.Path)
	}
	for i, st := range f.Health.Status {
		if st < 100 || st > 599 {
			v.errf(indexPath(p+".health.status", i), "use HTTP status codes such as 200", "%d is not a status code", st)
		}
	}
	if f.Health.Timeout <= 0 || f.Health.Timeout > timeout {
		v.errf(p+".health.timeout", fmt.Sprintf("use a positive duration up to the check's timeout (%s), e.g. 2s", timeout),
			"%s is out of range", f.Health.Timeout)
	}
	if f.Version.Path != "" && !strings.HasPrefix(f.Version.Path, "/") {
		v.errf(p+".version.path", "start it with /, e.g. /version", "%q is not a path", f.Version.Path)
	}
	if f.Version.Field != "" && f.Version.Path == "" {
		v.errf(p+".version.field", "set version.path too: field is read from the JSON that path answers", "field without a path")
	}
	if f.Concurrency < 1 || f.Concurrency > 256 {
		v.errf(p+".concurrency", "use 1 to 256", "%d is out of range", f.Concurrency)
	}
}

func (v *validator) services(checks map[string]bool) {
	checkNames := sortedSet(checks)
	for _, name := range sortedMapKeys(v.c.Services) {
		s := v.c.Services[name]
		p := "services." + name
		if !nameRE.MatchString(name) {
			v.errf(p, nameFix, "%q is not a valid service name", name)
		}
		if len(s.Checks) == 0 {
			v.errf(p+".checks", "list the checks that verify a deploy of this service", "a service needs checks")
		}
		for i, cn := range s.Checks {
			if !checks[cn] {
				v.errf(indexPath(p+".checks", i), DidYouMean(cn, checkNames), "unknown check %q", cn)
			}
		}
		vf := s.Verify
		if vf.Count < 1 {
			v.errf(p+".verify.count", "use 1 or more rounds", "must be at least 1")
		}
		if vf.Interval < 100*time.Millisecond {
			v.errf(p+".verify.interval", "use 100ms or more", "%s is too short", vf.Interval)
		}
		if vf.InitialDelay < 0 || vf.InitialDelay > 24*time.Hour {
			v.errf(p+".verify.initial_delay", "use a duration from 0s to 24h, e.g. 30s", "%s is out of range", vf.InitialDelay)
		}
		if vf.FailureLimit < 0 || vf.InconclusiveLimit < 0 || *vf.ConsecutiveErrorLimit < 0 {
			v.errf(p+".verify", "limits count runs: use 0 or more", "limits must not be negative")
		}
		for _, ev := range sortedMapKeys(s.OnFailure) {
			for i, n := range s.OnFailure[ev] {
				np := indexPath(p+".on_failure", i)
				if ev != AnyEvent {
					np = indexPath(p+".on_failure."+ev, i)
				}
				if _, ok := v.c.Notifiers[n]; !ok {
					v.errf(np, DidYouMean(n, v.notifierNames()), "unknown notifier %q", n)
				}
			}
		}
	}
}

// notifierKeys lists the keys each notifier type accepts, besides type, events and dry_run.
var notifierKeys = map[string][]string{
	NotifierSlack:     {"token", "channel", "api_url", "timeout", "max_attempts"},
	NotifierPagerDuty: {"routing_key", "severity", "url", "timeout", "max_attempts"},
	NotifierWebhook:   {"url", "secret", "headers", "action", "timeout", "max_attempts"},
}

func (v *validator) notifiers() {
	types := sortedMapKeys(notifierKeys)
	for _, name := range sortedMapKeys(v.c.Notifiers) {
		n := v.c.Notifiers[name]
		p := "notifiers." + name
		if !nameRE.MatchString(name) {
			v.errf(p, nameFix, "%q is not a valid notifier name", name)
		}
		if _, ok := notifierKeys[n.Type]; !ok {
			if n.Type == "" {
				v.errf(p+".type", "set type to one of: "+strings.Join(types, ", "), "missing")
			} else {
				v.errf(p+".type", DidYouMean(n.Type, types), "unknown notifier type %q", n.Type)
			}
			continue
		}
		for i, ev := range n.Events {
			if !contains(Events, ev) {
				v.errf(indexPath(p+".events", i), DidYouMean(ev, Events), "unknown event %q", ev)
			}
		}
		switch n.Type {
		case NotifierSlack:
			if !n.Token.IsSet() {
				v.errf(p+".token", "set a bot token, e.g. token: ${SLACK_TOKEN}", "missing")
			}
			if n.Channel == "" {
				v.errf(p+".channel", `set the channel to post in, e.g. "#deploys"`, "missing")
			}
			if n.APIURL != "" {
				v.url(p+".api_url", n.APIURL)
			}
		case NotifierPagerDuty:
			if !n.RoutingKey.IsSet() {
				v.errf(p+".routing_key", "set the Events v2 integration key, e.g. routing_key: ${PD_ROUTING_KEY}", "missing")
			}
			if !contains([]string{"critical", "error", "warning", "info"}, n.Severity) {
				v.errf(p+".severity", "use critical, error, warning or info", "%q is not a PagerDuty severity", n.Severity)
			}
			if n.URL != "" {
				if _, ok := PagerDutyEndpoint(n.URL); !ok {
					v.errf(p+".url", "give the full Events v2 enqueue URL, e.g. https://events.pagerduty.com/v2/enqueue (change events go to /v2/change/enqueue beside it)",
						"%q does not end in /v2/enqueue", n.URL)
				}
			}
		case NotifierWebhook:
			if n.URL == "" {
				v.errf(p+".url", "set the URL to POST to", "missing")
			} else {
				v.url(p+".url", n.URL)
			}
			if !n.Secret.IsSet() {
				v.errf(p+".secret", "set a signing secret, e.g. secret: ${ROLLBACK_SECRET}; receivers verify X-Vigil-Signature with it", "missing")
			}
			if !contains([]string{"", "rollback", "halt"}, n.Action) {
				v.errf(p+".action", `use "rollback", "halt", or leave it out for a plain notification`, "unknown action %q", n.Action)
			}
			for _, h := range sortedMapKeys(n.Headers) {
				if ReservedWebhookHeader(h) {
					v.errf(p+".headers."+h, "remove it: vigil sets it on every delivery (the body is JSON, the signature covers it)", "vigil sets this header itself")
				}
			}
		}
		if n.MaxAttempts < 1 || n.MaxAttempts > 50 {
			v.errf(p+".max_attempts", "use 1 to 50", "%d is out of range", n.MaxAttempts)
		}
	}
}

// webhookHeaders are the headers vigil sets on every webhook delivery; a configured header
// may not replace them.
var webhookHeaders = []string{"Content-Type", "Content-Length", "Host", "Transfer-Encoding", "User-Agent",
	"X-Vigil-Event", "X-Vigil-Timestamp", "X-Vigil-Signature", "Idempotency-Key"}

// ReservedWebhookHeader reports whether vigil sets header name itself on webhook deliveries.
func ReservedWebhookHeader(name string) bool {
	for _, h := range webhookHeaders {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// PagerDutyEndpoint checks a PagerDuty notifier's url, the full Events v2 enqueue URL, and
// returns the API's base (the URL without /v2/enqueue), which change events share.
func PagerDutyEndpoint(raw string) (base string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return "", false
	}
	trimmed := strings.TrimSuffix(raw, "/")
	base = strings.TrimSuffix(trimmed, "/v2/enqueue")
	return base, base != trimmed
}

// WeekDays are the day names a weekly maintenance window accepts, in any case.
var WeekDays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

func (v *validator) maintenance(checks map[string]bool) {
	names := map[string]int{}
	for i, m := range v.c.Maintenance {
		p := indexPath("maintenance", i)
		if m == nil {
			v.errf(p, "remove the empty item", "empty window")
			continue
		}
		if m.Name != "" {
			if !nameRE.MatchString(m.Name) {
				v.errf(p+".name", nameFix, "%q is not a valid name", m.Name)
			} else if j, dup := names[m.Name]; dup {
				v.errf(p+".name", "window names must be unique; rename one of them", "%q is already the name of maintenance[%d]", m.Name, j)
			} else {
				names[m.Name] = i
			}
		}
		for j, cn := range m.Checks {
			if !checks[cn] {
				v.errf(indexPath(p+".checks", j), DidYouMean(cn, sortedSet(checks)), "unknown check %q", cn)
			}
		}
		for j, sn := range m.Services {
			if _, ok := v.c.Services[sn]; !ok {
				v.errf(indexPath(p+".services", j), DidYouMean(sn, sortedMapKeys(v.c.Services)), "unknown service %q", sn)
			}
		}
		for _, pr := range m.parse() {
			key := p
			if pr.key != "" {
				key += "." + pr.key
			}
			v.errf(key, pr.fix, "%s", pr.msg)
		}
	}
}

func (v *validator) notifierNames() []string { return sortedMapKeys(v.c.Notifiers) }

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedSet(m map[string]bool) []string { return sortedMapKeys(m) }
