package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/agent/client"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
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
	// Gone before the first poll, its port kept by a listener that drops every connection:
	// gate now asks until --wait ends, long enough for another test's server to take a freed
	// port and answer 404.
	addr := agent.Listener.Addr().String()
	dead := make(chan net.Listener, 1)
	go func() {
		<-registered
		agent.Close()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			close(dead)
			return
		}
		dead <- ln
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() {
		select {
		case ln, ok := <-dead:
			if ok {
				ln.Close()
			}
		case <-time.After(time.Second): // never registered: nothing listens
		}
	})
	start := time.Now()
	cmd := exec.Command(vigilBinary(t), "gate", "--agent", agent.URL, "--service", "web", "--version", "v2", "--wait", "4s")
	cmd.Env = os.Environ()
	out, _ := cmd.CombinedOutput()
	code := cmd.ProcessState.ExitCode()
	t.Logf("reliability: gate against an agent that died after registering: exit %d: %s", code, strings.TrimSpace(lastLine(string(out))))
	if code != 2 || !strings.Contains(string(out), "unreachable") || strings.Contains(string(out), "still verifying") {
		t.Errorf("exit %d after %s, want 2 and \"unreachable\":\n%s", code, time.Since(start).Round(time.Millisecond), out)
	}
	if !strings.Contains(string(out), "does not answer") || !strings.Contains(string(out), "asking again until the wait ends") {
		t.Errorf("gate did not say it kept asking:\n%s", out)
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

// A pipeline's gate meets an agent that is not up yet (its own rollout, a node drained) and
// then a registration whose answer is lost on the way back (a proxy dropping the
// connection after the agent took it). gate sends the deploy again under the same
// Idempotency-Key until the agent takes it; the agent, a real process with its SQLite
// store, registers it once and the verdict comes back as for any deploy.
func TestGateRegistersOnceThroughARestartAndALostAnswer(t *testing.T) {
	_, cfg := gateSetup(t)
	bin := vigilBinary(t)
	gate := func(agentURL, version string) *exec.Cmd {
		cmd := exec.Command(bin, "gate", "--agent", agentURL, "--service", "web", "--version", version, "--wait", "2m")
		cmd.Env = append(os.Environ(), "VIGIL_API_TOKEN=gate-token")
		return cmd
	}

	// the agent starts a second and a half after gate does
	addr := freeAddr(t)
	early := gate("http://"+addr, "v-early")
	var earlyOut vigiltest.Buffer
	early.Stdout, early.Stderr = &earlyOut, &earlyOut
	if err := early.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	p := startAgentProc(t, cfg, addr)
	if err := early.Wait(); err != nil || !strings.Contains(earlyOut.String(), "sending it again in") || !strings.Contains(earlyOut.String(), "PASSED") {
		t.Fatalf("gate started before the agent: %v\n%s", err, earlyOut.String())
	}

	// the first answer is lost: the agent registered the deploy, the gate never heard
	target, _ := url.Parse(p.url)
	rp := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var keys []string
	drop := 1
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lose := r.Method == http.MethodPost && drop > 0
		if r.Method == http.MethodPost {
			keys = append(keys, r.Header.Get("Idempotency-Key"))
			drop--
		}
		mu.Unlock()
		if !lose {
			rp.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		if rec.Code != http.StatusAccepted {
			t.Errorf("the agent answered the first registration %d: %s", rec.Code, rec.Body)
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}))
	t.Cleanup(proxy.Close)
	out, err := gate(proxy.URL, "v-lost").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "sending it again in 1s") || !strings.Contains(string(out), "PASSED") {
		t.Fatalf("gate through a lost answer: %v\n%s", err, out)
	}
	mu.Lock()
	if len(keys) != 2 || keys[0] == "" || keys[0] != keys[1] {
		t.Errorf("Idempotency-Keys of the registrations: %q; want the same one twice", keys)
	}
	mu.Unlock()

	c, err := client.New(p.url, "gate-token", "")
	if err != nil {
		t.Fatal(err)
	}
	status, raw, err := c.Do(t.Context(), http.MethodGet, "/api/v1/deploys?service=web", nil, 10*time.Second)
	if err != nil || status != http.StatusOK {
		t.Fatal(status, err)
	}
	var list struct {
		Deploys []struct{ ID, Version, Status string }
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, d := range list.Deploys {
		got[d.Version] = append(got[d.Version], d.Status)
	}
	if len(got["v-lost"]) != 1 || got["v-lost"][0] != "passed" || len(got["v-early"]) != 1 || got["v-early"][0] != "passed" {
		t.Errorf("deploys by version: %v; want one of each, passed (none registered twice, none superseded)", got)
	}
	t.Logf("reliability: gate rode out an agent starting late and a lost answer; deploys %v", got)
}

// An agent (or a proxy before it) that takes the long-poll and never answers: --wait
// bounds gate all the same. Each poll had a timeout of its own, the wait it asked for
// plus 30 s, so a gate with --wait 2s hung 32 s before it said anything.
func TestGateEndsAtItsWaitWhenTheAgentHangs(t *testing.T) {
	hold := make(chan struct{})
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprint(w, `{"id":"d-1"}`)
			return
		}
		select { // holds the poll until gate gives up on it
		case <-r.Context().Done():
		case <-hold:
		}
	}))
	defer agent.Close()
	defer close(hold)
	cmd := exec.Command(vigilBinary(t), "gate", "--agent", agent.URL, "--service", "web", "--version", "v2", "--wait", "2s")
	cmd.Env = os.Environ()
	start := time.Now()
	out, _ := cmd.CombinedOutput()
	took := time.Since(start)
	code := cmd.ProcessState.ExitCode()
	t.Logf("gate against an agent that never answers its poll: exit %d after %s: %s", code, took.Round(time.Millisecond), strings.TrimSpace(lastLine(string(out))))
	if took > 20*time.Second { // --wait 2s plus pollGrace, with a loaded machine's room; 32 s before
		t.Fatalf("gate took %s with --wait 2s", took)
	}
	if code != 2 || !strings.Contains(string(out), "unreachable") {
		t.Errorf("exit %d, want 2 and \"unreachable\":\n%s", code, out)
	}
}
