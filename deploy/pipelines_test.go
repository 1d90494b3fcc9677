package deploy

import (
	"bufio"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
)

const releaseVersion = "v0.0.0-deploytest"

var (
	releaseOnce sync.Once
	releaseDir  string
	releaseOut  string
	releaseErr  error
)

// release runs scripts/release for this machine's platform into a folder laid out like
// GitHub's release downloads (VERSION/FILE), once per test run.
func release(t *testing.T) string {
	t.Helper()
	releaseOnce.Do(func() {
		releaseDir, releaseErr = os.MkdirTemp("", "vigil-release-")
		if releaseErr != nil {
			return
		}
		cmd := exec.Command("../scripts/release", releaseVersion, filepath.Join(releaseDir, releaseVersion))
		cmd.Env = append(os.Environ(), "VIGIL_RELEASE_PLATFORMS=linux/"+runtime.GOARCH)
		out, err := cmd.CombinedOutput()
		releaseOut = string(out)
		if err != nil {
			releaseErr = fmt.Errorf("scripts/release: %v\n%s", err, out)
		}
	})
	if releaseErr != nil {
		t.Fatal(releaseErr)
	}
	return releaseDir
}

func TestRelease(t *testing.T) {
	dir := filepath.Join(release(t), releaseVersion)
	bin := "vigil_" + releaseVersion + "_linux_" + runtime.GOARCH
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, bin))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if want := hex.EncodeToString(sum[:]) + "  " + bin + "\n"; string(sums) != want {
		t.Errorf("SHA256SUMS:\n%s\nwant:\n%s", sums, want)
	}
	// Static: no interpreter and no shared library, so it runs on any Linux of its
	// architecture (a CI runner's, Alpine's).
	f, err := elf.Open(filepath.Join(dir, bin))
	if err != nil {
		t.Fatal(err)
	}
	libs, _ := f.ImportedLibraries()
	if f.Section(".interp") != nil || len(libs) > 0 {
		t.Errorf("%s is not static: interpreter %v, libraries %v", bin, f.Section(".interp") != nil, libs)
	}
	f.Close()
	out, err := exec.Command(filepath.Join(dir, bin), "version").Output()
	commit, _ := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil || !strings.HasPrefix(string(out), "vigil "+releaseVersion+" (commit "+strings.TrimSpace(string(commit))) {
		t.Errorf("vigil version: %q (%v); want %s and commit %s", out, err, releaseVersion, commit)
	}
	if out, err := exec.Command("../scripts/release", "latest").CombinedOutput(); err == nil || !strings.Contains(string(out), "looks like v1.2.3") {
		t.Errorf("a version that is not vX.Y.Z: %v %s", err, out)
	}
}

