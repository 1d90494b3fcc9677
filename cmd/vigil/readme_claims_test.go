package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The README: "The config file is -c FILE, else $VIGIL_CONFIG, else ./vigil.yaml." Three
// files whose one check each has its own name show which one a command read.
func TestConfigFileIsFlagThenEnvThenWorkingDir(t *testing.T) {
	dir := t.TempDir()
	write := func(path, check string) string {
		if err := os.WriteFile(path, []byte("checks: [{name: "+check+", kind: http, request: {url: \"http://127.0.0.1:1/\"}}]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write(filepath.Join(dir, "vigil.yaml"), "from-cwd")
	env := write(filepath.Join(t.TempDir(), "env.yaml"), "from-env")
	flag := write(filepath.Join(t.TempDir(), "flag.yaml"), "from-flag")
	for _, c := range []struct {
		env  string
		args []string
		want string // the check in the file read
		file string // the file validate names
	}{
		{"", nil, "from-cwd", "vigil.yaml"},
		{env, nil, "from-env", env},
		{env, []string{"-c", flag}, "from-flag", flag},
		{"", []string{"-c", flag}, "from-flag", flag},
	} {
		vigil := func(args ...string) []byte {
			cmd := exec.Command(vigilBinary(t), args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "VIGIL_CONFIG="+c.env)
			out, _ := cmd.Output()
			return out
		}
		if out := vigil(append(append([]string{"__complete", "run"}, c.args...), "--check", "")...); !strings.HasPrefix(string(out), c.want+"\n") {
			t.Errorf("VIGIL_CONFIG=%q %v: completion offers %q; want the check of %s", c.env, c.args, out, c.want)
		}
		var doc struct{ File string }
		if err := json.Unmarshal(vigil(append([]string{"validate", "--json"}, c.args...)...), &doc); err != nil || doc.File != c.file {
			t.Errorf("VIGIL_CONFIG=%q %v: validate read %q (%v); want %s", c.env, c.args, doc.File, err, c.file)
		}
	}
}

// The README: validate --json answers {valid, file, checks, services, notifiers} or
// {valid, file, errors: [{file, line, path, message, fix}]}: exactly those keys.
func TestValidateJSONKeys(t *testing.T) {
	keys := func(m map[string]json.RawMessage) []string {
		var k []string
		for n := range m {
			k = append(k, n)
		}
		slices.Sort(k)
		return k
	}
	good := writeConfig(t, "checks: [{name: x, kind: http, request: {url: \"http://127.0.0.1:1/\"}}]\n")
	code, out, _ := run("validate", "--json", "-c", good)
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil || fmt.Sprint(keys(doc)) != "[checks file notifiers services valid]" {
		t.Errorf("valid: exit %d, keys %v (%v)", code, keys(doc), err)
	}
	bad := writeConfig(t, "checks:\n  - name: x\n    kind: htp\n")
	code, out, _ = run("validate", "--json", "-c", bad)
	var res struct{ Errors []map[string]json.RawMessage }
	doc = nil
	_ = json.Unmarshal([]byte(out), &doc)
	if err := json.Unmarshal([]byte(out), &res); code != 2 || err != nil || fmt.Sprint(keys(doc)) != "[errors file valid]" ||
		len(res.Errors) != 1 || fmt.Sprint(keys(res.Errors[0])) != "[file fix line message path]" {
		t.Errorf("invalid: exit %d, keys %v, errors %v (%v)", code, keys(doc), res.Errors, err)
	}
}

// The README: after the first SIGINT or SIGTERM gate reads the deploy once more; "a
// second signal ends it at once". Here the agent holds every read: the second SIGTERM,
// sent while gate waits on that last read, ends gate by the signal, without waiting
// for the read's 3 s.
func TestGateSecondSignalEndsItAtOnce(t *testing.T) {
	reread := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprint(w, `{"id":"d1"}`)
			return
		}
		if r.URL.Query().Get("wait") == "" {
			reread <- struct{}{} // the read after the first signal
		}
		<-r.Context().Done()
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	// with --json, what gate says goes to stderr
	cmd, stderr, done := startRun(t, nil, nil, "gate", "--agent", srv.URL, "--token", "t", "--service", "web", "--version", "v1", "--wait", "5m", "--json")
	waitStderr(t, stderr, "registered", "gate registering the deploy")
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-reread:
	case <-time.After(30 * time.Second):
		t.Fatalf("gate did not read the deploy again within 30s of SIGTERM:\n%s", stderr.String())
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("gate did not end within 30s of a second SIGTERM:\n%s", stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("gate ended %v; want killed by the second SIGTERM\n%s", cmd.ProcessState, stderr.String())
	}
}
