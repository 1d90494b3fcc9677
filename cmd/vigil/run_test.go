package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

func target(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			fmt.Fprint(w, `{"ok":true}`)
		default:
			http.Error(w, "boom <&> \x01", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	return vigiltest.WriteConfig(t, "", body)
}

func config(url string) string {
	return fmt.Sprintf(`
checks:
  - {name: up, kind: http, request: {url: "%[1]s/ok"}, assert: ["status == 200", "json.ok"]}
  - {name: down, kind: http, request: {url: "%[1]s/err"}, assert: ["status == 200"]}
services:
  good: {checks: [up]}
  all: {checks: [up, down]}
`, url)
}

func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := execute(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestRunExitCodes(t *testing.T) {
	srv := target(t)
	cfg := writeConfig(t, config(srv.URL))
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"all pass", []string{"run", "-c", cfg, "--service", "good"}, 0, "1 checks: 1 passed"},
		{"one fails", []string{"run", "-c", cfg}, 1, "status == 200 is false: status = 500"},
		{"by name", []string{"run", "-c", cfg, "--check", "up"}, 0, "PASS"},
		{"unknown check", []string{"run", "-c", cfg, "--check", "upp"}, 2, `--check upp: no such check in ` + cfg + `; did you mean "up"?`},
		{"unknown service", []string{"run", "-c", cfg, "--service", "goood"}, 2, `did you mean "good"?`},
		{"missing config", []string{"run", "-c", filepath.Join(t.TempDir(), "none.yaml")}, 2, "cannot read config"},
		{"bad flag", []string{"run", "--nope"}, 2, "unknown flag: --nope"},
		{"validate ok", []string{"validate", "-c", cfg}, 0, "valid: 2 checks"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := run(c.args...)
			if code != c.code || !strings.Contains(out+errs, c.want) {
				t.Errorf("exit %d (want %d), output:\n%s%s\nwant it to contain %q", code, c.code, out, errs, c.want)
			}
		})
	}
	bad := writeConfig(t, "checks:\n  - {name: a, kind: http, request: {url: 'http://127.0.0.1/'}, assert: ['stauts == 1']}\n")
	code, _, errs := run("validate", "-c", bad)
	if code != 2 || !strings.Contains(errs, `checks[0].assert[0]: unknown variable "stauts"; did you mean "status"?`) {
		t.Errorf("validate bad: exit %d: %s", code, errs)
	}
}

