package main

// The parts the command tests share: the binary, built once; a loopback app whose
// behaviour a test switches; a `vigil agent` process.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// vigilBinary builds the real binary once per test run.
func vigilBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vigil-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "vigil")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, p := range []string{binPath, oldBinPath} {
		if p != "" {
			os.RemoveAll(filepath.Dir(p))
		}
	}
	os.Exit(code)
}

// app is a loopback service whose behaviour a test switches.
type app struct {
	*httptest.Server
	mode atomic.Value
}

func newApp(t *testing.T) *app {
	a := &app{}
	a.mode.Store("good")
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/query" { // a Prometheus with no series of what is asked
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
			return
		}
		if a.mode.Load() == "broken" {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(a.Close)
	return a
}

// agentProc is a `vigil agent` process.
type agentProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	logs *vigiltest.Buffer
	done chan struct{}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startAgentProc starts the agent on cfg and waits for /healthz.
func startAgentProc(t *testing.T, cfg, addr string, env ...string) *agentProc {
	t.Helper()
	return startAgent(t, cfg, addr, env, "--log-level", "debug")
}

// startAgentProcArgs starts the agent on cfg with more flags.
func startAgentProcArgs(t *testing.T, cfg string, args ...string) *agentProc {
	t.Helper()
	return startAgent(t, cfg, "", nil, args...)
}

func startAgent(t *testing.T, cfg, addr string, env []string, args ...string) *agentProc {
	t.Helper()
	bin := vigilBinary(t)
	for attempt := 1; ; attempt++ {
		listen := addr
		if listen == "" {
			listen = freeAddr(t)
		}
		cmd := exec.Command(bin, append([]string{"agent", "-c", cfg, "--listen", listen}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		p, err := tryAgentCmd(t, cmd, listen)
		if err == nil {
			return p
		}
		// A port this helper picked can be taken between the probe and the agent's bind.
		if addr != "" || attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("the agent's port was taken before it bound it; trying again on a new one (%d of 3)", attempt+1)
	}
}

// runAgentCmd starts cmd, a `vigil agent` listening on addr, and waits for /healthz.
func runAgentCmd(t *testing.T, cmd *exec.Cmd, addr string) *agentProc {
	t.Helper()
	p, err := tryAgentCmd(t, cmd, addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func tryAgentCmd(t *testing.T, cmd *exec.Cmd, addr string) (*agentProc, error) {
	t.Helper()
	p := &agentProc{t: t, cmd: cmd, url: "http://" + addr, logs: &vigiltest.Buffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("agent output:\n%s", p.logs.String())
		}
	})
	probe := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := probe.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("the agent exited: %s", p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("the agent did not answer /healthz within 30s:\n%s", p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *agentProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// signal sends sig and, for SIGTERM, waits for the exit and returns the code.
func (p *agentProc) terminate() int {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		p.t.Fatalf("the agent did not stop within 30s of SIGTERM")
		return -1
	}
}

func (p *agentProc) get(path string) (int, string) {
	resp, err := http.Get(p.url + path)
	if err != nil {
		p.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// nowhereAgent is an agent address nothing listens on: the discard port. A port freeAddr
// released can be taken by a server of a test running beside the one that dials it (seen in
// CI: a loopback Slack answered a gate {"ok":true}).
const nowhereAgent = "http://127.0.0.1:9"
