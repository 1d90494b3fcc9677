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
// $VIGIL_API_TOKEN, as the README promises. It says which deploy superseded it, by
// version, and its --json names it in superseded_by.
func TestGateSuperseded(t *testing.T) {
	_, cfg := gateSetup(t)
	p := startAgentProc(t, cfg, "")
	env := append(os.Environ(), "VIGIL_AGENT="+p.url, "VIGIL_API_TOKEN=gate-token")
	first := exec.Command(vigilBinary(t), "gate", "--service", "slow", "--version", "v1", "--wait", "5m", "--json")
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
	code, o, e := vigilRun(t, []string{"VIGIL_AGENT=" + p.url, "VIGIL_API_TOKEN=gate-token"}, "gate", "--service", "slow", "--version", "v2", "--wait", "1s")
	if code != 3 {
		t.Fatalf("the newer gate: exit %d, want 3 (no verdict in 1s):\n%s%s", code, o, e)
	}
	var v2 string
	if _, after, ok := strings.Cut(o+e, "vigil: deploy "); ok {
		v2, _, _ = strings.Cut(after, " ")
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the superseded gate still waits 60s after a newer deploy:\n%s", out.String())
	}
	if code := first.ProcessState.ExitCode(); code != 3 || !strings.Contains(out.String(), "SUPERSEDED") {
		t.Errorf("the superseded gate: exit %d, want 3 and SUPERSEDED:\n%s", code, out.String())
	}
	if by := "superseded by slow v2 (deploy " + v2 + ")"; v2 == "" || !strings.Contains(out.String(), by) ||
		!strings.Contains(out.String(), `"superseded_by": "`+v2+`"`) {
		t.Errorf("the superseded gate does not say %q, nor name it in its --json's superseded_by:\n%s", by, out.String())
	}
	t.Logf("superseded gate said:\n%s", out.String())
}
