package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
)

// `vigil demo app` is the app beside vigil in the Compose and Kubernetes examples: it must
// serve the shop on the address given, switch versions, accept only signed rollbacks and
// stop cleanly on SIGTERM.
func TestDemoApp(t *testing.T) {
	bin := vigilBinary(t)
	if code, _, stderr := runBin(t, bin, "demo", "app", "--version", "v3"); code != exitUsage || !strings.Contains(stderr, `not "v3"`) {
		t.Errorf("an unknown version: exit %d, %q; want 2 and the reason", code, stderr)
	}

	addr := freeAddr(t)
	cmd := exec.Command(bin, "demo", "app", "--listen", addr)
	cmd.Env = append(os.Environ(), envDemoRollbackSecret+"=app-secret")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "v1 is listening on http://"+addr) {
		t.Fatalf("first line %q (%v)", line, err)
	}
	base := "http://" + addr
	call := func(method, path, body string, header ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if _, js := call("GET", "/static/app.js", ""); !strings.Contains(js, `registry["formatPrice"]`) {
		t.Errorf("v1 should serve the good bundle:\n%s", js)
	}
	if code, _ := call("POST", "/admin/deploy", `{"version":"v2"}`); code != 200 {
		t.Fatalf("deploy v2: %d", code)
	}
	if _, js := call("GET", "/static/app.js", ""); !strings.Contains(js, `r["formatPrice"]`) {
		t.Errorf("v2 should serve the broken bundle:\n%s", js)
	}
	body := `{"event":"deploy_failed","deploy":{"version":"v2"}}`
	if code, _ := call("POST", "/admin/rollback", body); code != http.StatusUnauthorized {
		t.Errorf("an unsigned rollback: %d, want 401", code)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sig := alerting.Sign([]byte("app-secret"), ts, []byte(body))
	code, out := call("POST", "/admin/rollback", body, alerting.HeaderTimestamp, ts, alerting.HeaderSignature, sig,
		alerting.HeaderIdempotencyKey, "d1:deploy_failed")
	if code != 200 || !strings.Contains(out, `"rolled_back_to":"v1"`) {
		t.Errorf("a signed rollback: %d %s", code, out)
	}
	if _, v := call("GET", "/version", ""); !strings.Contains(v, `"v1"`) {
		t.Errorf("after the rollback the app serves %s", v)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the app did not stop within 10s of SIGTERM")
	}
}

func runBin(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	c := exec.Command(bin, args...)
	c.Stdout, c.Stderr = &stdout, &stderr
	_ = c.Run()
	return c.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// `vigil demo --keep` ends on Ctrl-C as it ends by itself: exit 0, the shop, the agent
// and Chromium stopped, and their folders gone (the demo's config holds a rollback
// secret). Ctrl-C never reached it, and everything stayed in the temp folder.
func TestDemoCleansUpOnCtrlC(t *testing.T) {
	if _, err := exec.LookPath("chromium"); err != nil {
		t.Skip("no chromium")
	}
	tmp := t.TempDir()
	cmd := exec.Command(vigilBinary(t), "demo", "--keep")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	sc := bufio.NewScanner(out)
	kept := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "press Ctrl-C to stop") {
			kept = true
			break
		}
	}
	if !kept {
		t.Fatal("the demo did not reach its kept state")
	}
	if entries, _ := os.ReadDir(tmp); len(entries) == 0 {
		t.Fatal("the demo wrote nothing under TMPDIR: the test would prove nothing")
	}
	_ = cmd.Process.Signal(os.Interrupt)
	go func() { _, _ = io.Copy(io.Discard, out) }()
	if err := cmd.Wait(); err != nil {
		t.Errorf("vigil demo --keep after Ctrl-C: %v; want exit 0", err)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("left behind in TMPDIR after Ctrl-C: %v", names)
	}
}
