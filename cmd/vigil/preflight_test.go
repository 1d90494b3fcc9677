package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// vigil preflight's exit codes against a real agent process: a version that failed
// verification is blocked (1), another is clear with a warning (0), --warn-only goes on,
// and a bad request or an unreachable agent is 2.
func TestPreflightCommand(t *testing.T) {
	a, cfg := gateSetup(t)
	p := startAgentProc(t, cfg, "")
	env := []string{"VIGIL_AGENT=" + p.url, "VIGIL_API_TOKEN=gate-token"}
	if code, out, errOut := vigilRun(t, env, "preflight", "--service", "web", "--version", "v1"); code != 0 || !strings.Contains(out, "vigil: web v1: clear to deploy") {
		t.Fatalf("preflight of a first deploy: exit %d\n%s%s", code, out, errOut)
	}
	a.mode.Store("broken")
	if code, out, _ := vigilRun(t, env, "gate", "--service", "web", "--version", "v2", "--wait", "1m"); code != 1 {
		t.Fatalf("gate of a broken v2: exit %d\n%s", code, out)
	}
	a.mode.Store("good")
	code, out, errOut := vigilRun(t, env, "preflight", "--service", "web", "--version", "v2")
	if code != 1 || !strings.Contains(out, "vigil: web v2: blocked") || !strings.Contains(out, "  blocked (version_failed): web v2 failed verification ") ||
		!strings.Contains(out, p.url+"/deploys/") || !strings.Contains(errOut, "vigil preflight: web v2 is blocked") {
		t.Errorf("preflight of the version that failed: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := vigilRun(t, env, "preflight", "--service", "web", "--version", "v2", "--warn-only"); code != 0 || !strings.Contains(out, "blocked (version_failed)") || !strings.Contains(errOut, "--warn-only: going on") {
		t.Errorf("preflight --warn-only: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := vigilRun(t, env, "preflight", "--service", "web", "--version", "v3"); code != 0 || !strings.Contains(out, "  warning (last_deploy_failed): the last deploy of web, v2, failed ") {
		t.Errorf("preflight of a new version while v2 is out: exit %d\n%s", code, out)
	}
	code, out, _ = vigilRun(t, env, "preflight", "--service", "web", "--version", "v2", "--json")
	var ans struct {
		Clear   bool `json:"clear"`
		Blocked []struct {
			Rule, Deploy string
		} `json:"blocked"`
	}
	if err := json.Unmarshal([]byte(out), &ans); code != 1 || err != nil || ans.Clear || len(ans.Blocked) != 1 || ans.Blocked[0].Rule != "version_failed" || ans.Blocked[0].Deploy == "" {
		t.Errorf("preflight --json: exit %d, %v: %s", code, err, out)
	}
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{env, []string{"preflight", "--service", "web"}, "--service and --version are required"},
		{env, []string{"preflight", "--service", "wbe", "--version", "v1"}, `the agent refused (HTTP 422): unknown service "wbe"; did you mean "web"?`},
		{[]string{"VIGIL_AGENT=" + p.url, "VIGIL_API_TOKEN=wrong"}, []string{"preflight", "--service", "web", "--version", "v1"}, "the agent refused (HTTP 401)"},
		{[]string{"VIGIL_AGENT=http://127.0.0.1:1", "VIGIL_API_TOKEN=x"}, []string{"preflight", "--service", "web", "--version", "v1"}, "cannot reach the agent at http://127.0.0.1:1"},
		{[]string{"VIGIL_AGENT="}, []string{"preflight", "--service", "web", "--version", "v1"}, "--agent is required"},
	} {
		if code, out, errOut := vigilRun(t, c.env, c.args...); code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, %s%s; want 2 with %q", c.args, code, out, errOut, c.want)
		}
	}
}
