package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// An agent, or a proxy in front of it, that answers a long-poll at once ("verifying",
// its ?wait= dropped or ignored) must not be asked again at once: gate asked it in a
// tight loop, thousands of requests a second for all of --wait, against the agent it
// is waiting on. Polls that come back early are paced, at most one a second.
func TestGatePacesPollsAnsweredAtOnce(t *testing.T) {
	var polls atomic.Int64
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprint(w, `{"id":"d-1"}`)
			return
		}
		polls.Add(1)
		fmt.Fprint(w, `{"id":"d-1","service":"web","version":"v2","status":"verifying"}`)
	}))
	t.Cleanup(agent.Close)
	code, out, errOut := vigilRun(t, nil, "gate", "--agent", agent.URL, "--service", "web", "--version", "v2", "--wait", "3s")
	if code != 3 || !strings.Contains(out, "no verdict within 3s") {
		t.Errorf("exit %d, want 3 and no verdict:\n%s%s", code, out, errOut)
	}
	if n := polls.Load(); n > 10 {
		t.Errorf("gate asked %d times in a 3s wait; want at most one poll a second", n)
	}
}
