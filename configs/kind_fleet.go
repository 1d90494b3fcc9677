package configs

import (
	"fmt"
	"strings"
	"time"
)

// KindFleet asks every instance of a fleet for its health and version.
const KindFleet = "fleet"

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

func (f *FleetSpec) applyDefaults(_ *Config, ch *Check) {
	setStr(&f.Health.Path, "/healthz")
	setInt(&f.Concurrency, 16)
	// Half the run at most: an instance that hangs is reported, not the run timed out.
	setDur(&f.Health.Timeout, min(5*time.Second, ch.Timeout/2))
}

func (f *FleetSpec) validate(v *validator, ch *Check, p string) {
	f.Targets.validate(v, p)
	if !strings.HasPrefix(f.Health.Path, "/") {
		v.errf(p+".health.path", "start it with /, e.g. /healthz", "%q is not a path", f.Health.Path)
	}
	v.statuses(p+".health.status", f.Health.Status)
	if timeout := ch.Timeout; (f.Health.Timeout <= 0 || f.Health.Timeout > timeout) && v.c.written(p+".health.timeout") {
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

// validate checks the targets of the fleet check at p.
func (t FleetTargets) validate(v *validator, p string) {
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
}
