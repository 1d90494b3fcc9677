package configs

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"
)

// Service groups the checks that verify a deploy of one deployable thing.
type Service struct {
	Checks    []string `koanf:"checks"`
	Verify    Verify   `koanf:"verify"`
	OnFailure Routes   `koanf:"on_failure"`
	// DryRun announces what rollback or halt would have been called, without calling it.
	DryRun     bool       `koanf:"dry_run"`
	Owners     Owners     `koanf:"owners"`      // owners.go
	RunbookURL RunbookURL `koanf:"runbook_url"` // owners.go
	// InhibitChecks mutes the incidents of the service's checks for this long after a
	// deploy of it fails, until a later deploy passes (the rollback), as an Alertmanager
	// inhibit rule would: its on-call has the deploy's page for the same outage. An
	// incident that outlives it is sent then. 0: never.
	InhibitChecks time.Duration `koanf:"inhibit_checks"`

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
	// ReadyWithin is the new version's startup SLA: a check whose runs have not passed
	// once by a round this long after registration fails the deploy. 0: no limit.
	ReadyWithin time.Duration `koanf:"ready_within"`
	// ReadySlowdown is the startup rule relative to the service's own history: a check
	// that has not passed once by this many times its usual startup (the median of its
	// first passes in the service's last deploys that passed) fails the deploy. 0: off.
	ReadySlowdown float64 `koanf:"ready_slowdown"`
	// RegisteredBeforeRollout says the pipeline registers a deploy before its rollout
	// begins (a pre-rollout hook, Argo Rollouts or Flagger calling vigil as the rollout
	// starts): a failure the service had before the registration was then not the new
	// version's, and one that goes on the same way after it makes the verdict
	// inconclusive, not failed. Off, a run before the registration may already be the new
	// version's (a gate after the rollout step), and every failure counts.
	RegisteredBeforeRollout bool `koanf:"registered_before_rollout"`
	// Visitors is how many runs make each round of a check whose run is one client on
	// connections of its own (http, script, grpc, websocket, tcp, tls): each opens its own,
	// so behind a balancer that picks a pod per connection a round samples several pods,
	// and a failure of any is the round's (agent/verify_visitors.go).
	Visitors int `koanf:"visitors"`
	// BaselineRuns is how many passing runs before the deploy make up the baseline.
	BaselineRuns int `koanf:"baseline_runs"`
	// Locations overrides the top-level locations quorum for this service (locations.go).
	Locations *Quorum `koanf:"locations"`
}

// A verification window's defaults.
const (
	defaultVerifyInterval = 5 * time.Second
	defaultVerifyCount    = 6
	defaultBaselineRuns   = 5
	// defaultVisitors: with the default 6 rounds, 24 connections, so a Deployment with one
	// broken pod of four passes one verification in a thousand (0.75^24), not one in six.
	defaultVisitors = 4
	maxVisitors     = 20
	// DefaultConsecutiveErrorLimit is Argo Rollouts' default: four errors in a row end a
	// verification as inconclusive.
	DefaultConsecutiveErrorLimit = 4
)

// Routes maps an event to the notifiers it goes to. In YAML it is either a list (every
// event goes to those notifiers, each filtering by its own `events`) or a map from event
// name to a list.
type Routes map[string][]string

// anyEvent is the Routes key a plain list decodes to.
const anyEvent = "*"

