package main

import (
	"strings"
	"testing"
)

// vigil validate reports every problem of a file in one pass: a key that does not decode,
// a rule the loader checks, an assertion that does not compile and a notifier the agent
// would refuse, together, in file order. It builds exactly what the agent builds: the two
// configs `validate` once accepted and the agent refused are refused here.
func TestValidateReportsEveryProblemInOnePass(t *testing.T) {
	cfg := writeConfig(t, `
checks:
  - {name: home, kind: http, timout: 5s, request: {url: "http://127.0.0.1:1/"}}
  - {name: login, kind: http, every: 10ms, request: {url: "http://127.0.0.1:1/login"}}
  - {name: api, kind: http, request: {url: "http://127.0.0.1:1/api"}, assert: ["stauts == 200"]}
notifiers:
  hook: {type: webhook, url: "http://127.0.0.1:1/hook", secret: s, headers: {Content-Type: text/plain}}
  pager: {type: pagerduty, routing_key: k, url: "http://127.0.0.1:1/v2/events"}
`)
	code, out, errs := run("validate", "-c", cfg)
	if code != 2 {
		t.Fatalf("exit %d; want 2\n%s%s", code, out, errs)
	}
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	var got []string
	for _, want := range []string{
		`checks[0].timout: unknown key`,
		`checks[1].every: 10ms is too frequent`,
		`checks[2].assert[0]: unknown variable "stauts"`,
		`notifiers.hook.headers.Content-Type: vigil sets this header itself`,
		`notifiers.pager.url: "http://127.0.0.1:1/v2/events" does not end in /v2/enqueue`,
	} {
		found := false
		for i, l := range lines {
			if strings.Contains(l, want) {
				found = true
				got = append(got, lines[i])
			}
		}
		if !found {
			t.Errorf("missing %q in:\n%s", want, errs)
		}
	}
	for _, l := range got {
		if !strings.Contains(l, "vigil.yaml:") {
			t.Errorf("%q does not name the file and line", l)
		}
	}
}

// A 0 written for a key whose default is not 0, and a VIGIL_ variable with one underscore
// where an override has two, set nothing the operator meant: vigil validate says both,
// with the file's line, the variable, and what to write instead.
func TestValidateRefusesWrittenZerosAndMisnamedVariables(t *testing.T) {
	t.Setenv("VIGIL_AGENT_LISTEN", "0.0.0.0:9595")
	cfg := writeConfig(t, `
checks:
  - {name: home, kind: http, timeout: 0s, request: {url: "http://127.0.0.1:1/"}}
`)
	code, out, errs := run("validate", "-c", cfg)
	if code != 2 {
		t.Fatalf("exit %d; want 2\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		cfg + ":3: checks[0].timeout: 0 is not a setting of this key: it means neither none nor unlimited; leave the key out for defaults.timeout, or give a positive duration such as 30s",
		"environment VIGIL_AGENT_LISTEN: agent.listen: this variable sets nothing: an override has two underscores between section and key; set VIGIL_AGENT__LISTEN (two underscores between section and key), or unset VIGIL_AGENT_LISTEN",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("missing %q in:\n%s", want, errs)
		}
	}
}

// A check with a load problem (a URL without its scheme, a misspelt key) is not built, and
// its assertions were then not compiled: their mistakes came out one validate later, after
// the first was fixed. They are listed in the same pass.
func TestValidateCompilesTheAssertionsOfACheckWithOtherProblems(t *testing.T) {
	cfg := writeConfig(t, `
checks:
  - name: health
    kind: http
    request: {url: "127.0.0.1:8080/healthz"}
    assert: ["status = 200", "duration_ms < 500"]
  - name: search
    kind: http
    request: {url: "http://127.0.0.1:8080/search", methd: GET}
    assert: ["stauts == 200"]
`)
	code, out, errs := run("validate", "-c", cfg)
	if code != 2 {
		t.Fatalf("exit %d; want 2\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		`vigil.yaml:5: checks[0].request.url: "127.0.0.1:8080/healthz" has no scheme; write it with its scheme: http://127.0.0.1:8080/healthz`,
		`vigil.yaml:6: checks[0].assert[0]: unexpected token Operator("=") (at column 8); compare with ==`,
		`vigil.yaml:9: checks[1].request.methd: unknown key "methd"; did you mean "method"?`,
		`vigil.yaml:10: checks[1].assert[0]: unknown variable "stauts"; did you mean "status"?`,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("missing %q in:\n%s", want, errs)
		}
	}
	if n := strings.Count(strings.TrimSpace(errs), "\n") + 1; n != 4 {
		t.Errorf("%d lines; want the 4 problems once each:\n%s", n, errs)
	}
}
