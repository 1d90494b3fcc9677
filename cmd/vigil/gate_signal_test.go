package main

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// A pipeline's runner cancels the job (SIGTERM; GitHub Actions sends SIGINT first), or a
// person presses Ctrl-C, while gate waits for a verdict. gate says what it leaves behind
// (the deploy, still verifying: the agent goes on, and still calls rollback if it fails),
// --json still prints the deploy as it stands, and the exit code is the shell's for that
// signal (130, 143): neither a verdict (0, 1, 3) nor a pipeline error (2). It was killed
// by the signal, silent, with nothing on stdout.
func TestGateInterrupted(t *testing.T) {
	_, cfg := gateSetup(t)
	p := startAgentProc(t, cfg, "")
	for _, c := range []struct {
		name string
		sig  syscall.Signal
		code int
	}{{"SIGTERM", syscall.SIGTERM, 143}, {"SIGINT", syscall.SIGINT, 130}} {
		t.Run(c.name, func(t *testing.T) {
			version := "v-" + strings.ToLower(c.name)
			var stdout vigiltest.Buffer
			cmd, stderr, done := startRun(t, []string{"VIGIL_API_TOKEN=gate-token"}, &stdout, "gate", "--agent", p.url, "--service", "slow", "--version", version, "--wait", "5m", "--json")
			waitStderr(t, stderr, "registered", "gate registering the deploy")
			time.Sleep(300 * time.Millisecond) // waiting on the long-poll
			_ = cmd.Process.Signal(c.sig)
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("gate did not stop within 30s of %s:\n%s", c.name, stderr.String())
			}
			code := cmd.ProcessState.ExitCode()
			var d struct{ ID, Version, Status, URL string }
			err := json.Unmarshal([]byte(stdout.String()), &d)
			if code != c.code || err != nil || d.Status != "verifying" || d.Version != version || d.URL == "" {
				t.Errorf("exit %d (want %d); stdout %q (%v); want the deploy, verifying, as JSON", code, c.code, stdout.String(), err)
			}
			for _, want := range []string{"interrupted", "deploy " + d.ID, "the agent goes on verifying it", d.URL} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
				}
			}
		})
	}
}

// Interrupted while the agent is not taking the deploy yet (not up, here nothing listens):
// gate says the deploy may or may not be registered, with the shell's code for the signal,
// and --json is the error as JSON.
func TestGateInterruptedWhileRegistering(t *testing.T) {
	code, doc, stderr := interruptWhileAskingAgain(t, syscall.SIGTERM, "sending it again",
		"gate", "--register-retry", "5m")
	if code != 143 || doc.ExitCode != 143 || !strings.Contains(stderr, "may or may not be registered") {
		t.Errorf("exit %d (want 143), JSON %+v:\n%s", code, doc, stderr)
	}
}

// preflight now asks again for up to --retry: a job cancelled meanwhile ends it as gate
// ends, with the shell's code for the signal and, under --json, the reason as JSON (it
// was killed by the signal, stdout empty).
func TestPreflightInterrupted(t *testing.T) {
	code, doc, stderr := interruptWhileAskingAgain(t, syscall.SIGINT, "asking again",
		"preflight", "--retry", "5m")
	if code != 130 || doc.ExitCode != 130 || !strings.Contains(doc.Error, "interrupted") {
		t.Errorf("exit %d (want 130), JSON %+v:\n%s", code, doc, stderr)
	}
}

// jsonError is what a command prints on stdout under --json when it fails.
type jsonError struct {
	Error    string `json:"error"`
	ExitCode int    `json:"exit_code"`
}

// interruptWhileAskingAgain runs command (gate or preflight, with --json, args after it)
// against an agent address nothing listens on, sends sig once its stderr says waitFor (it
// is asking again), and returns its exit code, the JSON it printed and its stderr.
func interruptWhileAskingAgain(t *testing.T, sig syscall.Signal, waitFor, command string, args ...string) (int, jsonError, string) {
	t.Helper()
	args = append([]string{command, "--agent", nowhereAgent, "--service", "web", "--version", "v1", "--json"}, args...)
	var stdout vigiltest.Buffer
	cmd, stderr, done := startRun(t, []string{"VIGIL_API_TOKEN=x"}, &stdout, args...)
	waitStderr(t, stderr, waitFor, command+" asking twice")
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop within 30s of %s:\n%s", command, sig, stderr.String())
	}
	var doc jsonError
	if err := json.Unmarshal([]byte(stdout.String()), &doc); err != nil {
		t.Errorf("%s printed no JSON on stdout (%v): %q", command, err, stdout.String())
	}
	return cmd.ProcessState.ExitCode(), doc, stderr.String()
}
