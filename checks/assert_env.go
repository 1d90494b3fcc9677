package checks

// What a run's assertions see: its variables, the baseline from before the deploy and the
// deploy itself.

import (
	"fmt"
	"maps"
	"time"
)

// noBaseline and noDeploy are what assertions see of a run outside a deploy's
// verification (every scheduled run): shared by every run, so never written to (expr reads
// its environment, it cannot assign).
var (
	noBaseline = map[string]any{}
	noDeploy   = map[string]any{"id": "", "service": "", "version": "", "environment": "", "commit": ""}
)

// assertionEnv is what assertions see: the run's variables, baseline and deploy.
func assertionEnv(run *Run) map[string]any {
	env := make(map[string]any, len(run.Vars)+2)
	maps.Copy(env, run.Vars)
	env["baseline"], env["deploy"] = baselineAndDeploy(run)
	return env
}

// baselineAndDeploy are the baseline and deploy assertions see of a run.
func baselineAndDeploy(run *Run) (baseline, deploy map[string]any) {
	baseline, deploy = noBaseline, noDeploy
	if run.Baseline != nil {
		baseline = alignBaseline(run.Baseline, run.Vars)
	}
	if run.Deploy != nil {
		deploy = map[string]any{"id": run.Deploy.ID, "service": run.Deploy.Service, "version": run.Deploy.Version,
			"environment": run.Deploy.Environment, "commit": run.Deploy.Commit}
	}
	return baseline, deploy
}

// alignBaseline gives a baseline's string maps (a JSON map[string]any once stored) the
// run's own shape, map[string]string, so that a key missing from both reads "" on both
// sides: `baseline.headers['X-Version'] == headers['X-Version']` holds when neither run
// had the header, as it would between two runs.
func alignBaseline(base, vars map[string]any) map[string]any {
	var out map[string]any
	for k, v := range base {
		m, ok := v.(map[string]any)
		if _, strings := vars[k].(map[string]string); !ok || !strings {
			continue
		}
		typed := make(map[string]string, len(m))
		for mk, mv := range m {
			if str, ok := mv.(string); ok {
				typed[mk] = str
			}
		}
		if out == nil {
			out = maps.Clone(base)
		}
		out[k] = typed
	}
	if out == nil {
		return base
	}
	return out
}

// baselineView gives each assertion of a run what it sees: env and details as they are,
// and for an assertion that reads the baseline, the run's setupTimed variables less its own
// connection setup (setupFree), built once.
type baselineView struct {
	env         map[string]any
	details     map[string]string
	free        map[string]any
	freeDetails map[string]string
}

func (v *baselineView) of(a *Assertion) map[string]any {
	if !a.usesBaseline {
		return v.env
	}
	v.build()
	return v.free
}

func (v *baselineView) detailsOf(a *Assertion) map[string]string {
	if !a.usesBaseline {
		return v.details
	}
	v.build()
	return v.freeDetails
}

func (v *baselineView) build() {
	if v.free == nil {
		v.free, v.freeDetails = setupFree(v.env, v.details)
	}
}

// setupFree is what an assertion that reads the baseline sees of a run: its setupTimed
// variables (duration_ms, ttfb_ms) less the time the run spent opening connections, as
// the baseline's are (MedianBaseline). A deploy's verification opens a new connection for
// every run (HTTPClient.perRun: a new visitor), while the scheduled runs that make most
// baselines reuse kept-alive ones: compared as measured, the DNS lookup, connect and TLS
// handshake of every verification run (2.4 ms against an answer of 0.3 ms on loopback, a
// few round trips on a real network) failed good deploys on the README's own
// `duration_ms < baseline.duration_ms * 2`, and called their rollback. The setup is the
// network's, not the version's. An assertion that does not read the baseline sees the run
// as measured. env and details are returned as they are when the run opened no connection.
func setupFree(env map[string]any, details map[string]string) (map[string]any, map[string]string) {
	setup, timed := connectionSetup(env)
	if !timed || setup <= 0 {
		return env, details
	}
	out, why := maps.Clone(env), maps.Clone(details)
	if why == nil {
		why = map[string]string{}
	}
	for _, k := range setupTimed {
		f, ok := asFloat(env[k])
		if !ok {
			continue
		}
		out[k] = lessSetup(f, setup)
		why[k] = fmt.Sprintf("%s ms measured, less this run's connection setup of %s ms%s", formatFloat(f), formatFloat(setup), setupParts(env))
		if _, has := asFloat(lookupBaseline(env, k)); has {
			why["baseline."+k] = "the median of the passing runs before the deploy, each run less its own connection setup"
		}
	}
	return out, why
}

// setupParts names what a run's connection setup was made of: " (dns 0, connect 0.1, tls
// 2.2)" for an HTTP answer, " (setup_ms: the journey's HTTP steps)" for a script's.
func setupParts(env map[string]any) string {
	if _, ok := env["setup_ms"]; ok {
		return " (setup_ms: the journey's HTTP steps opening connections)"
	}
	part := func(k string) string { f, _ := asFloat(env[k]); return formatFloat(f) }
	return " (dns " + part("dns_ms") + ", connect " + part("connect_ms") + ", tls " + part("tls_ms") + ")"
}

func lookupBaseline(env map[string]any, k string) any {
	b, _ := env["baseline"].(map[string]any)
	return b[k]
}

// WithoutSetup is a run's variables with its setupTimed ones less its connection setup, as
// its assertions that read the baseline saw them; vars itself when it opened no connection.
// A comparison of the run with its deploy's baseline (a failure's "duration 2.1 ms (0.3 ms
// before the deploy)") reads these.
func WithoutSetup(vars map[string]any) (map[string]any, bool) {
	if setup, timed := connectionSetup(vars); !timed || setup <= 0 {
		return vars, false
	}
	out, _ := setupFree(vars, nil)
	return out, true
}

// changed ends a "no baseline yet" reason of a check whose request changed: the runs
// before the change measured something else.
func (in Input) changed() string {
	if in.MeasuredSince.IsZero() {
		return ""
	}
	return " since the check's request changed at " + in.MeasuredSince.UTC().Format(time.RFC3339)
}
