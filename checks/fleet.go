package checks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr/types"
	"github.com/tidwall/gjson"
	"github.com/vigil-monitor/vigil/configs"
)

// fleetVars are the fleet kind's variables.
var fleetVars = types.Map{
	"total":                           types.Int,
	"healthy":                         types.Int,
	"unhealthy":                       types.Int,
	"regressed":                       types.Int,
	"new":                             types.Int,
	"missing":                         types.Int,
	"old_version_unhealthy":           types.Int,
	"versions":                        types.TypeOf(map[string]map[string]int{}),
	"unhealthy_instances":             types.Array(types.String),
	"regressed_instances":             types.Array(types.String),
	"new_instances":                   types.Array(types.String),
	"missing_instances":               types.Array(types.String),
	"old_version_unhealthy_instances": types.Array(types.String),
	"instances":                       types.TypeOf(map[string]map[string]any{}),
}

const (
	fleetHealthBytes = 64 << 10
	unknownVersion   = "unknown"
)

// Fleet is the fleet kind. Each run lists the instances (a static list, or discovered again
// from a URL and a gjson path), asks each for its health and version with bounded
// concurrency and a deadline per request, and compares with the baseline: each instance's
// health in the runs before the deploy. An instance healthy before and unhealthy now has
// regressed, even if new instances pass (an upgrade that breaks only existing instances);
// an instance not on the deploy's version that was healthy before and fails now is the
// halt case (a new version that crashes its old-version peers: stop pushing it).
type Fleet struct {
	client      *HTTPClient
	targets     *fleetTargets
	healthPath  string
	okStatus    []int
	timeout     time.Duration
	versionPath string
	field       string
	header      string
	concurrency int
}

// fleetInstance is what one run found about one instance.
type fleetInstance struct {
	URL     string
	Healthy bool
	Status  int
	Problem string // why it is unhealthy
	Version string // as reported now; "" when it did not say
	// Earlier: Version is what it said earlier in this run, as it cannot say now (settle).
	Earlier bool
	// Waited is how long a failing instance was asked again before it was judged (settle).
	Waited time.Duration
}

// Probe implements Prober.
func (f *Fleet) Probe(ctx context.Context, run *Run) error {
	list, err := f.targets.list(ctx, run.Transcript)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return Inconclusivef("no instances: the discovery answer lists none")
	}
	found := f.probeAll(ctx, list)
	if err := ctx.Err(); err != nil {
		done := 0
		for _, in := range found {
			if in != nil {
				done++
			}
		}
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("cancelled after probing %d of %d instances", done, len(list))
		}
		return fmt.Errorf("the check's timeout ran out with %d of %d instances probed; raise timeout or concurrency, or lower health.timeout", done, len(list))
	}
	found = f.settle(ctx, run, found)
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("cancelled while waiting for starting instances")
	}
	f.judge(run, f.withoutLeavers(ctx, run, found))
	return nil
}

// withoutLeavers drops the instances that failed and were no longer listed when discovery
// was asked again. In a rollout or a scale-down an instance deregisters and exits: one
// listed when the run began and gone by the time it was asked is the rollout at work, not
// a failure (it counts as missing when it was healthy before the deploy). One that fails
// and stays listed is judged unhealthy, as a crashed instance is (seed 004).
func (f *Fleet) withoutLeavers(ctx context.Context, run *Run, found []*fleetInstance) []*fleetInstance {
	if f.targets.discovery == nil || !slices.ContainsFunc(found, func(in *fleetInstance) bool { return !in.Healthy }) {
		return found
	}
	run.Transcript.Printf("-- discovery asked again: a failed instance no longer listed has left the fleet")
	listed, err := f.targets.relisted(ctx, run.Transcript)
	if err != nil {
		run.Transcript.Printf("%v; every failed instance is judged", err)
		return found
	}
	kept := make([]*fleetInstance, 0, len(found))
	for _, in := range found {
		if !in.Healthy && !listed[in.URL] {
			run.Transcript.Printf("%s: left the fleet during the run (%s, and no longer listed), not judged", in.URL, in.Problem)
			continue
		}
		kept = append(kept, in)
	}
	return kept
}