// releaseServer serves the release folder, and a copy whose binary does not match its
// SHA256SUMS under VERSION-tampered.
func releaseServer(t *testing.T) *httptest.Server {
	t.Helper()
	dir := release(t)
	bad := filepath.Join(t.TempDir(), releaseVersion+"-tampered")
	if err := os.MkdirAll(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := "vigil_" + releaseVersion + "_linux_" + runtime.GOARCH
	data, _ := os.ReadFile(filepath.Join(dir, releaseVersion, bin))
	sums, _ := os.ReadFile(filepath.Join(dir, releaseVersion, "SHA256SUMS"))
	_ = os.WriteFile(filepath.Join(bad, strings.Replace(bin, releaseVersion, releaseVersion+"-tampered", 1)), append(data, 0), 0o755)
	_ = os.WriteFile(filepath.Join(bad, "SHA256SUMS"), []byte(strings.Replace(string(sums), releaseVersion, releaseVersion+"-tampered", 1)), 0o644)
	mux := http.NewServeMux()
	mux.Handle("/"+releaseVersion+"-tampered/", http.StripPrefix("/"+releaseVersion+"-tampered/", http.FileServer(http.Dir(bad))))
	mux.Handle("/", http.FileServer(http.Dir(dir)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// expression is a GitHub Actions ${{ ... }} expression.
var expression = regexp.MustCompile(`\$\{\{\s*([^}]+?)\s*\}\}`)

// condition is a step's `if`, of the one form the action uses.
var condition = regexp.MustCompile(`^inputs\.([a-z-]+) == '([^']*)'$`)

// actionRun is one run of the composite action: its steps' output and the action's outputs.
type actionRun struct {
	failed  bool
	log     string
	outputs map[string]string
}

// runAction runs action.yml as GitHub's runner runs a composite action: each step's `run`
// with `bash --noprofile --norc -eo pipefail`, its env with the inputs substituted,
// GITHUB_OUTPUT and GITHUB_PATH files, and the action's outputs from its steps' outputs.
func runAction(t *testing.T, action map[string]any, inputs map[string]string) actionRun {
	t.Helper()
	return runActionCancelled(t, action, inputs, "", 0)
}

// runActionCancelled runs the action as runAction does, and cancels the job while the step
// with the id cancelIn runs vigil, as GitHub's runner does: sig to the step's shell only.
func runActionCancelled(t *testing.T, action map[string]any, inputs map[string]string, cancelIn string, sig syscall.Signal) actionRun {
	t.Helper()
	in := map[string]string{}
	for name, spec := range get(action, "inputs").(map[string]any) {
		if d, ok := spec.(map[string]any)["default"]; ok {
			in[name] = str(d)
		}
		if get(spec, "required") == true && inputs[name] == "" {
			t.Fatalf("input %s is required", name)
		}
	}
	for k, v := range inputs {
		if _, ok := get(action, "inputs").(map[string]any)[k]; !ok {
			t.Fatalf("the action has no input %q", k)
		}
		in[k] = v
	}
	ctx := map[string]string{"github.sha": "0123456789abcdef0123456789abcdef01234567"}
	eval := func(s string) string {
		return expression.ReplaceAllStringFunc(s, func(m string) string {
			e := expression.FindStringSubmatch(m)[1]
			if name, ok := strings.CutPrefix(e, "inputs."); ok {
				return in[name]
			}
			if v, ok := ctx[e]; ok {
				return v
			}
			if strings.HasPrefix(e, "steps.") {
				return "" // a step that did not run or set no such output
			}
			t.Fatalf("expression %q: this test knows inputs.*, github.sha and steps.*.outputs.*", e)
			return ""
		})
	}
	for k, v := range in {
		in[k] = eval(v)
	}
	if get(action, "runs", "using") != "composite" {
		t.Fatalf("runs.using %v", get(action, "runs", "using"))
	}
	temp := t.TempDir()
	pathFile := filepath.Join(temp, "github_path")
	_ = os.WriteFile(pathFile, nil, 0o644)
	res := actionRun{outputs: map[string]string{}}
	var log strings.Builder
	for i, step := range list(get(action, "runs", "steps")) {
		if cond := str(get(step, "if")); cond != "" {
			m := condition.FindStringSubmatch(cond)
			if m == nil {
				t.Fatalf("step %d: if %q: this test knows inputs.NAME == 'VALUE'", i, cond)
			}
			if in[m[1]] != m[2] {
				continue // skipped: its outputs stay unset, as GitHub leaves them
			}
		}
		if str(get(step, "shell")) != "bash" {
			t.Fatalf("step %d: shell %v", i, get(step, "shell"))
		}
		script := filepath.Join(temp, fmt.Sprintf("step%d.sh", i))
		_ = os.WriteFile(script, []byte(eval(str(get(step, "run")))), 0o755)
		out := filepath.Join(temp, fmt.Sprintf("output%d", i))
		_ = os.WriteFile(out, nil, 0o644)
		extra, _ := os.ReadFile(pathFile)
		path := os.Getenv("PATH")
		for _, p := range strings.Fields(string(extra)) {
			path = p + ":" + path
		}
		cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", script)
		cmd.Env = []string{"PATH=" + path, "HOME=" + temp, "RUNNER_OS=Linux", "RUNNER_TEMP=" + temp,
			"GITHUB_ACTIONS=true", "GITHUB_OUTPUT=" + out, "GITHUB_PATH=" + pathFile}
		if env, ok := get(step, "env").(map[string]any); ok {
			for k, v := range env {
				cmd.Env = append(cmd.Env, k+"="+eval(str(v)))
			}
		}
		var b []byte
		var err error
		if cancelIn != "" && str(get(step, "id")) == cancelIn {
			b, err = cancelStep(t, cmd, sig)
		} else {
			b, err = cmd.CombinedOutput()
		}
		fmt.Fprintf(&log, "--- step %q\n%s", get(step, "name"), b)
		if id := str(get(step, "id")); id != "" {
			f, _ := os.Open(out)
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if k, v, ok := strings.Cut(sc.Text(), "="); ok {
					ctx["steps."+id+".outputs."+k] = v
				}
			}
			f.Close()
		}
		if err != nil {
			res.failed = true
			break
		}
	}
	for name, spec := range get(action, "outputs").(map[string]any) {
		res.outputs[name] = eval(str(get(spec, "value")))
	}
	res.log = log.String()
	return res
}

func TestGitHubAction(t *testing.T) {
	docs := yamlFile(t, "github-action/action.yml")
	action := docs[0]
	if str(get(action, "inputs", "vigil-version", "default")) == "" {
		t.Fatal("the action must pin a vigil version by default")
	}
	uses := 0
	for _, step := range list(get(yamlFile(t, "github-action/example-workflow.yml")[0], "jobs", "deploy", "steps")) {
		if !strings.Contains(str(get(step, "uses")), "/deploy/github-action@") {
			continue
		}
		uses++
		for k := range get(step, "with").(map[string]any) {
			if get(action, "inputs", k) == nil {
				t.Errorf("the example workflow's step %q sets %q, which the action has no input for", get(step, "name"), k)
			}
		}
	}
	if uses != 2 {
		t.Errorf("the example workflow uses the action %d times; want 2 (preflight, gate)", uses)
	}
	srv := releaseServer(t)
	s := startShop(t)
	agent := startAgent(t, agentConfig("shop", "interval: 200ms, count: 2")+`
  slow:
    checks: [health]
    verify: {interval: 1m, count: 2}
`, s)
	inputs := func(service, version string, more ...string) map[string]string {
		in := map[string]string{"agent": agent.url, "token": agentToken, "service": service, "version": version,
			"environment": "prod", "vigil-version": releaseVersion, "release-url": srv.URL}
		for i := 0; i+1 < len(more); i += 2 {
			in[more[i]] = more[i+1]
		}
		return in
	}
	check := func(what string, r actionRun, failed bool, verdict string) {
		t.Helper()
		if r.failed != failed || r.outputs["verdict"] != verdict {
			t.Errorf("%s: failed=%v verdict=%q; want failed=%v verdict=%q\n%s", what, r.failed, r.outputs["verdict"], failed, verdict, r.log)
		}
	}

	r := runAction(t, action, inputs("shop", "v1"))
	check("a good deploy", r, false, "passed")
	if !strings.HasPrefix(r.outputs["deploy_url"], agent.url+"/deploys/") {
		t.Errorf("deploy_url %q", r.outputs["deploy_url"])
	}
	if !strings.Contains(r.log, "vigil "+releaseVersion+" (commit") {
		t.Errorf("the installed vigil did not print its version:\n%s", r.log)
	}
	s.deploy(t, "v2")
	r = runAction(t, action, inputs("shop", "v2"))
	check("a broken deploy", r, true, "failed")
	if !strings.Contains(r.log, "::error::vigil: shop v2 failed verification") {
		t.Errorf("no error annotation:\n%s", r.log)
	}

	// Before the next rollout: v2 failed, so a preflight of it stops the job; v3 may go.
	preflight := func(what string, r actionRun, failed bool, answer string, want ...string) {
		t.Helper()
		if r.failed != failed || r.outputs["preflight"] != answer || r.outputs["verdict"] != "" {
			t.Errorf("%s: failed=%v preflight=%q verdict=%q; want failed=%v preflight=%q and no gate\n%s",
				what, r.failed, r.outputs["preflight"], r.outputs["verdict"], failed, answer, r.log)
		}
		for _, w := range want {
			if !strings.Contains(r.log, w) {
				t.Errorf("%s: the log lacks %q\n%s", what, w, r.log)
			}
		}
	}
	preflight("a version that failed", runAction(t, action, inputs("shop", "v2", "command", "preflight")), true, "blocked",
		"::error::vigil: shop v2 failed verification")
	preflight("a version that failed, allowed", runAction(t, action, inputs("shop", "v2", "command", "preflight", "allow-blocked", "true")),
		false, "blocked", "::warning::vigil: shop v2 failed verification")
	preflight("a new version", runAction(t, action, inputs("shop", "v3", "command", "preflight")), false, "clear",
		"vigil: shop v3: clear to deploy", "::warning::vigil: the last deploy of shop, v2, failed")
	preflight("an unknown service", runAction(t, action, inputs("shpo", "v3", "command", "preflight")), true, "error",
		"::error::vigil preflight could not reach the agent or was refused (exit 2)")
	if r := runAction(t, action, inputs("shop", "v3", "command", "deploy")); !r.failed || !strings.Contains(r.log, "command must be gate or preflight") {
		t.Errorf("an unknown command:\n%s", r.log)
	}

	check("no verdict within wait", runAction(t, action, inputs("slow", "v2", "wait", "1s")), true, "verifying")
	check("allowed inconclusive", runAction(t, action, inputs("slow", "v3", "wait", "1s", "allow-inconclusive", "true")), false, "verifying")
	check("an unknown service", runAction(t, action, inputs("shpo", "v2")), true, "error")
	r = runAction(t, action, inputs("shop", "v2", "vigil-version", releaseVersion+"-tampered"))
	if !r.failed || !strings.Contains(r.log, "does not match SHA256SUMS") || strings.Contains(r.log, "--- step \"vigil gate\"") {
		t.Errorf("a binary that does not match its checksum must stop the action before it runs:\n%s", r.log)
	}
}

// runGitLab runs the template's script as a GitLab runner does with a POSIX shell (set -e),
// with the template's variables under the job's, $VAR references expanded among them.
func runGitLab(t *testing.T, job map[string]any, vars map[string]string) (code int, log string, dotenv map[string]string) {
	t.Helper()
	dir := t.TempDir()
	all := map[string]string{"CI_COMMIT_SHA": "0123456789abcdef", "CI_PROJECT_DIR": dir}
	for k, v := range get(job, "variables").(map[string]any) {
		all[k] = str(v)
	}
	for k, v := range vars {
		all[k] = v
	}
	for k, v := range all {
		all[k] = os.Expand(v, func(n string) string { return all[n] })
	}
	var script strings.Builder
	var lines func(items []any)
	lines = func(items []any) { // GitLab flattens the lists an anchor puts in a script
		for _, line := range items {
			if l, ok := line.([]any); ok {
				lines(l)
				continue
			}
			script.WriteString(str(line) + "\n")
		}
	}
	lines(list(job["script"]))
	cmd := exec.Command("sh", "-e", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	for k, v := range all {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, _ := cmd.CombinedOutput()
	dotenv = map[string]string{}
	report := str(get(job, "artifacts", "reports", "dotenv"))
	if data, err := os.ReadFile(filepath.Join(dir, report)); err == nil {
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				dotenv[k] = v
			}
		}
	}
	return cmd.ProcessState.ExitCode(), string(out), dotenv
}

func TestGitLabTemplate(t *testing.T) {
	job, _ := yamlFile(t, "gitlab/vigil-gate.gitlab-ci.yml")[0][".vigil-gate"].(map[string]any)
	if job == nil {
		t.Fatal("no .vigil-gate job")
	}
	if str(get(job, "artifacts", "when")) != "always" {
		t.Error("the dotenv report must be kept when the gate fails: later jobs read VIGIL_VERDICT")
	}
	for _, example := range yamlFile(t, "gitlab/example.gitlab-ci.yml") {
		if get(example, "verify", "extends") != ".vigil-gate" {
			t.Errorf("the example's verify job does not extend .vigil-gate: %v", get(example, "verify"))
		}
		if get(example, "preflight", "extends") != ".vigil-preflight" {
			t.Errorf("the example's preflight job does not extend .vigil-preflight: %v", get(example, "preflight"))
		}
	}
	srv := releaseServer(t)
	s := startShop(t)
	agent := startAgent(t, agentConfig("shop", "interval: 200ms, count: 2"), s)
	vars := func(version string, more ...string) map[string]string {
		v := map[string]string{"VIGIL_AGENT": agent.url, "VIGIL_API_TOKEN": agentToken, "VIGIL_SERVICE": "shop",
			"VIGIL_VERSION": version, "VIGIL_RELEASE": releaseVersion, "VIGIL_RELEASE_URL": srv.URL}
		for i := 0; i+1 < len(more); i += 2 {
			v[more[i]] = more[i+1]
		}
		return v
	}
	code, log, env := runGitLab(t, job, vars("v1"))
	if code != 0 || env["VIGIL_VERDICT"] != "passed" || !strings.HasPrefix(env["VIGIL_DEPLOY_URL"], agent.url+"/deploys/") {
		t.Errorf("a good deploy: exit %d, %v\n%s", code, env, log)
	}
	s.deploy(t, "v2")
	code, log, env = runGitLab(t, job, vars("v2"))
	if code != 1 || env["VIGIL_VERDICT"] != "failed" {
		t.Errorf("a broken deploy: exit %d, %v; want 1 and failed\n%s", code, env, log)
	}
	if rolledBack, log := runExampleRollback(t, env); !rolledBack {
		t.Errorf("the example's rollback job did not roll back a failed deploy:\n%s", log)
	}
	code, log, _ = runGitLab(t, job, vars("v2", "VIGIL_RELEASE", releaseVersion+"-tampered"))
	if code == 0 || !strings.Contains(log, "does not match SHA256SUMS") {
		t.Errorf("a tampered binary: exit %d\n%s", code, log)
	}

	// Before the next rollout: v2 failed, so .vigil-preflight stops the job; v3 may go.
	pre, _ := yamlFile(t, "gitlab/vigil-gate.gitlab-ci.yml")[0][".vigil-preflight"].(map[string]any)
	if pre == nil || str(get(pre, "variables", "VIGIL_RELEASE")) == "" || str(get(pre, "artifacts", "when")) != "always" {
		t.Fatalf("no .vigil-preflight job pinning a release and keeping its report: %v", pre)
	}
	for _, c := range []struct {
		name, version string
		more          []string
		code          int
		answer, log   string
	}{
		{"a version that failed", "v2", nil, 1, "blocked", "blocked (version_failed): shop v2 failed verification"},
		{"a version that failed, allowed", "v2", []string{"VIGIL_ALLOW_BLOCKED", "true"}, 0, "blocked", "vigil: shop v2 is blocked; allowed"},
		{"a new version", "v3", nil, 0, "clear", "vigil: shop v3: clear to deploy"},
		{"an unknown service", "v3", []string{"VIGIL_SERVICE", "shpo"}, 2, "error", "unknown service"},
	} {
		code, log, env := runGitLab(t, pre, vars(c.version, c.more...))
		if code != c.code || env["VIGIL_PREFLIGHT"] != c.answer || !strings.Contains(log, c.log) {
			t.Errorf("preflight, %s: exit %d, %v; want %d, %s and %q in the log\n%s", c.name, code, env, c.code, c.answer, c.log, log)
		}
	}
}

func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	unit, err := os.ReadFile("systemd/vigil.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=vigil", "ProtectSystem=strict", "NoNewPrivileges=yes",
		"ExecStart=/usr/local/bin/vigil agent --config /etc/vigil/vigil.yaml", "ExecReload=/bin/kill -HUP $MAINPID"} {
		if !strings.Contains(string(unit), "\n"+want+"\n") {
			t.Errorf("the unit lacks %s", want)
		}
	}
	// systemd-analyze verify wants ExecStart's binary to exist: point it at a built one.
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.service")
	_ = os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/vigil", vigil(t))), 0o644)
	if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command(analyze, "security", "--offline=true", "--threshold=40", path).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for vigil.service: ([0-9.]+)`).FindStringSubmatch(string(out))
	if err != nil || m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	t.Logf("systemd-analyze security: exposure %s (0 is best, 10 worst)", m[1])
}
