package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// vigil preflight's exit codes against a real agent process: a version that failed
// verification is blocked (1), another is clear with a warning (0), --warn-only goes on,
// and a bad request or an unreachable agent is 2.
func TestPreflightCommand(t *testing.T) {
	a, cfg := gateSetup(t)
	p := startAgentProc(t, cfg, "")
	env := []string{"VIGIL_AGENT=" + p.url, "VIGIL_API_TOKEN=gate-token"}
	if code, out, errOut := vigilRun(t, env, "preflight", "--service", "web", "--version", "v1"); code != 0 || !strings.Contains(out, "vigil: web v1: clear to deploy") {
		t.Fatalf("preflight of a first deploy: exit %d\n%s%s", code, out, errOut)
	}
	a.mode.Store("broken")
	if code, out, _ := vigilRun(t, env, "gate", "--service", "web", "--version", "v2", "--wait", "1m"); code != 1 {
		t.Fatalf("gate of a broken v2: exit %d\n%s", code, out)
	}
	a.mode.Store("good")
	code, out, errOut := vigilRun(t, env, "preflight", "--service", "web", "--version", "v2")
	if code != 1 || !strings.Contains(out, "vigil: web v2: blocked") || !strings.Contains(out, "  blocked (version_failed): web v2 failed verification ") ||
		!strings.Contains(out, p.url+"/deploys/") || !strings.Contains(errOut, "vigil preflight: web v2 is blocked") {
		t.Errorf("preflight of the version that failed: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := vigilRun(t, env, "preflight", "--service", "web", "--version", "v2", "--warn-only"); code != 0 || !strings.Contains(out, "blocked (version_failed)") || !strings.Contains(errOut, "--warn-only: going on") {
		t.Errorf("preflight --warn-only: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := vigilRun(t, env, "preflight", "--service", "web", "--version", "v3"); code != 0 || !strings.Contains(out, "  warning (last_deploy_failed): the last deploy of web, v2, failed ") {
		t.Errorf("preflight of a new version while v2 is out: exit %d\n%s", code, out)
	}
	code, out, _ = vigilRun(t, env, "preflight", "--service", "web", "--version", "v2", "--json")
	var ans struct {
		Clear   bool `json:"clear"`
		Blocked []struct {
			Rule, Deploy string
		} `json:"blocked"`
	}
	if err := json.Unmarshal([]byte(out), &ans); code != 1 || err != nil || ans.Clear || len(ans.Blocked) != 1 || ans.Blocked[0].Rule != "version_failed" || ans.Blocked[0].Deploy == "" {
		t.Errorf("preflight --json: exit %d, %v: %s", code, err, out)
	}
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{env, []string{"preflight", "--service", "web"}, "--service and --version are required"},
		{env, []string{"preflight", "--service", "wbe", "--version", "v1"}, `the agent refused (HTTP 422): unknown service "wbe"; did you mean "web"?`},
		{[]string{"VIGIL_AGENT=" + p.url, "VIGIL_API_TOKEN=wrong"}, []string{"preflight", "--service", "web", "--version", "v1"}, "the agent refused (HTTP 401)"},
		{[]string{"VIGIL_AGENT=http://127.0.0.1:1", "VIGIL_API_TOKEN=x"}, []string{"preflight", "--service", "web", "--version", "v1", "--retry", "2s"}, "asking again in 1s"},
		{[]string{"VIGIL_AGENT="}, []string{"preflight", "--service", "web", "--version", "v1"}, "--agent is required"},
	} {
		if code, out, errOut := vigilRun(t, c.env, c.args...); code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, %s%s; want 2 with %q", c.args, code, out, errOut, c.want)
		}
	}
}

// The agent asked before a rollout is not up yet (its own rollout, a node drained), then
// a proxy in front of it answers 502 with a page of HTML, then the agent answers 503 with
// Retry-After (its store busy: "ask again"). preflight asks again, as the agent says, for
// up to --retry, and answers as the agent does once it can; --retry 0 asks once. It gave
// up at the first of them, exit 2: the pipeline failed before a rollout nothing blocked.
func TestPreflightAsksAgain(t *testing.T) {
	_, cfg := gateSetup(t)
	bin := vigilBinary(t)
	addr := freeAddr(t)
	var mu sync.Mutex
	answers := []int{http.StatusBadGateway, http.StatusServiceUnavailable}
	var seen []int
	var target atomic.Pointer[url.URL]
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		u := target.Load()
		if u != nil && len(answers) > 0 {
			status := answers[0]
			answers = answers[1:]
			seen = append(seen, status)
			mu.Unlock()
			if status == http.StatusBadGateway {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(status)
				fmt.Fprint(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
				return
			}
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"error":"reading the service's deploys failed (database is locked): ask again"}`, status)
			return
		}
		mu.Unlock()
		if u == nil { // the agent is not up: as a proxy with nothing behind it, no answer
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	cmd := exec.Command(bin, "preflight", "--agent", proxy.URL, "--service", "web", "--version", "v1")
	cmd.Env = append(os.Environ(), "VIGIL_API_TOKEN=gate-token")
	var stdout, stderr vigiltest.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	p := startAgentProc(t, cfg, addr)
	u, _ := url.Parse(p.url)
	target.Store(u)
	_ = cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	mu.Lock()
	defer mu.Unlock()
	if code != 0 || !strings.Contains(stdout.String(), "vigil: web v1: clear to deploy") || len(seen) != 2 {
		t.Errorf("exit %d (want 0, clear), proxy answers %v (want 502 and 503 first):\n%s%s", code, seen, stdout.String(), stderr.String())
	}
	for _, want := range []string{"asking again in 1s", "HTTP 502: <html>", "HTTP 503: reading the service's deploys failed"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
		}
	}
	// --retry 0 asks once: a pipeline that wants the answer now gets it, or exit 2.
	code, _, errOut := vigilRun(t, []string{"VIGIL_API_TOKEN=gate-token"}, "preflight", "--agent", "http://"+freeAddr(t), "--service", "web", "--version", "v1", "--retry", "0")
	if code != 2 || !strings.Contains(errOut, "cannot reach the agent") || strings.Contains(errOut, "asking again") {
		t.Errorf("--retry 0 to no agent: exit %d: %s", code, errOut)
	}
}