// probeInstance asks one instance for its health and, at the same time, its version.
func (f *Fleet) probeInstance(ctx context.Context, base string) *fleetInstance {
	in := &fleetInstance{URL: base}
	root := strings.TrimRight(base, "/")
	var version string
	var wg sync.WaitGroup
	if f.versionPath != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := f.client.Do(ctx, &Request{Method: http.MethodGet, URL: root + f.versionPath, Header: http.Header{},
				Timeout: f.timeout, MaxBodyBytes: fleetHealthBytes, FollowRedirects: true}, nil)
			if err != nil || resp.Status >= 300 {
				return
			}
			switch {
			case f.header != "":
				version = resp.Header.Get(f.header)
			case f.field != "":
				if r := gjson.GetBytes(resp.Body, f.field); r.Exists() && !r.IsObject() && !r.IsArray() {
					version = r.String()
				}
			default:
				version = string(resp.Body)
			}
		}()
	}
	resp, err := f.client.Do(ctx, &Request{Method: http.MethodGet, URL: root + f.healthPath, Header: http.Header{},
		Timeout: f.timeout, MaxBodyBytes: fleetHealthBytes, FollowRedirects: true}, nil)
	switch {
	case err != nil:
		in.Problem = shortHTTPError(err)
	case !statusIn(resp.Status, f.okStatus):
		in.Status = resp.Status
		in.Problem = fmt.Sprintf("%d", resp.Status)
		if b := strings.TrimSpace(string(resp.Body)); b != "" {
			in.Problem += " " + Trim(b, 80)
		}
	default:
		in.Status, in.Healthy = resp.Status, true
	}
	if f.versionPath == "" && f.header != "" && resp != nil {
		version = resp.Header.Get(f.header)
	}
	wg.Wait()
	in.Version = Trim(strings.TrimSpace(version), 64)
	return in
}

// problem is why the instance is unhealthy, for a reason.
func (in *fleetInstance) problem() string {
	if in.Waited > 0 {
		return fmt.Sprintf("%s; still failing after %s of asking again", in.Problem, in.Waited.Round(100*time.Millisecond))
	}
	return in.Problem
}

// shortHTTPError drops the "GET url: " prefix the client puts on its errors.
func shortHTTPError(err error) string {
	s := err.Error()
	if i := strings.Index(s, ": "); i > 0 && strings.HasPrefix(s, http.MethodGet+" ") {
		s = s[i+2:]
	}
	return Trim(s, 120)
}

func statusIn(status int, ok []int) bool {
	if len(ok) == 0 {
		return status >= 200 && status < 300
	}
	return slices.Contains(ok, status)
}

