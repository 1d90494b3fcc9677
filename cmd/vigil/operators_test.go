package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// vigilRun runs the built binary with args and returns its exit code, stdout and stderr.
func vigilRun(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(vigilBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	_ = cmd.Run()
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// version and validate answer JSON a machine reads, valid config or not.
func TestVersionAndValidateJSON(t *testing.T) {
	code, out, _ := vigilRun(t, nil, "version", "--json")
	var v map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v["version"] == "" || !strings.HasPrefix(v["goversion"], "go") {
		t.Errorf("version --json: exit %d: %s", code, out)
	}

	a := newApp(t)
	good := writeConfig(t, gateConfig(a.URL, ""))
	code, out, _ = vigilRun(t, nil, "validate", "--json", "-c", good)
	var res struct {
		Valid  bool `json:"valid"`
		Checks int  `json:"checks"`
		Errors []struct {
			Line    int    `json:"line"`
			Path    string `json:"path"`
			Message string `json:"message"`
			Fix     string `json:"fix"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || !res.Valid || res.Checks != 2 {
		t.Errorf("validate --json of a good config: exit %d, %v: %s", code, err, out)
	}
	bad := writeConfig(t, "checks:\n  - name: x\n    kind: htp\n")
	code, out, _ = vigilRun(t, nil, "validate", "--json", "-c", bad)
	res.Errors = nil
	if err := json.Unmarshal([]byte(out), &res); code != 2 || err != nil || res.Valid || len(res.Errors) != 1 ||
		res.Errors[0].Path != "checks[0].kind" || res.Errors[0].Line != 3 || !strings.Contains(res.Errors[0].Fix, `"http"`) {
		t.Errorf("validate --json of a bad config: exit %d, %v: %s", code, err, out)
	}
	// A valid config's counts are there when they are 0 (a checks-only file has no notifiers).
	checksOnly := writeConfig(t, "checks: [{name: x, kind: http, request: {url: \"http://127.0.0.1:1/\"}}]\n")
	code, out, _ = vigilRun(t, nil, "validate", "--json", "-c", checksOnly)
	var counts map[string]any
	if err := json.Unmarshal([]byte(out), &counts); code != 0 || err != nil || counts["notifiers"] != 0.0 || counts["services"] != 0.0 || counts["checks"] != 1.0 {
		t.Errorf("validate --json of a checks-only config: exit %d, %v: %s", code, err, out)
	}
}

// Completion offers the config's check and service names.
func TestCompletionOfNames(t *testing.T) {
	a := newApp(t)
	cfg := writeConfig(t, gateConfig(a.URL, ""))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"__complete", "run", "-c", cfg, "--check", ""}, "home\npool\n"},
		{[]string{"__complete", "run", "-c", cfg, "--service", "s"}, "slow\n"},
		{[]string{"__complete", "gate", "--service", "w"}, "web\n"},
		{[]string{"__complete", "preflight", "--service", "w"}, "web\n"},
	} {
		env := []string{"VIGIL_CONFIG=" + cfg}
		code, out, _ := vigilRun(t, env, c.args...)
		if code != 0 || !strings.HasPrefix(out, c.want) {
			t.Errorf("%v: exit %d: %q; want it to start %q", c.args, code, out, c.want)
		}
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		if code, out, _ := vigilRun(t, nil, "completion", shell); code != 0 || !strings.Contains(out, "vigil") {
			t.Errorf("completion %s: exit %d", shell, code)
		}
	}
}

// vigil silence creates, lists and deletes silences over a real agent's API.
func TestSilenceCommand(t *testing.T) {
	_, cfg := gateSetup(t)
	p := startAgentProc(t, cfg, "")
	env := []string{"VIGIL_AGENT=" + p.url, "VIGIL_API_TOKEN=gate-token"}
	code, out, errOut := vigilRun(t, env, "silence", "create", "--service", "web", "--for", "2h", "--reason", "db migration", "--by", "ana", "--json")
	var s struct{ ID, Service, Reason string }
	if err := json.Unmarshal([]byte(out), &s); code != 0 || err != nil || s.ID == "" || s.Service != "web" {
		t.Fatalf("silence create: exit %d, %v: %s %s", code, err, out, errOut)
	}
	if code, out, _ := vigilRun(t, env, "silence", "list"); code != 0 || !strings.Contains(out, s.ID) || !strings.Contains(out, "service web") || !strings.Contains(out, "db migration") {
		t.Errorf("silence list: exit %d:\n%s", code, out)
	}
	if code, out, _ := vigilRun(t, env, "silence", "delete", s.ID); code != 0 || !strings.Contains(out, "ended") {
		t.Errorf("silence delete: exit %d: %s", code, out)
	}
	if code, out, _ := vigilRun(t, env, "silence", "list", "--json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("silence list after delete: exit %d: %s", code, out)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"silence", "create", "--service", "web", "--check", "home", "--for", "1h", "--reason", "x"}, 2, "exactly one"},
		{[]string{"silence", "create", "--service", "web", "--for", "1h"}, 2, "--reason is required"},
		{[]string{"silence", "create", "--service", "wbe", "--for", "1h", "--reason", "x"}, 1, `the agent refused (HTTP 422): unknown service "wbe"; did you mean "web"?`},
		{[]string{"silence", "create", "--check", "hme", "--for", "1h", "--reason", "x"}, 1, `the agent refused (HTTP 422): unknown check "hme"; did you mean "home"?`},
		{[]string{"silence", "delete", "nope"}, 1, `no silence "nope"`},
	} {
		if code, _, errOut := vigilRun(t, env, c.args...); code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d (want %d): %s", c.args, code, c.code, errOut)
		}
	}
}

// Every check runs once when the agent starts. With --log-json every line the agent
// writes is a JSON object, and durations in it are Go duration strings, not integer
// nanoseconds.
func TestAgentLogJSONOnly(t *testing.T) {
	_, cfg := gateSetup(t)
	p := startAgentProcArgs(t, cfg, "--log-json")
	// The checks run every hour, and once at start: probe_success is there at once.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, body := p.get("/metrics")
		if strings.Contains(body, `probe_success{check="home"`) && strings.Contains(body, `probe_success{check="pool"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no probe_success for the checks 30 s after start (they run every hour; the first run is at start):\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := p.terminate(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(p.logs.String()), "\n")
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("a line that is not JSON: %q", l)
			continue
		}
		if g, ok := m["grace"]; ok {
			if _, isString := g.(string); !isString {
				t.Errorf("a duration logged as %v (%T), want a Go duration string", g, g)
			}
		}
	}
	if len(lines) < 2 {
		t.Errorf("the agent logged %d lines", len(lines))
	}

	// A config that does not load: the reason is a JSON line too, and the exit code 2.
	bad := writeConfig(t, "checks:\n  - name: x\n    kind: htp\n")
	code, out, errOut := vigilRun(t, nil, "agent", "--log-json", "-c", bad, "--listen", freeAddr(t))
	var m map[string]any
	if code != 2 || out != "" || json.Unmarshal([]byte(strings.TrimSpace(errOut)), &m) != nil || !strings.Contains(fmt.Sprint(m["error"]), `unknown kind "htp"`) {
		t.Errorf("a bad config with --log-json: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// run exits 3 when nothing failed but a check was inconclusive, as gate does.
func TestRunInconclusiveExitCode(t *testing.T) {
	// A Prometheus that answers no series: a promql check cannot judge, it is inconclusive.
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}))
	t.Cleanup(prom.Close)
	cfg := writeConfig(t, fmt.Sprintf(`
checks:
  - {name: pool, kind: promql, retries: 0, server: %q, query: "max(pool_active)", assert: ["value < 50"]}
`, prom.URL))
	code, out, errOut := vigilRun(t, nil, "run", "-c", cfg, "--json")
	if code != 3 {
		t.Errorf("exit %d, want 3:\n%s%s", code, out, errOut)
	}
	var res struct {
		Summary map[string]any   `json:"summary"`
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Results) != 1 {
		t.Fatalf("run --json: %v: %s", err, out)
	}
	if _, ok := res.Results[0]["duration_seconds"].(float64); !ok || res.Results[0]["duration_ns"] != nil {
		t.Errorf("a result's duration should be duration_seconds, a float: %v", res.Results[0])
	}
	if _, ok := res.Summary["duration_seconds"].(float64); !ok {
		t.Errorf("the summary's duration should be duration_seconds: %v", res.Summary)
	}
}

// A command that only groups others refuses a missing or unknown subcommand with exit 2:
// a script's typo (silence craete) printed the help and exited 0.
func TestUnknownSubcommandsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"silence", "craete"}, {"silence"}, {"completion", "tcsh"}, {"completion"}} {
		code, _, errOut := vigilRun(t, nil, args...)
		if code != 2 || !strings.Contains(errOut, "use one of") {
			t.Errorf("vigil %s: exit %d, stderr %q; want 2 and the subcommands", strings.Join(args, " "), code, errOut)
		}
	}
	if code, out, _ := vigilRun(t, nil, "completion", "bash"); code != 0 || !strings.Contains(out, "bash completion") {
		t.Errorf("vigil completion bash: exit %d", code)
	}
}
