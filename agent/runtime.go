package agent

import (
	"sort"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
)

// Runtime is one loaded configuration with its compiled checks. It is immutable: a reload
// builds a new one off to the side and swaps it in whole, so a run never sees half of
// two configs.
type Runtime struct {
	Config *configs.Config
	Checks map[string]*checks.Check
	// Order is the checks in config order.
	Order []*checks.Check
	// Notifiers are built from the config's notifiers, by name.
	Notifiers map[string]alerting.Notifier
	// CheckServices names the services each check belongs to, sorted.
	CheckServices map[string][]string
	// Maintenance holds the config's maintenance windows, parsed.
	Maintenance *alerting.Maintenance
	Loaded      time.Time
	// Redactor masks the config's secrets wherever the agent shows or sends something.
	Redactor *configs.Redactor
}

// BuildRuntime compiles cfg's checks and builds its notifiers and maintenance windows:
// everything the agent runs. It is also all `vigil validate` does, so the two can never
// disagree. cfg may come from configs.LoadPartial with problems: the parts they touch are
// skipped and the error lists them with whatever building the rest finds, in one pass.
func BuildRuntime(cfg *configs.Config, deps checks.Deps, nopts alerting.Options, now time.Time) (*Runtime, error) {
	list, checkErr := checks.Build(cfg, deps)
	rt := &Runtime{Config: cfg, Checks: make(map[string]*checks.Check, len(list)), Order: list, Loaded: now,
		Notifiers: map[string]alerting.Notifier{}, CheckServices: map[string][]string{}, Redactor: cfg.Redactor()}
	for _, c := range list {
		rt.Checks[c.Name] = c
	}
	var more configs.Errors
	for name, n := range cfg.Notifiers {
		if n == nil || cfg.Broken("notifiers."+name) {
			continue
		}
		nt, err := alerting.New(n, nopts)
		if err != nil {
			// configs validates every rule alerting applies; this is a bug if it happens.
			more = append(more, cfg.Err("notifiers."+name, "", "%v", err))
			continue
		}
		rt.Notifiers[name] = nt
	}
	for name, s := range cfg.Services {
		for _, c := range s.Checks {
			rt.CheckServices[c] = append(rt.CheckServices[c], name)
		}
	}
	for _, s := range rt.CheckServices {
		sort.Strings(s)
	}
	if !cfg.Broken("maintenance") {
		var err error
		if rt.Maintenance, err = alerting.NewMaintenance(cfg.Maintenance); err != nil {
			more = append(more, cfg.Err("maintenance", "", "%v", err))
		}
	}
	if err := configs.Merge(checkErr, more); err != nil {
		return nil, err
	}
	cfg.ForgetLines()
	return rt, nil
}

// serviceChecks returns a service's checks in its listed order.
func (rt *Runtime) serviceChecks(service string) []*checks.Check {
	s := rt.Config.Services[service]
	if s == nil {
		return nil
	}
	out := make([]*checks.Check, 0, len(s.Checks))
	for _, n := range s.Checks {
		if c := rt.Checks[n]; c != nil {
			out = append(out, c)
		}
	}
	return out
}

// HasBrowserChecks reports whether any check needs Chromium (readiness depends on it).
func (rt *Runtime) HasBrowserChecks() bool {
	for _, c := range rt.Order {
		if c.Resource() == checks.BrowserSlot {
			return true
		}
	}
	return false
}