// judge compares this run with the baseline and sets the variables.
func (f *Fleet) judge(run *Run, found []*fleetInstance) {
	base, hasBase := fleetBaseline(run.Baseline)
	deployVersion := ""
	if run.Deploy != nil {
		deployVersion = run.Deploy.Version
	}
	versions := map[string]map[string]int{}
	instances := map[string]map[string]any{}
	var unhealthy, regressed, fresh, oldVersion, missing []string
	var unhealthyWhy, oldWhy []string
	now := map[string]bool{}
	healthy := 0
	red := run.Transcript.Redactor()
	for _, in := range found {
		// Instances are known by their URL as results store it, redacted, so an instance
		// whose URL carries a password is still matched with its baseline.
		in.URL = red.String(in.URL)
		now[in.URL] = true
		b, known := base[in.URL]
		version := in.Version
		if version == "" && known {
			version = b.version // a crashed instance cannot say; it was running this before
		}
		key := version
		if key == "" {
			key = unknownVersion
		}
		if versions[key] == nil {
			versions[key] = map[string]int{"healthy": 0, "unhealthy": 0}
		}
		instances[in.URL] = map[string]any{"healthy": in.Healthy, "version": version, "status": in.Status, "problem": in.Problem}
		// Where the version came from, when it is not simply what the instance said now: an
		// instance upgraded in place that then failed is named with the version it ran.
		label, note := key, ""
		switch {
		case in.Earlier:
			label += " when it last answered"
		case in.Version == "" && version != "":
			label += " before the deploy, no answer since" // a guess, and the reason says so
		}
		if known && in.Version != "" && b.version != "" && in.Version != b.version {
			label += ", upgraded in place from " + b.version
		}
		if label != key {
			note = "; on " + label
		}
		if in.Healthy {
			healthy++
			versions[key]["healthy"]++
			run.Transcript.Printf("%s: healthy (%d), version %s", in.URL, in.Status, label)
		} else {
			versions[key]["unhealthy"]++
			unhealthy = append(unhealthy, in.URL)
			unhealthyWhy = append(unhealthyWhy, fmt.Sprintf("%s (%s%s)", in.URL, in.problem(), note))
			run.Transcript.Printf("%s: UNHEALTHY: %s, version %s", in.URL, in.Problem, label)
		}
		switch {
		case hasBase && !known:
			fresh = append(fresh, in.URL)
		case known && b.healthy && !in.Healthy:
			regressed = append(regressed, in.URL)
			if deployVersion != "" && version != "" && !sameVersion(version, deployVersion) {
				oldVersion = append(oldVersion, in.URL)
				oldWhy = append(oldWhy, fmt.Sprintf("%s (%s: %s)", in.URL, label, in.Problem))
			}
		}
	}
	for _, u := range slices.Sorted(maps.Keys(base)) {
		if !now[u] && base[u].healthy {
			missing = append(missing, u)
		}
	}
	v := run.Vars
	v["total"] = len(found)
	v["healthy"] = healthy
	v["unhealthy"] = len(unhealthy)
	v["regressed"] = len(regressed)
	v["new"] = len(fresh)
	v["missing"] = len(missing)
	v["old_version_unhealthy"] = len(oldVersion)
	v["versions"] = versions
	v["instances"] = instances
	v["unhealthy_instances"] = nonNil(unhealthy)
	v["regressed_instances"] = nonNil(regressed)
	v["new_instances"] = nonNil(fresh)
	v["missing_instances"] = nonNil(missing)
	v["old_version_unhealthy_instances"] = nonNil(oldVersion)

	if len(unhealthy) > 0 {
		run.Explain("unhealthy", listOf(unhealthyWhy))
		run.Explain("healthy", fmt.Sprintf("of %d; unhealthy: %s", len(found), listOf(unhealthyWhy)))
	}
	if !hasBase {
		none := "no baseline: no runs of this check before the deploy to compare with"
		run.Explain("regressed", none)
		run.Explain("old_version_unhealthy", none)
		run.Explain("new", none)
	} else {
		if len(regressed) > 0 {
			run.Explain("regressed", "healthy before the deploy, unhealthy now: "+listOf(regressed))
		}
		if len(fresh) > 0 {
			run.Explain("new", "not seen before the deploy: "+listOf(fresh))
		}
		if len(missing) > 0 {
			run.Explain("missing", "healthy before the deploy, no longer listed: "+listOf(missing))
		}
	}
	switch {
	case deployVersion == "":
		run.Explain("old_version_unhealthy", "not verifying a deploy, so there is no new version to compare with")
	case len(oldVersion) > 0:
		why := fmt.Sprintf("not on %s, healthy before it, failing since it appeared: %s", deployVersion, listOf(oldWhy))
		run.Explain("old_version_unhealthy", why)
		onNew := 0
		for v, n := range versions {
			if sameVersion(v, deployVersion) {
				onNew += n["healthy"] + n["unhealthy"]
			}
		}
		run.Halt(fmt.Sprintf("%d instances on older versions failed once %s appeared (%d instances run it): %s; stop the rollout, do not push through it",
			len(oldVersion), deployVersion, onNew, listOf(oldWhy)))
	}
	if hasBase {
		run.Transcript.Printf("%d instances: %d healthy, %d unhealthy, %d regressed, %d new, %d missing, %d old-version failures",
			len(found), healthy, len(unhealthy), len(regressed), len(fresh), len(missing), len(oldVersion))
	} else {
		run.Transcript.Printf("%d instances: %d healthy, %d unhealthy (no baseline)", len(found), healthy, len(unhealthy))
	}
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

// listOf joins names for a reason, keeping it to a readable length.
func listOf(xs []string) string {
	const show = 8
	if len(xs) <= show {
		return strings.Join(xs, ", ")
	}
	return strings.Join(xs[:show], ", ") + fmt.Sprintf(", and %d more", len(xs)-show)
}

// fleetKind registers the fleet kind (kinds.go).
type fleetKind struct{}

func (fleetKind) vars() types.Map { return fleetVars }

func (fleetKind) build(b *builder, c *configs.Check) Prober {
	s := c.Spec.(*configs.FleetSpec)
	return &Fleet{client: b.deps.HTTP, targets: newFleetTargets(b.deps.HTTP, s.Targets, s.Health.Timeout), healthPath: s.Health.Path,
		okStatus: s.Health.Status, timeout: s.Health.Timeout, versionPath: s.Version.Path, field: s.Version.Field,
		header: s.Version.Header, concurrency: s.Concurrency}
}

// DefaultAssert implements DefaultAsserter: every instance healthy.
func (f *Fleet) DefaultAssert() []string { return []string{"unhealthy == 0"} }
