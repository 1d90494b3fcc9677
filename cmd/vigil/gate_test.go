package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// An agent that registers the deploy and then dies: gate must say it lost the agent (exit
// 2, a pipeline problem), not that the agent is still verifying (exit 3).
func TestGateSaysUnreachableWhenTheAgentDies(t *testing.T) {
	registered := make(chan struct{}, 1)
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprint(w, `{"id":"d-1"}`)
			registered <- struct{}{}
			return
		}
		fmt.Fprint(w, `{"id":"d-1","status":"verifying"}`)
	}))
	defer agent.Close()
	go func() { <-registered; agent.Close() }() // gone before the first poll
	start := time.Now()
	cmd := exec.Command(vigilBinary(t), "gate", "--agent", agent.URL, "--service", "web", "--version", "v2", "--wait", "4s")
	cmd.Env = os.Environ()
	out, _ := cmd.CombinedOutput()
	code := cmd.ProcessState.ExitCode()
	t.Logf("reliability: gate against an agent that died after registering: exit %d: %s", code, strings.TrimSpace(lastLine(string(out))))
	if code != 2 || !strings.Contains(string(out), "unreachable") || strings.Contains(string(out), "still verifying") {
		t.Errorf("exit %d after %s, want 2 and \"unreachable\":\n%s", code, time.Since(start).Round(time.Millisecond), out)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
