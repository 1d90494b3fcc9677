package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// hangingTarget answers /ok at once and holds every other request until the client goes
// away; arrived receives one value per held request.
func hangingTarget(t *testing.T) (url string, arrived <-chan struct{}) {
	t.Helper()
	ch := make(chan struct{}, 10000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ok" {
			ch <- struct{}{}
			<-r.Context().Done()
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.URL, ch
}

// startRun starts a built vigil with args and env added to this process's environment,
// its stdout to stdout (nil: discarded) and its stderr in a buffer, and stops it when the
// test ends. done is closed once it exited.
func startRun(t *testing.T, env []string, stdout io.Writer, args ...string) (cmd *exec.Cmd, stderr *vigiltest.Buffer, done <-chan struct{}) {
	t.Helper()
	cmd = exec.Command(vigilBinary(t), args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	stderr = &vigiltest.Buffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{})
	go func() { _ = cmd.Wait(); close(ch) }()
	t.Cleanup(func() {
		select {
		case <-ch:
		default:
			_ = cmd.Process.Kill()
			<-ch
		}
	})
	return cmd, stderr, ch
}

// waitStderr waits up to 30 s for stderr to say marker.
func waitStderr(t *testing.T, stderr *vigiltest.Buffer, marker, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), marker) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s:\n%s", what, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor waits up to 30 s for n values on ch.
func waitFor(t *testing.T, ch <-chan struct{}, n int, what string) {
	t.Helper()
	for range n {
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: not within 30s", what)
		}
	}
}

// A person's Ctrl-C (SIGINT) or a runner cancelling the job (SIGTERM) interrupts vigil
// run: the checks under way stop (long before their 5 m timeout), none starts, the report
// of what ran is printed (text, or one JSON document that names the signal), and the exit
// code is the shell's for the signal, as gate's: 130, 143. It exited 1, as for a failed
// check, and --json did not say it was interrupted, only that some checks did not run.
func TestRunInterrupted(t *testing.T) {
	for _, c := range []struct {
		sig  syscall.Signal
		name string
		code int
		json bool
	}{{syscall.SIGTERM, "SIGTERM", 143, true}, {syscall.SIGINT, "SIGINT", 130, false}, {syscall.SIGTERM, "SIGTERM", 143, false}} {
		t.Run(fmt.Sprintf("%s json=%v", c.name, c.json), func(t *testing.T) {
			url, arrived := hangingTarget(t)
			var body strings.Builder
			body.WriteString("checks:\n")
			fmt.Fprintf(&body, "  - {name: a-fast, kind: http, retries: 0, request: {url: %q}}\n", url+"/ok")
			for i := range 6 {
				fmt.Fprintf(&body, "  - {name: hang%d, kind: http, timeout: 5m, retries: 0, request: {url: %q}}\n", i, url+"/hang")
			}
			args := []string{"run", "-c", writeConfig(t, body.String()), "--concurrency", "2"}
			if c.json {
				args = append(args, "--json")
			}
			stdout := &vigiltest.Buffer{}
			cmd, stderr, done := startRun(t, nil, stdout, args...)
			// Two checks hang: a-fast passed first, both slots are held, four wait.
			waitFor(t, arrived, 2, "two checks reaching the target")
			_ = cmd.Process.Signal(c.sig)
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatalf("vigil run did not stop within 60s of %s (its checks' timeout is 5m):\n%s", c.name, stderr)
			}
			code := cmd.ProcessState.ExitCode()
			if code != c.code {
				t.Errorf("exit %d; want %d", code, c.code)
			}
			for _, want := range []string{"interrupted (" + c.name + "): stopping the checks under way", "a second signal ends vigil at once",
				"4 of 7 not run"} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr does not say %q:\n%s", want, stderr)
				}
			}
			if !c.json {
				for _, want := range []string{"PASS         a-fast", "7 checks: 1 passed, 0 failed, 2 errors, 0 inconclusive, 4 not run (interrupted)"} {
					if !strings.Contains(stdout.String(), want) {
						t.Errorf("stdout does not say %q:\n%s", want, stdout)
					}
				}
				return
			}
			var doc struct {
				Summary struct {
					Total, Passed, Errors int
					NotRun                int `json:"not_run"`
				}
				Interrupted string
				Results     []struct {
					Check, Outcome string
					NotRun         bool `json:"not_run"`
				}
			}
			if err := json.Unmarshal([]byte(stdout.String()), &doc); err != nil {
				t.Fatalf("stdout is not one JSON document (%v):\n%s", err, stdout)
			}
			if doc.Interrupted != c.name || doc.Summary.Total != 7 || doc.Summary.Passed != 1 || doc.Summary.Errors != 2 || doc.Summary.NotRun != 4 ||
				len(doc.Results) != 7 || doc.Results[0].Outcome != "pass" {
				t.Errorf("interrupted %q (want %q), summary %+v, results %+v", doc.Interrupted, c.name, doc.Summary, doc.Results)
			}
		})
	}
}

// A run that completes says nothing of an interruption: no "interrupted" key in its JSON.
func TestRunNotInterruptedHasNoInterruptedField(t *testing.T) {
	srv := target(t)
	code, out, errOut := run("run", "-c", writeConfig(t, config(srv.URL)), "--check", "up", "--json")
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil || doc["interrupted"] != nil || doc["summary"] == nil {
		t.Errorf("exit %d, %v, stdout %s stderr %s", code, err, out, errOut)
	}
}

// After the first signal vigil run still prints its report; when that hangs (a log reader
// that stopped reading the pipe) a second signal ends it at once, killed by the signal.
// The first signal's handler stayed registered until vigil run returned, so the second was
// caught and dropped, and vigil hung until killed.
func TestRunSecondSignalEndsItAtOnce(t *testing.T) {
	url, arrived := hangingTarget(t)
	var body strings.Builder
	body.WriteString("checks:\n")
	fmt.Fprintf(&body, "  - {name: hang, kind: http, timeout: 5m, retries: 0, request: {url: %q}}\n", url+"/hang")
	for i := range 1500 { // their JSON, not run, is far more than a pipe holds (64 KiB)
		fmt.Fprintf(&body, "  - {name: waiting-%04d, kind: http, retries: 0, request: {url: %q}}\n", i, url+"/ok")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close() // nobody reads it until then
	cmd, stderr, done := startRun(t, nil, w, "run", "-c", writeConfig(t, body.String()), "--concurrency", "1", "--json")
	w.Close()
	waitFor(t, arrived, 1, "the first check reaching the target")
	_ = cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "a second signal ends vigil at once") {
		if time.Now().After(deadline) {
			t.Fatalf("vigil run did not say within 30s that it is stopping:\n%s", stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-done:
		t.Fatalf("vigil run ended with its report unread: exit %d", cmd.ProcessState.ExitCode())
	case <-time.After(200 * time.Millisecond): // writing the report, blocked
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("vigil run did not end within 30s of a second SIGTERM:\n%s", stderr)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("vigil run ended %v; want killed by the second SIGTERM", cmd.ProcessState)
	}
}
