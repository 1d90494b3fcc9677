package checks

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
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

// fleetIntVars are the variables whose baseline is a (rounded) median.
var fleetIntVars = []string{"total", "healthy", "unhealthy", "regressed", "new", "missing", "old_version_unhealthy"}

const (
	fleetMaxInstances   = 10_000
	fleetDiscoveryBytes = 4 << 20
	fleetHealthBytes    = 64 << 10
	unknownVersion      = "unknown"
)

// Fleet is the fleet kind (seeds 000 and 004). Each run lists the instances (a static list,
// or discovered again from a URL and a gjson path), asks each for its health and version
// with bounded concurrency and a deadline per request, and compares with the baseline: each
// instance's health in the runs before the deploy. An instance healthy before and unhealthy
// now has regressed, even if new instances pass (000); an instance not on the deploy's
// version that was healthy before and fails now is the halt case (004).
type Fleet struct {
	client      *HTTPClient
	static      []string
	discovery   *Request
	path        string
	healthPath  string
	okStatus    []int
	timeout     time.Duration
	versionPath string
	field       string
	header      string
	concurrency int
}

// FleetInstance is what one run found about one instance.
type FleetInstance struct {
	URL     string
	Healthy bool
	Status  int
	Problem string // why it is unhealthy
	Version string // as reported now; "" when it did not say
}

// ParseTargets reads instance base URLs from a discovery answer: the gjson path must give a
// URL string or a list of them (nested lists from # queries are flattened).
func ParseTargets(body []byte, path string) ([]string, error) {
	if !gjson.ValidBytes(body) {
		return nil, fmt.Errorf("the answer is not JSON: %s", Trim(string(body), 120))
	}
	r := gjson.GetBytes(body, path)
	if !r.Exists() {
		return nil, fmt.Errorf("path %q finds nothing in the answer: %s", path, Trim(string(body), 200))
	}
	var out []string
	seen := map[string]bool{}
	var walk func(r gjson.Result, depth int) error
	walk = func(r gjson.Result, depth int) error {
		if r.IsArray() {
			if depth > 3 {
				return fmt.Errorf("path %q gives lists nested too deep", path)
			}
			var err error
			r.ForEach(func(_, v gjson.Result) bool {
				err = walk(v, depth+1)
				return err == nil
			})
			return err
		}
		if r.Type != gjson.String {
			return fmt.Errorf("path %q gives %s, not a URL string; point it at the URL field, e.g. instances.#.url", path, Trim(r.Raw, 80))
		}
		s := strings.TrimSpace(r.Str)
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("discovered %q, which is not an absolute http(s) URL", Trim(s, 100))
		}
		if !seen[s] {
			if len(out) == fleetMaxInstances {
				return fmt.Errorf("more than %d instances discovered; split the fleet into several checks", fleetMaxInstances)
			}
			seen[s] = true
			out = append(out, s)
		}
		return nil
	}
	if err := walk(r, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// targets lists this run's instances.
func (f *Fleet) targets(ctx context.Context, t *Transcript) ([]string, error) {
	if f.discovery == nil {
		return f.static, nil
	}
	resp, err := f.client.Do(ctx, f.discovery, t)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	switch {
	case resp.Status != http.StatusOK:
		return nil, fmt.Errorf("discovery %s answered %d: %s", f.discovery.URL, resp.Status, t.Excerpt(string(resp.Body), 200))
	case resp.Truncated:
		return nil, fmt.Errorf("discovery %s answered more than %d bytes; is it the right URL?", f.discovery.URL, fleetDiscoveryBytes)
	}
	list, err := ParseTargets(resp.Body, f.path)
	if err != nil {
		return nil, fmt.Errorf("discovery %s: %w", f.discovery.URL, err)
	}
	return list, nil
}

// Probe implements Prober.
func (f *Fleet) Probe(ctx context.Context, run *Run) error {
	list, err := f.targets(ctx, run.Transcript)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return Inconclusivef("no instances: the discovery answer lists none")
	}
	found := make([]*FleetInstance, len(list))
	sem := make(chan struct{}, f.concurrency)
	var wg sync.WaitGroup
	for i, base := range list {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			found[i] = f.probeInstance(ctx, base)
		}()
	}
	wg.Wait()
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
	f.judge(run, found)
	return nil
}

// probeInstance asks one instance for its health and, at the same time, its version.
func (f *Fleet) probeInstance(ctx context.Context, base string) *FleetInstance {
	in := &FleetInstance{URL: base}
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
	for _, s := range ok {
		if s == status {
			return true
		}
	}
	return false
}

// baselineInstance is one instance as the runs before the deploy last saw it.
type baselineInstance struct {
	healthy bool
	version string
}

