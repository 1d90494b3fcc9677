package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// recorder is a loopback agent that answers 404 to everything and counts what reached it.
func recorder(t *testing.T) (url string, hits *atomic.Int32) {
	t.Helper()
	hits = &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, hits
}

// A token with a control character inside (a secret pasted with its line break, a file
// with CRLF) cannot be sent in a header: gate, preflight and silence said "cannot reach
// the agent at ...", an outage to chase that is not one. Now it is a usage error that
// names the token, and prints no byte of it.
func TestAPICommandsRefuseATokenNoHeaderCarries(t *testing.T) {
	agent, hits := recorder(t)
	const token = "s3cret\r\nX-Injected: 1"
	for _, args := range [][]string{
		{"gate", "--service", "web", "--version", "v1", "--register-retry", "0"},
		{"preflight", "--service", "web", "--version", "v1", "--retry", "0"},
		{"cancel", "--service", "web", "--version", "v1", "--retry", "0"},
		{"silence", "list"},
	} {
		for _, viaEnv := range []bool{false, true} {
			t.Setenv("VIGIL_API_TOKEN", "")
			a := append([]string{}, args...)
			if viaEnv {
				t.Setenv("VIGIL_API_TOKEN", token)
			} else {
				a = append(a, "--token", token)
			}
			a = append(a, "--agent", agent)
			code, out, errOut := run(a...)
			if code != 2 || !strings.Contains(errOut, "the API token (--token, else $VIGIL_API_TOKEN) holds a control character") ||
				strings.Contains(out+errOut, "s3cret") || strings.Contains(errOut, "cannot reach") {
				t.Errorf("%s (token in the environment: %v): exit %d; want 2, the token named and not shown:\n%s%s", args[0], viaEnv, code, out, errOut)
			}
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests reached the agent", n)
	}
}

// A proxy's basic auth in --agent (https://user:password@host) was printed as it is in
// every message that names the agent ("cannot reach the agent at http://user:pa55@..."),
// into the CI log. Go's own error already hid it; now vigil's words hide it too.
func TestAgentURLPasswordIsNotPrinted(t *testing.T) {
	agent := "http://ci:pa55word@" + freeAddr(t) // nothing listens
	for _, args := range [][]string{
		{"gate", "--service", "web", "--version", "v1", "--register-retry", "0"},
		{"preflight", "--service", "web", "--version", "v1", "--retry", "0"},
		{"cancel", "--service", "web", "--version", "v1", "--retry", "0"},
		{"silence", "list"},
	} {
		code, out, errOut := run(append(args, "--agent", agent, "--token", "t")...)
		if code != 2 || strings.Contains(out+errOut, "pa55word") || !strings.Contains(errOut, "cannot reach the agent at http://ci:") {
			t.Errorf("%s: exit %d; want 2 and the agent's URL without its password:\n%s%s", args[0], code, out, errOut)
		}
	}
}

// vigil adds the API's paths to --agent: with a query or a fragment in it (a URL copied
// from a browser), every request went to the wrong path (…/?x=1/api/v1/deploys is path
// "/"), and the agent's 404 read as a refusal. An empty host or port (an unset variable)
// sent the deploy to this machine's port, or to port 80. Now these are usage errors.
func TestAgentURLWithAQueryOrFragmentIsRefused(t *testing.T) {
	agent, hits := recorder(t)
	_, port, _ := strings.Cut(strings.TrimPrefix(agent, "http://"), ":")
	for _, c := range []struct{ url, want string }{
		{agent + "/?tab=deploys", "leave out the query and fragment"},
		{agent + "/#deploys", "leave out the query and fragment"},
		{agent + "/vigil?", "leave out the query and fragment"},
		// What an unset $HOST or $PORT leaves: Go dialled this machine, or port 80.
		{"http://:" + port, "the host or the port is empty"},
		{"http://127.0.0.1:", "the host or the port is empty"},
		{"http://127.0.0.1:/vigil", "the host or the port is empty"},
	} {
		for _, args := range [][]string{
			{"gate", "--service", "web", "--version", "v1", "--register-retry", "0"},
			{"preflight", "--service", "web", "--version", "v1", "--retry", "0"},
			{"cancel", "--service", "web", "--version", "v1", "--retry", "0"},
			{"silence", "list"},
		} {
			code, out, errOut := run(append(args, "--agent", c.url, "--token", "t")...)
			if code != 2 || !strings.Contains(errOut, c.want) {
				t.Errorf("%s --agent %s: exit %d; want 2 and %q:\n%s%s", args[0], c.url, code, c.want, out, errOut)
			}
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests reached the agent", n)
	}
}

// --link NAME=URL took any text after "http://": "CI=https://" (an unset $CI_JOB_URL's
// host) and a URL with an escape sequence in it were sent to the agent, for Slack and
// the status page to show. Now a link is a URL with a host, or a usage error.
func TestGateRefusesALinkThatIsNoURL(t *testing.T) {
	agent, hits := recorder(t)
	for _, link := range []string{"CI=https://", "CI=https:///job/1", "diff=https://git.example/\x1b[2J", "CI=http//ci.example/1"} {
		code, out, errOut := run("gate", "--agent", agent, "--token", "t", "--service", "web", "--version", "v1", "--register-retry", "0", "--link", link)
		if code != 2 || !strings.Contains(errOut, "write NAME=URL with an http(s) URL") {
			t.Errorf("--link %q: exit %d; want 2 and the link refused:\n%s%s", link, code, out, errOut)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests reached the agent", n)
	}
}

// --artifacts that cannot be written (a file's path, here) was found out only when a
// check brought evidence: the checks ran, and a failure's screenshot was lost, a reason
// among the check's. As --junit, it is now a usage error before any check runs.
func TestRunArtifactsFolderCheckedFirst(t *testing.T) {
	agent, hits := recorder(t) // the target
	cfg := writeConfig(t, "checks:\n  - {name: a, kind: http, retries: 0, request: {url: \""+agent+"/\"}}\n")
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, filepath.Join(file, "below")} {
		code, out, errOut := run("run", "-c", cfg, "--artifacts", dir)
		if code != 2 || !strings.Contains(errOut, "--artifacts: ") {
			t.Errorf("--artifacts %s: exit %d; want 2 before any check ran:\n%s%s", dir, code, out, errOut)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d checks ran", n)
	}
	dir := filepath.Join(t.TempDir(), "new", "folder")
	if code, out, errOut := run("run", "-c", cfg, "--artifacts", dir); code != 1 {
		t.Errorf("--artifacts in a new folder: exit %d; want 1 (the target answers 404):\n%s%s", code, out, errOut)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("--artifacts %s: %v, %d entries; want it made, and empty", dir, err, len(entries))
	}
}

// --service in a file with no services: section said "no such service in FILE; " and
// stopped; with services, the names it offered came in a random order.
func TestRunServiceNotInTheFile(t *testing.T) {
	srv := target(t)
	none := writeConfig(t, "checks:\n  - {name: up, kind: http, request: {url: \""+srv.URL+"/ok\"}}\n")
	if code, _, errOut := run("run", "-c", none, "--service", "web"); code != 2 || !strings.Contains(errOut, "defines no services: select checks with --check") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	some := writeConfig(t, config(srv.URL))
	for range 5 {
		if code, _, errOut := run("run", "-c", some, "--service", "zzz"); code != 2 || !strings.Contains(errOut, "valid: all, good") {
			t.Errorf("exit %d: %s; want the services named in order", code, errOut)
		}
	}
}

// --wait used up before gate read the deploy once (a tiny --wait here; in a pipeline, an
// agent that took the registration only at the end of a --register-retry as long as
// --wait): gate printed "the agent is still verifying: " with no URL, and --json printed
// {"error": "", "exit_code": 3}, not the deploy. Now it reads the deploy once, as after
// a signal; an agent that does not answer that read leaves the error named.
func TestGateWaitUsedUpBeforeAnyRead(t *testing.T) {
	answer := true
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprint(w, `{"id":"d1"}`)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !answer {
			http.Error(w, `{"error":"busy"}`, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"id":"d1","service":"web","version":"v1","status":"verifying","url":"http://127.0.0.1:1/deploys/d1"}`)
	}))
	t.Cleanup(srv.Close)
	gate := []string{"gate", "--agent", srv.URL, "--token", "t", "--service", "web", "--version", "v1", "--wait", "1ns"}
	code, out, errOut := run(append(gate, "--json")...)
	var d struct{ Status, URL string }
	if err := json.Unmarshal([]byte(out), &d); code != 3 || err != nil || d.Status != "verifying" || d.URL == "" {
		t.Errorf("--json: exit %d (want 3), stdout %q (%v); want the deploy\n%s", code, out, err, errOut)
	}
	code, out, errOut = run(gate...)
	if code != 3 || !strings.Contains(out, "the agent is still verifying: http://127.0.0.1:1/deploys/d1") {
		t.Errorf("exit %d (want 3); want the deploy's page named:\n%s%s", code, out, errOut)
	}
	mu.Lock()
	answer = false
	mu.Unlock()
	code, out, errOut = run(append(gate, "--json")...)
	var e jsonError
	if err := json.Unmarshal([]byte(out), &e); code != 3 || err != nil || e.ExitCode != 3 ||
		!strings.Contains(e.Error, "no verdict within 1ns; the agent is still verifying: "+srv.URL+"/api/v1/deploys/d1") {
		t.Errorf("--json, the read refused: exit %d (want 3), stdout %q (%v)\n%s", code, out, err, errOut)
	}
}

// stdout that cannot be written (a full disk under a redirect; /dev/full here). run --json
// returned the write error bare: exit 2 for a failed check too (a pipeline error, not a
// failed deploy), with "Run 'vigil --help' for usage." as for a mistyped flag; validate
// --json said the same. Now run exits as its checks say (2 only for a pass nobody can
// read, as --junit), and both name what failed.
func TestJSONToAStdoutThatCannotBeWritten(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	srv := target(t)
	cfg := writeConfig(t, config(srv.URL))
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "-c", cfg, "--check", "up", "--json"}, 2, "vigil run: --json: writing the results: "},
		{[]string{"run", "-c", cfg, "--check", "down", "--json"}, 1, "vigil run: --json: writing the results: "},
		{[]string{"validate", "-c", cfg, "--json"}, 2, "vigil validate: --json: writing the answer: "},
	} {
		cmd := exec.Command(vigilBinary(t), c.args...)
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = full, &stderr
		_ = cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != c.code || !strings.Contains(stderr.String(), c.want) || strings.Contains(stderr.String(), "--help") {
			t.Errorf("%v: exit %d (want %d), stderr %q; want %q", c.args, code, c.code, stderr.String(), c.want)
		}
	}
}