func TestRunJUnitAndJSON(t *testing.T) {
	srv := target(t)
	cfg := writeConfig(t, config(srv.URL))
	junit := filepath.Join(t.TempDir(), "out", "results.xml")
	code, out, errs := run("run", "-c", cfg, "--junit", junit, "--json")
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var doc struct {
		Summary struct{ Total, Passed, Failed int }
		Results []struct {
			Check, Outcome string
			Reasons        []string
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if doc.Summary.Total != 2 || doc.Summary.Passed != 1 || doc.Summary.Failed != 1 || len(doc.Results) != 2 {
		t.Errorf("summary: %+v", doc.Summary)
	}

	data, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var suites struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Suites   []struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Type    string `xml:"type,attr"`
				} `xml:"failure"`
				Out string `xml:"system-out"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &suites); err != nil {
		t.Fatalf("JUnit does not parse: %v\n%s", err, data)
	}
	if suites.Tests != 2 || suites.Failures != 1 || len(suites.Suites) != 1 || len(suites.Suites[0].Cases) != 2 {
		t.Fatalf("JUnit counts: %+v", suites)
	}
	for _, c := range suites.Suites[0].Cases {
		if c.Name == "down" && (c.Failure == nil || c.Failure.Message != "status == 200 is false: status = 500" || !strings.Contains(c.Out, "< body")) {
			t.Errorf("failing case: %+v", c)
		}
		if c.Name == "up" && c.Failure != nil {
			t.Errorf("passing case has a failure: %+v", c)
		}
	}
}

// TestBinaryExitCodes runs the real binary: the exit code is what a pipeline sees.
func TestBinaryExitCodes(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "vigil")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	srv := target(t)
	cfg := writeConfig(t, config(srv.URL))
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"run", "-c", cfg, "--service", "good"}, 0},
		{[]string{"run", "-c", cfg}, 1},
		{[]string{"run", "-c", cfg, "--check", "nope"}, 2},
		{[]string{"version"}, 0},
	} {
		cmd := exec.Command(bin, c.args...)
		out, _ := cmd.CombinedOutput()
		if got := cmd.ProcessState.ExitCode(); got != c.code {
			t.Errorf("vigil %v: exit %d, want %d\n%s", c.args, got, c.code, out)
		}
	}
}

// vigil run --version judges the version just deployed, as a verification does: the old
// version still answering (a rollout not done, a load balancer draining old pods) is
// inconclusive (exit 3), not a pass; assertions read deploy.*.
func TestRunJudgesTheVersion(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App-Version", "v1")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	cfg := writeConfig(t, fmt.Sprintf(`
checks:
  - {name: home, kind: http, request: {url: %q}, served_version: {header: X-App-Version}}
  - {name: env, kind: http, request: {url: %q}, assert: ["deploy.version == '' || deploy.environment == 'prod'"]}
  - {name: commit, kind: http, request: {url: %q}, assert: ["deploy.commit == '0a1b2c3'"]}
services:
  web: {checks: [home, env]}
`, srv.URL+"/", srv.URL+"/", srv.URL+"/"))
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no version: whatever answers", []string{"--service", "web"}, 0, "2 checks: 2 passed"},
		{"the version serving", []string{"--service", "web", "--version", "v1", "--environment", "prod"}, 0, "2 checks: 2 passed"},
		{"another version serving", []string{"--check", "home", "--version", "v2"}, 3, "answered by version v1, not v2 (the deploy's)"},
		{"assertions read the deploy", []string{"--check", "env", "--version", "v1", "--environment", "staging"}, 1, "deploy.environment = \"staging\""},
		{"and its commit", []string{"--check", "commit", "--version", "v1", "--commit", "0a1b2c3"}, 0, "1 checks: 1 passed"},
		{"and its commit, another", []string{"--check", "commit", "--version", "v1", "--commit", "ffff"}, 1, "deploy.commit = \"ffff\""},
		{"environment without version", []string{"--service", "web", "--environment", "prod"}, 2, "add --version"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := run(append([]string{"run", "-c", cfg}, c.args...)...)
			if code != c.code || !strings.Contains(out+errs, c.want) {
				t.Errorf("exit %d (want %d), output:\n%s%s\nwant it to contain %q", code, c.code, out, errs, c.want)
			}
		})
	}
}

// A --junit path that cannot be written is a usage error before any check runs (it was
// found after every check ran, their results lost, exit 2 for a failed run).
func TestRunJUnitPathCheckedFirst(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1); fmt.Fprint(w, `{"ok":true}`) }))
	t.Cleanup(srv.Close)
	cfg := writeConfig(t, config(srv.URL))
	dir := filepath.Join(t.TempDir(), "report.xml")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := vigilRun(t, nil, "run", "-c", cfg, "--junit", dir)
	if code != 2 || !strings.Contains(errOut, "--junit:") || hits.Load() != 0 {
		t.Errorf("exit %d, %d requests to the target, stderr %q; want 2 before any check ran", code, hits.Load(), errOut)
	}
}

// vigil run uses the checks alone: a pipeline step needs the checks' secrets, not the
// agent's API token or Slack's (an unset one was a load error, exit 2), nor a token for a
// listen address only the agent opens. vigil validate still holds the whole file to it.
func TestRunNeedsNoAgentOrNotifierSecrets(t *testing.T) {
	srv := target(t)
	cfg := writeConfig(t, fmt.Sprintf(`
agent: {listen: "0.0.0.0:9595", api_token: "${VIGIL_TEST_UNSET_TOKEN}"}
checks:
  - {name: up, kind: http, request: {url: "%s/ok"}, notify: [ops]}
notifiers:
  ops: {type: slack, token: "${VIGIL_TEST_UNSET_SLACK}", channel: "#deploys"}
`, srv.URL))
	if code, out, errOut := vigilRun(t, nil, "run", "-c", cfg); code != 0 {
		t.Errorf("vigil run with the agent's and Slack's secrets unset: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := vigilRun(t, nil, "validate", "-c", cfg); code != 2 || !strings.Contains(errOut, "VIGIL_TEST_UNSET_SLACK") {
		t.Errorf("vigil validate of the same file: exit %d, %s; want 2 naming the unset secret", code, errOut)
	}
}

// An interrupted run says which checks it never started: they are "not run" in the summary
// and skipped in the JUnit file, not errors (168 of 200 checks that never started were
// reported as errors, "cancelled").
func TestInterruptedRunSaysWhatDidNotRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	var body strings.Builder
	body.WriteString("checks:\n")
	for i := range 20 {
		fmt.Fprintf(&body, "  - {name: c%02d, kind: http, timeout: 5s, retries: 0, request: {url: %q}}\n", i, srv.URL+"/")
	}
	cfg := writeConfig(t, body.String())
	junit := filepath.Join(t.TempDir(), "junit.xml")
	cmd := exec.Command(vigilBinary(t), "run", "-c", cfg, "--concurrency", "2", "--junit", junit)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 || !strings.Contains(out.String(), "not run (interrupted)") {
		t.Errorf("exit %d; want 130 and the checks not run counted:\n%s", code, out.String())
	}
	data, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Skipped int `xml:"skipped,attr"`
			Errors  int `xml:"errors,attr"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil || len(doc.Suites) != 1 || doc.Suites[0].Skipped < 15 || doc.Suites[0].Errors > 5 {
		t.Errorf("JUnit: %v %+v; want most of the 20 skipped, the 2 in flight errors", err, doc.Suites)
	}
}
