package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// vigil cancel against a real agent process: a gate waiting for a deploy whose rollout is
// called off ends at once, exit 3, saying it was cancelled; a cancel sent again is exit 0;
// a deploy decided first keeps its verdict (exit 1); a cancel that names nothing to cancel
// is exit 2.
func TestCancel(t *testing.T) {
	a, cfg := gateSetup(t)
	p := startAgentProc(t, cfg, "")
	env := []string{"VIGIL_AGENT=" + p.url, "VIGIL_API_TOKEN=gate-token"}
	gate := exec.Command(vigilBinary(t), "gate", "--service", "slow", "--version", "v1", "--wait", "5m")
	gate.Env = append(os.Environ(), env...)
	var out vigiltest.Buffer
	gate.Stdout, gate.Stderr = &out, &out
	if err := gate.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = gate.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = gate.Process.Kill()
			<-done
		}
	})
	registered := regexp.MustCompile(`deploy (\S+) registered`)
	deadline := time.Now().Add(30 * time.Second)
	for registered.FindStringSubmatch(out.String()) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the gate did not register within 30s:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	id := registered.FindStringSubmatch(out.String())[1]

	code, o, e := vigilRun(t, env, "cancel", "--service", "slow", "--version", "v1", "--reason", "Argo Rollouts aborted slow")
	if code != 0 || !strings.Contains(o, "deploy "+id+" (slow v1) cancelled") {
		t.Fatalf("vigil cancel: exit %d; want 0 and the deploy cancelled:\n%s%s", code, o, e)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the gate still waits 60s after the cancel:\n%s", out.String())
	}
	for _, want := range []string{"slow v1: CANCELLED", "cancelled: Argo Rollouts aborted slow", "nothing to roll back (exit 3)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the gate's output lacks %q:\n%s", want, out.String())
		}
	}
	if code := gate.ProcessState.ExitCode(); code != 3 {
		t.Errorf("the gate of the cancelled deploy: exit %d; want 3 (neither passed nor failed)", code)
	}

	code, o, e = vigilRun(t, env, "cancel", "--deploy", id, "--json")
	var d map[string]any
	if code != 0 || json.Unmarshal([]byte(o), &d) != nil || d["status"] != "cancelled" || d["id"] != id {
		t.Errorf("cancelling it again by id, --json: exit %d; want 0 and the deploy as JSON:\n%s%s", code, o, e)
	}

	a.mode.Store("good")
	if code, o, e := vigilRun(t, env, "gate", "--service", "web", "--version", "v1"); code != 0 {
		t.Fatalf("gate web v1: exit %d\n%s%s", code, o, e)
	}
	code, o, e = vigilRun(t, env, "cancel", "--service", "web", "--version", "v1", "--reason", "too late")
	if code != 1 || !strings.Contains(o, "was decided before the cancel; its verdict stands") || !strings.Contains(o, "web v1: PASSED") {
		t.Errorf("cancelling a deploy that passed: exit %d; want 1 and its verdict:\n%s%s", code, o, e)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"cancel"}, "name the deploy"},
		{[]string{"cancel", "--service", "web"}, "name the deploy"},
		{[]string{"cancel", "--deploy", id, "--service", "web"}, "not both"},
		{[]string{"cancel", "--deploy", "20260101-000000-00000000"}, "(HTTP 404): no deploy"},
		{[]string{"cancel", "--service", "web", "--version", "v9"}, "(HTTP 404): no deploy of web v9 to cancel"},
		{[]string{"cancel", "--service", "wbe", "--version", "v1"}, `did you mean "web"?`},
		{[]string{"cancel", "--deploy", id, "--reason", "two\nlines"}, "(HTTP 400): reason must be one line"},
		{[]string{"cancel", "--deploy", id, "--retry", "-1s"}, "--retry must be"},
	} {
		if code, o, e := vigilRun(t, env, c.args...); code != 2 || !strings.Contains(e, c.want) {
			t.Errorf("vigil %s: exit %d; want 2 saying %q:\n%s%s", strings.Join(c.args, " "), code, c.want, o, e)
		}
	}
	if code, o, _ := vigilRun(t, []string{"VIGIL_AGENT=http://127.0.0.1:1"}, "cancel", "--deploy", id, "--retry", "0", "--json"); code != 2 || !strings.Contains(o, `"exit_code":2`) {
		t.Errorf("an unreachable agent, --json: exit %d; want 2 and the error as JSON:\n%s", code, o)
	}
}
