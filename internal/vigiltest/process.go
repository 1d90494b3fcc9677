package vigiltest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Binary finds a real program a test needs: $envVar, else name, in PATH. Without it the
// test is skipped, saying how to get it (hint), unless requireVar is set (scripts/test
// sets it where scripts/setup installed the program): then it fails, so a machine without
// the program cannot pass the test.
func Binary(t testing.TB, name, envVar, requireVar, hint string) string {
	t.Helper()
	bin := os.Getenv(envVar)
	if bin == "" {
		bin = name
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		msg := fmt.Sprintf("%s not found (%v); %s, or set %s", bin, err, hint, envVar)
		if os.Getenv(requireVar) == "" {
			t.Skip(msg + "; set " + requireVar + "=1 to make this a failure")
		}
		t.Fatal(msg)
	}
	return path
}

// Process is a real server a test started on a loopback port: what it printed is kept for
// failure messages, and Stop kills it.
type Process struct {
	// URL is its base URL, http://127.0.0.1:PORT.
	URL string

	name   string
	cmd    *exec.Cmd
	logs   *Buffer
	once   sync.Once
	exited chan struct{}
}

// StartServer starts bin with the arguments args gives for a free loopback address and the
// attempt's number (for a fresh data folder), and waits up to 30 s until GET ready answers
// 200. A port taken between choosing and binding it costs an attempt; three are made. It
// is killed at t's cleanup.
func StartServer(t testing.TB, name, bin, ready string, args func(addr string, attempt int) []string) *Process {
	t.Helper()
	var lastErr error
	for attempt := range 3 {
		p, err := startServer(name, bin, ready, args, attempt)
		if err == nil {
			t.Cleanup(p.Stop)
			return p
		}
		lastErr = err
	}
	t.Fatalf("%s: %v", name, lastErr)
	return nil
}

func startServer(name, bin, ready string, args func(string, int) []string, attempt int) (*Process, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	logs := &Buffer{}
	cmd := exec.Command(bin, args(addr, attempt)...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &Process{URL: "http://" + addr, name: name, cmd: cmd, logs: logs, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	probe := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited during startup: %s", name, p.Logs())
		default:
		}
		if resp, err := probe.Get(p.URL + ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.Stop()
	return nil, fmt.Errorf("%s on %s not ready after 30s: %s", name, addr, p.Logs())
}

// Stop kills the process and waits for it to exit. It is safe to call more than once;
// tests call it to see how vigil behaves when the server is down.
func (p *Process) Stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
}

// Logs is what the process printed so far.
func (p *Process) Logs() string { return strings.TrimSpace(p.logs.String()) }
