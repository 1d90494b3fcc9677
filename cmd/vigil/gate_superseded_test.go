package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// A gate whose deploy a newer one supersedes (the pipeline ran again, a hotfix went out
// on top) ends at once with exit 3, saying so, rather than waiting out --wait for a
// verdict that will never come; the agent's URL and token come from $VIGIL_AGENT and
// $VIGIL_API_TOKEN, as the README promises.
func TestGateSuperseded(t *testing.T) {
	_, cfg := gateSetup(t)
	p := startAgentProc(t, cfg, "")
	env := append(os.Environ(), "VIGIL_AGENT="+p.url, "VIGIL_API_TOKEN=gate-token")
	first := exec.Command(vigilBinary(t), "gate", "--service", "slow", "--version", "v1", "--wait", "5m")
	first.Env = env
	var out vigiltest.Buffer
	first.Stdout, first.Stderr = &out, &out
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = first.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = first.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "registered") {
		if time.Now().After(deadline) {
			t.Fatalf("the first gate did not register within 30s:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, o, e := vigilRun(t, []string{"VIGIL_AGENT=" + p.url, "VIGIL_API_TOKEN=gate-token"}, "gate", "--service", "slow", "--version", "v2", "--wait", "1s"); code != 3 {
		t.Fatalf("the newer gate: exit %d, want 3 (no verdict in 1s):\n%s%s", code, o, e)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the superseded gate still waits 60s after a newer deploy:\n%s", out.String())
	}
	if code := first.ProcessState.ExitCode(); code != 3 || !strings.Contains(out.String(), "SUPERSEDED") {
		t.Errorf("the superseded gate: exit %d, want 3 and SUPERSEDED:\n%s", code, out.String())
	}
	t.Logf("superseded gate said:\n%s", out.String())
}
