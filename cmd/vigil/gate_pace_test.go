package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

// The agent answers a long-poll past its cap with 503, Retry-After: 2 ("ask again in a few
// seconds"). gate said the agent "does not answer", and came back after 1 s, too early
// for it. It says what the agent answered and comes back when the agent said.
func TestGateHonoursRetryAfterWhileWaiting(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprint(w, `{"id":"d-1"}`)
			return
		}
		mu.Lock()
		at = append(at, time.Now())
		n := len(at)
		mu.Unlock()
		if n <= 2 {
			w.Header().Set("Retry-After", "2")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":"16 requests already wait for a verdict, the most at once (half of agent.max_connections): ask again in a few seconds"}`)
			return
		}
		fmt.Fprint(w, `{"id":"d-1","service":"web","version":"v2","status":"passed"}`)
	}))
	t.Cleanup(agent.Close)
	code, out, errOut := vigilRun(t, nil, "gate", "--agent", agent.URL, "--service", "web", "--version", "v2", "--wait", "1m")
	if code != 0 || !strings.Contains(out, "PASSED") || !strings.Contains(errOut, "answered HTTP 503") || strings.Contains(errOut, "does not answer") {
		t.Errorf("exit %d, want 0 after saying what the agent answered:\n%s%s", code, out, errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(at) && i < 3; i++ {
		if gap := at[i].Sub(at[i-1]); gap < 2*time.Second-50*time.Millisecond {
			t.Errorf("poll %d came %s after a 503 with Retry-After: 2", i+1, gap.Round(time.Millisecond))
		}
	}
}
