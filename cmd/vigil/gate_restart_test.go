package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// The agent is restarted while gate waits for the verdict (its own rollout; a crash, here
// SIGKILL): gate is refused connections, keeps asking, and reports the verdict the agent
// reaches after it comes back with its store. The README promises it ("verdicts survive
// restarts"); no test restarted a real agent under a waiting gate.
func TestGateWaitsThroughAnAgentRestart(t *testing.T) {
	a := newApp(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	body := fmt.Sprintf(`
agent: {api_token: gate-token}
store: {dsn: %q}
checks:
  - {name: home, kind: http, every: 1h, retries: 0, request: {url: "%s/"}, assert: ["status == 200"]}
services:
  web: {checks: [home], verify: {interval: 1s, count: 4}}
`, filepath.Join(dir, "v.db"), a.URL)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	p := startAgentProc(t, cfg, addr)
	gate := exec.Command(vigilBinary(t), "gate", "--agent", p.url, "--service", "web", "--version", "v2", "--wait", "2m")
	gate.Env = append(os.Environ(), "VIGIL_API_TOKEN=gate-token")
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
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "registered") {
		if time.Now().After(deadline) {
			t.Fatalf("gate did not register within 30s:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.kill() // SIGKILL: no goodbye, connections refused until it is back
	time.Sleep(2 * time.Second)
	startAgentProc(t, cfg, addr)
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		t.Fatalf("gate still waits 90s after the agent came back:\n%s", out.String())
	}
	code := gate.ProcessState.ExitCode()
	if code != 0 || !strings.Contains(out.String(), "PASSED") || !strings.Contains(out.String(), "does not answer") {
		t.Errorf("gate through an agent restart: exit %d, want 0, PASSED, after saying the agent did not answer:\n%s", code, out.String())
	}
}
