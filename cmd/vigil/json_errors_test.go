package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// With --json, stdout is JSON in every outcome: a pipeline that pipes it to jq or keeps it
// as an artifact reads {"error", "exit_code"} when the command could not do its work (a
// bad config, a bad flag, an agent out of reach), not an empty file (stdout was empty and
// `jq` failed on it, hiding the message on stderr).
func TestJSONErrorsAreJSON(t *testing.T) {
	srv := target(t)
	cfg := writeConfig(t, config(srv.URL))
	nowhere := nowhereAgent
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"run, missing config", []string{"run", "--json", "-c", filepath.Join(t.TempDir(), "none.yaml")}, "cannot read config"},
		{"run, unknown service", []string{"run", "--json", "-c", cfg, "--service", "goood"}, `did you mean "good"?`},
		{"run, bad flag", []string{"run", "--json", "-c", cfg, "--concurency", "2"}, "unknown flag: --concurency"},
		{"run, bad flag before --json", []string{"run", "--concurency", "2", "--json", "-c", cfg}, "unknown flag: --concurency"},
		{"gate, no service", []string{"gate", "--json", "--agent", nowhere, "--version", "v1"}, "--service and --version are required"},
		{"gate, unreachable", []string{"gate", "--json", "--agent", nowhere, "--service", "web", "--version", "v1", "--register-retry", "0"}, "cannot reach the agent"},
		{"preflight, unreachable", []string{"preflight", "--json", "--agent", nowhere, "--service", "web", "--version", "v1", "--retry", "0"}, "cannot reach the agent"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := vigilRun(t, []string{"VIGIL_AGENT=", "VIGIL_API_TOKEN="}, c.args...)
			var doc struct {
				Error    string `json:"error"`
				ExitCode *int   `json:"exit_code"`
			}
			err := json.Unmarshal([]byte(out), &doc)
			if code != 2 || err != nil || doc.ExitCode == nil || *doc.ExitCode != code || !strings.Contains(doc.Error, c.want) {
				t.Errorf("exit %d (want 2); stdout %q (%v); want {\"error\": ...%q..., \"exit_code\": 2}", code, out, err, c.want)
			}
			if !strings.Contains(errOut, c.want) {
				t.Errorf("stderr no longer says it: %q", errOut)
			}
		})
	}
	// A result is still the result: a failed run's JSON is its results, not an error.
	code, out, _ := vigilRun(t, nil, "run", "--json", "-c", cfg)
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); code != 1 || err != nil || doc["results"] == nil || doc["error"] != nil {
		t.Errorf("a failed run --json: exit %d: %v: %s", code, err, out)
	}
}

// stdout is counted on its way out (for the JSON error above); a terminal behind the count
// is still a terminal: live progress on one, lines otherwise. /dev/null is a character
// device, as a terminal is.
func TestRunSeesTheTerminalBehindTheCount(t *testing.T) {
	t.Setenv("TERM", "xterm")
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	if !isTerminal(f) || !isTerminal(&countingWriter{w: f}) {
		t.Errorf("isTerminal: %v on the device, %v through the count", isTerminal(f), isTerminal(&countingWriter{w: f}))
	}
	if isTerminal(&countingWriter{w: &strings.Builder{}}) {
		t.Error("a buffer is not a terminal")
	}
}