// judge compares this run with the baseline and sets the variables.
func (f *Fleet) judge(run *Run, found []*FleetInstance) {
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
		if in.Healthy {
			healthy++
			versions[key]["healthy"]++
			run.Transcript.Printf("%s: healthy (%d), version %s", in.URL, in.Status, key)
		} else {
			versions[key]["unhealthy"]++
			unhealthy = append(unhealthy, in.URL)
			unhealthyWhy = append(unhealthyWhy, fmt.Sprintf("%s (%s)", in.URL, in.Problem))
			run.Transcript.Printf("%s: UNHEALTHY: %s, version %s", in.URL, in.Problem, key)
		}
		switch {
		case hasBase && !known:
			fresh = append(fresh, in.URL)
		case known && b.healthy && !in.Healthy:
			regressed = append(regressed, in.URL)
			if deployVersion != "" && version != "" && version != deployVersion {
				oldVersion = append(oldVersion, in.URL)
				oldWhy = append(oldWhy, fmt.Sprintf("%s (%s: %s)", in.URL, version, in.Problem))
			}
		}
	}
	for _, u := range sortedKeys(base) {
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
		onNew := versions[deployVersion]["healthy"] + versions[deployVersion]["unhealthy"]
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

// Baseline implements Baseliner: each instance's health and version as the latest run
// before the deploy that measured it saw them, whatever that run's outcome (a fleet
// with one instance down still says who was up), plus the median of the counts.
func (f *Fleet) Baseline(previous []*Result) map[string]any {
	runs := make([]*Result, 0, len(previous))
	for _, r := range previous {
		if r != nil && r.Vars != nil && r.Vars["instances"] != nil {
			runs = append(runs, r)
		}
	}
	if len(runs) == 0 {
		return nil
	}
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Started.Before(runs[j].Started) })
	merged := map[string]map[string]any{}
	for _, r := range runs { // oldest first: later runs overwrite
		for u, in := range instancesOf(r.Vars["instances"]) {
			prev := merged[u]
			if in.version == "" && prev != nil {
				in.version, _ = prev["version"].(string)
			}
			merged[u] = map[string]any{"healthy": in.healthy, "version": in.version}
		}
	}
	out := map[string]any{}
	for k, v := range runs[len(runs)-1].Vars {
		out[k] = v
	}
	for _, k := range fleetIntVars {
		var xs []float64
		for _, r := range runs {
			if x, ok := asFloat(r.Vars[k]); ok {
				xs = append(xs, x)
			}
		}
		if len(xs) > 0 {
			out[k] = int(math.Round(Median(xs)))
		}
	}
	out["instances"] = merged
	return out
}

// fleetBaseline reads the per-instance baseline; false when there is none.
func fleetBaseline(b map[string]any) (map[string]baselineInstance, bool) {
	if b == nil || b["instances"] == nil {
		return nil, false
	}
	return instancesOf(b["instances"]), true
}

// instancesOf reads an instances variable as this package writes it, or as it comes back
// from JSON (a store keeps results as JSON).
func instancesOf(v any) map[string]baselineInstance {
	out := map[string]baselineInstance{}
	read := func(u string, m map[string]any) {
		h, _ := m["healthy"].(bool)
		ver, _ := m["version"].(string)
		out[u] = baselineInstance{healthy: h, version: ver}
	}
	switch x := v.(type) {
	case map[string]map[string]any:
		for u, m := range x {
			read(u, m)
		}
	case map[string]any:
		for u, raw := range x {
			if m, ok := raw.(map[string]any); ok {
				read(u, m)
			}
		}
	}
	return out
}

func buildFleet(b *builder, c *configs.Check) (Prober, types.Map) {
	s := c.Spec.(*configs.FleetSpec)
	f := &Fleet{client: b.deps.HTTP, static: s.Targets.Static, path: s.Targets.Path, healthPath: s.Health.Path,
		okStatus: s.Health.Status, timeout: s.Health.Timeout, versionPath: s.Version.Path, field: s.Version.Field,
		header: s.Version.Header, concurrency: s.Concurrency}
	if s.Targets.URL != "" {
		h := http.Header{}
		for k, v := range s.Targets.Headers {
			h.Set(k, v)
		}
		f.discovery = &Request{Method: http.MethodGet, URL: s.Targets.URL, Header: h, Timeout: s.Health.Timeout,
			MaxBodyBytes: fleetDiscoveryBytes, FollowRedirects: true}
	}
	return f, fleetVars
}

// DefaultAssert implements DefaultAsserter: every instance healthy.
func (f *Fleet) DefaultAssert() []string { return []string{"unhealthy == 0"} }