// For returns the notifiers an event is routed to.
func (r Routes) For(event string) []string {
	seen := map[string]bool{}
	var out []string
	for _, key := range []string{event, anyEvent} {
		for _, n := range r[key] {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

// decodeRaw reads routes as a list (every event) or a map from event to list.
func (r *Routes) decodeRaw(d *decoder, path string, raw any) {
	out := Routes{}
	switch v := raw.(type) {
	case []any:
		var names []string
		d.decode(path, v, reflect.ValueOf(&names).Elem())
		out[anyEvent] = names
	case map[string]any:
		for _, ev := range slices.Sorted(maps.Keys(v)) {
			if !slices.Contains(Events, ev) {
				d.errorf(joinPath(path, ev), DidYouMean(ev, Events), "unknown event %q", ev)
				continue
			}
			var names []string
			d.decode(joinPath(path, ev), v[ev], reflect.ValueOf(&names).Elem())
			out[ev] = names
		}
	default:
		d.errorf(path, "write a list of notifier names, or a mapping from event to a list", "expected a list or a mapping, got %s", describe(raw))
		return
	}
	*r = out
}

// applyDefaults names the service, fills its window's defaults and tells its checks.
func (s *Service) applyDefaults(c *Config, name string) {
	s.Name = name
	v := &s.Verify
	setDur(&v.Interval, defaultVerifyInterval)
	setInt(&v.Count, defaultVerifyCount)
	setInt(&v.BaselineRuns, defaultBaselineRuns)
	setInt(&v.Visitors, defaultVisitors)
	if v.ConsecutiveErrorLimit == nil {
		v.ConsecutiveErrorLimit = ptr(DefaultConsecutiveErrorLimit)
	}
	for _, cn := range s.Checks {
		if ch := c.CheckByName(cn); ch != nil && !slices.Contains(ch.Services, name) {
			ch.Services = append(ch.Services, name)
		}
	}
}

func (v *validator) services(checks map[string]bool) {
	checkNames := slices.Sorted(maps.Keys(checks))
	for _, name := range slices.Sorted(maps.Keys(v.c.Services)) {
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
		windowOK := vf.Count >= 1 && vf.Interval >= 100*time.Millisecond && vf.InitialDelay >= 0 && vf.InitialDelay <= 24*time.Hour
		last := vf.InitialDelay + time.Duration(max(vf.Count-1, 0))*vf.Interval // when the window's last round runs
		// Past the last round is said only of a window that is itself valid: its own error
		// comes first, and a bound drawn from a negative interval would mislead.
		if vf.ReadyWithin < 0 || (windowOK && vf.ReadyWithin > last) {
			fix := fmt.Sprintf("use 0s (no limit) to %s, when the window's last round runs (initial_delay + interval × (count - 1)), or make the window longer", last)
			if vf.ReadyWithin < 0 {
				v.errf(p+".verify.ready_within", fix, "%s is negative", vf.ReadyWithin)
			} else {
				v.errf(p+".verify.ready_within", fix, "%s is past the window's last round: no round could find the new version not ready by then", vf.ReadyWithin)
			}
		}
		if rs := vf.ReadySlowdown; rs != 0 && !(rs > 1 && rs <= 100) {
			v.errf(p+".verify.ready_slowdown", "use a factor above 1 and at most 100, e.g. 3 (not ready by three times the usual startup fails the deploy), or 0 (off)",
				"%g is out of range", rs)
		}
		for i, cn := range s.Checks {
			ch := v.c.CheckByName(cn)
			if ch == nil {
				continue
			}
			if pq, ok := ch.Spec.(*PromQLSpec); ok && pq.EvaluationDelay > 0 && pq.EvaluationDelay >= last {
				v.errf(indexPath(p+".checks", i), fmt.Sprintf("make the check's evaluation_delay shorter than %s, when the window's last round runs (initial_delay + interval × (count - 1)), or the window longer", last),
					"%s's evaluation_delay %s reaches back before the deploy in every round: each of its runs in a verification would be inconclusive", cn, pq.EvaluationDelay)
			}
		}
		if s.InhibitChecks < 0 || s.InhibitChecks > 24*time.Hour {
			v.errf(p+".inhibit_checks", "use 0s (never) to 24h, about as long as a rollback takes to pass, e.g. 15m", "%s is out of range", s.InhibitChecks)
		}
		if vf.BaselineRuns < 1 || vf.BaselineRuns > 1000 {
			v.errf(p+".verify.baseline_runs", "use 1 to 1000 passing runs, e.g. 5 (the default)", "%d is out of range", vf.BaselineRuns)
		}
		if vf.Visitors < 1 || vf.Visitors > maxVisitors {
			v.errf(p+".verify.visitors", fmt.Sprintf("use 1 (one run a round) to %d, e.g. 4 (the default)", maxVisitors), "%d is out of range", vf.Visitors)
		}
		if vf.FailureLimit < 0 || vf.InconclusiveLimit < 0 || *vf.ConsecutiveErrorLimit < 0 {
			v.errf(p+".verify", "limits count runs: use 0 or more", "limits must not be negative")
		}
		for _, ev := range slices.Sorted(maps.Keys(s.OnFailure)) {
			for i, n := range s.OnFailure[ev] {
				np := indexPath(p+".on_failure", i)
				if ev != anyEvent {
					np = indexPath(p+".on_failure."+ev, i)
				}
				v.notifier(np, n)
			}
		}
	}
}
