package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cancelStep runs a step's shell and cancels it as GitHub's runner cancels a job: once
// vigil, a child of the shell, is up and handles the signal, sig goes to the shell's
// process only (kill(pid), not its group); a shell still there 30 s later gets SIGTERM and,
// 2.5 s on, SIGKILL, as the runner's later steps do. Whatever the shell left behind is
// killed with its process group when the step is over.
func cancelStep(t *testing.T, cmd *exec.Cmd, sig syscall.Signal) ([]byte, error) {
	t.Helper()
	var out bytes.Buffer
	mu := &sync.Mutex{}
	cmd.Stdout, cmd.Stderr = lockedWriter{mu, &out}, lockedWriter{mu, &out}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	shell := cmd.Process.Pid
	defer func() { _ = syscall.Kill(-shell, syscall.SIGKILL) }() // vigil too, if the shell left it
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	text := func() []byte { mu.Lock(); defer mu.Unlock(); return bytes.Clone(out.Bytes()) }
	ready := time.Now().Add(30 * time.Second)
	for !vigilHandles(shell, sig) {
		select {
		case err := <-done:
			t.Fatalf("the step ended before vigil was up to be cancelled (%v):\n%s", err, text())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(ready) {
			t.Fatalf("no vigil under the step's shell handles signal %d after 30s:\n%s", sig, text())
		}
	}
	_ = syscall.Kill(shell, sig)
	select {
	case err := <-done:
		return text(), err
	case <-time.After(30 * time.Second):
	}
	_ = syscall.Kill(shell, syscall.SIGTERM)
	select {
	case err := <-done:
		return append(text(), "(the step ended only on the runner's SIGTERM, 30 s after the cancel)\n"...), err
	case <-time.After(2500 * time.Millisecond):
	}
	_ = syscall.Kill(shell, syscall.SIGKILL)
	err := <-done
	return append(text(), "(the step was killed: neither the cancel nor SIGTERM ended it)\n"...), err
}

// vigilHandles says whether a process named vigil, a child of parent, catches sig.
func vigilHandles(parent int, sig syscall.Signal) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open || s[open+1:end] != "vigil" {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(parent) {
			continue
		}
		status, err := os.ReadFile(filepath.Join(filepath.Dir(st), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if mask, ok := strings.CutPrefix(line, "SigCgt:"); ok {
				m, err := strconv.ParseUint(strings.TrimSpace(mask), 16, 64)
				if err == nil && m&(1<<(sig-1)) != 0 {
					return true
				}
			}
		}
	}
	return false
}

// GitHub's runner cancels a job by signalling the step's shell alone: SIGINT, SIGTERM 7.5 s
// later, then SIGKILL. The shell ran vigil in a pipeline and waited for it, so vigil never
// heard of the cancel: gate kept waiting until the shell was killed, and the step's
// "interrupted" message, vigil's own report of what becomes of the deploy, never showed.
// The step now passes each signal on to vigil. The real release binary, asked to gate on an
// agent that cannot be reached (so it keeps sending the deploy, for up to a minute).
func TestGitHubActionPassesACancelOnToVigil(t *testing.T) {
	action := yamlFile(t, "github-action/action.yml")[0]
	srv := releaseServer(t)
	agent := "http://" + freeAddr(t) // nothing listens there
	for _, c := range []struct {
		command, step string
		sig           syscall.Signal
		want          string
	}{
		{"gate", "gate", syscall.SIGINT, "::error::vigil gate was interrupted (exit 130): the job was cancelled before the verdict on web v9; it may or may not be registered"},
		{"gate", "gate", syscall.SIGTERM, "::error::vigil gate was interrupted (exit 143)"},
		{"preflight", "preflight", syscall.SIGINT, "::error::vigil preflight was interrupted (exit 130): the job was cancelled before the agent answered"},
	} {
		t.Run(c.command+"-"+strconv.Itoa(int(c.sig)), func(t *testing.T) {
			r := runActionCancelled(t, action, map[string]string{"command": c.command, "agent": agent, "token": "t",
				"service": "web", "version": "v9", "vigil-version": releaseVersion, "release-url": srv.URL}, c.step, c.sig)
			if !r.failed || !strings.Contains(r.log, c.want) {
				t.Errorf("failed=%v; want the step failed and the log saying %q:\n%s", r.failed, c.want, r.log)
			}
			if strings.Contains(r.log, "(the step") {
				t.Errorf("vigil did not hear the cancel:\n%s", r.log)
			}
		})
	}
}
