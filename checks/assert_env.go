package checks

// What a run's assertions see: its variables, the baseline from before the deploy and the
// deploy itself.

import "maps"

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
