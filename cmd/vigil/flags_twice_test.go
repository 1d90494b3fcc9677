package main

import (
	"strings"
	"testing"
)

// A flag that names one thing, given twice, is refused (exit 2) before anything runs: the
// last one silently won, so `vigil run --service web --service api` ran api's checks alone
// and passed on them, and `gate --version "$OLD" --version "$NEW"` (a template's flag and
// the user's) registered whichever came last.
func TestFlagsGivenTwiceAreRefused(t *testing.T) {
	srv := target(t)
	cfg := writeConfig(t, config(srv.URL))
	nowhere := nowhereAgent
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "-c", cfg, "--service", "all", "--service", "good"}, `for "--service" flag: given twice ("all", then "good")`},
		{[]string{"run", "-c", cfg, "-c", cfg + ".old"}, `for "-c, --config" flag: given twice`},
		{[]string{"run", "-c", cfg, "--service", "good", "--version", "v1", "--version", "v2"}, `for "--version" flag: given twice ("v1", then "v2")`},
		{[]string{"gate", "--agent", nowhere, "--service", "web", "--version", "v1", "--version", "v2", "--register-retry", "0"}, `for "--version" flag: given twice`},
		{[]string{"gate", "--agent", nowhere, "--agent", nowhere + "/", "--service", "web", "--version", "v1", "--register-retry", "0"}, `for "--agent" flag: given twice`},
		{[]string{"preflight", "--agent", nowhere, "--service", "web", "--service", "api", "--version", "v1", "--retry", "0"}, `for "--service" flag: given twice`},
	} {
		code, out, errOut := vigilRun(t, []string{"VIGIL_AGENT=", "VIGIL_API_TOKEN="}, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d (want 2), stderr should say %q:\n%s%s", c.args, code, c.want, out, errOut)
		}
	}
	// Repeatable flags stay repeatable, the same value twice is the same request, and
	// $VIGIL_AGENT is a default, not a first --agent.
	if code, out, errOut := vigilRun(t, nil, "run", "-c", cfg, "--check", "up", "--check", "up", "--service", "good", "--service", "good"); code != 0 {
		t.Errorf("--check twice, --service good twice: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := vigilRun(t, []string{"VIGIL_AGENT=" + nowhere}, "preflight", "--agent", nowhere, "--service", "web", "--version", "v1", "--retry", "0"); code != 2 || !strings.Contains(errOut, "cannot reach the agent") {
		t.Errorf("--agent over $VIGIL_AGENT: exit %d: %s", code, errOut)
	}
}
