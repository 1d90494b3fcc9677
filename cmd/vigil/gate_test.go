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

	"github.com/vigil-monitor/vigil/agent/client"
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

// A verdict several agents reported lists each agent's report under the deploy's reason;
// one report is the reason itself and is not repeated.
func TestGatePrintsEachAgentsReport(t *testing.T) {
	d := &client.Deploy{Service: "web", Version: "v2", Status: "failed", Reason: "home: 1 failed run (agents: eu-1 passed, eu-2 failed)",
		Locations: []client.LocationReport{{Location: "eu", Agent: "eu-1", Status: "passed", Reason: "1 check, 3 runs over 3 rounds: within limits"},
			{Location: "eu", Agent: "eu-2", Status: "failed", Reason: "home: 1 failed run (failure_limit 0): status == 200 is false"}}}
	var out strings.Builder
	printVerdict(&out, d)
	for _, want := range []string{"vigil: web v2: FAILED\n", "  eu (eu-1): passed: 1 check, 3 runs over 3 rounds: within limits\n",
		"  eu (eu-2): failed: home: 1 failed run (failure_limit 0): status == 200 is false\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("gate printed:\n%s\nwithout %q", out.String(), want)
		}
	}
	out.Reset()
	d.Locations = d.Locations[1:]
	printVerdict(&out, d)
	if strings.Contains(out.String(), "eu (eu-2)") {
		t.Errorf("one report is printed again under its own verdict:\n%s", out.String())
	}
}
