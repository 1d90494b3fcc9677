// Package deploy holds no Go code: these tests check the files in deploy/ the way their
// users' tools read them. Every manifest is parsed, every vigil config inside one passes
// `vigil validate` with exactly the environment the manifest gives it, and the pipeline and
// progressive-delivery integrations are run against a real agent and the sample shop:
// the GitHub Action's and GitLab template's scripts as their runners run them, the Argo
// Rollouts template as its web provider calls vigil, Flagger's webhook as Flagger calls it.
package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{binDir, releaseDir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}

// vigil builds the real binary once per test run.
func vigil(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "vigil-deploy-test-")
		if binErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "vigil"), "../cmd/vigil").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, "vigil")
}

// yamlDocs parses every document of a YAML stream; an empty document is skipped.
func yamlDocs(t *testing.T, name string, data []byte) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: document %d does not parse: %v", name, len(docs)+1, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

func yamlFile(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return yamlDocs(t, path, data)
}

// k8sObjects checks that every document is a Kubernetes object and indexes them by
// "Kind/name".
func k8sObjects(t *testing.T, name string, docs []map[string]any) map[string]map[string]any {
	t.Helper()
	objs := map[string]map[string]any{}
	for i, d := range docs {
		kind, _ := d["kind"].(string)
		api, _ := d["apiVersion"].(string)
		n, _ := get(d, "metadata", "name").(string)
		if kind == "" || api == "" || n == "" {
			t.Fatalf("%s: document %d is not a Kubernetes object (apiVersion %q, kind %q, metadata.name %q)", name, i+1, api, kind, n)
		}
		key := kind + "/" + n
		if objs[key] != nil {
			t.Errorf("%s: %s twice", name, key)
		}
		objs[key] = d
	}
	return objs
}

// get walks maps and lists ("containers", 0, "name"); nil when a step is missing.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func list(v any) []any { l, _ := v.([]any); return l }

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// container returns a pod template's container by name.
func container(t *testing.T, workload map[string]any, name string) map[string]any {
	t.Helper()
	for _, c := range list(get(workload, "spec", "template", "spec", "containers")) {
		if m, _ := c.(map[string]any); str(m["name"]) == name {
			return m
		}
	}
	t.Fatalf("%s has no container %q", get(workload, "metadata", "name"), name)
	return nil
}

// validate runs `vigil validate` on config with exactly env (and PATH): a config that reads
// a variable the manifest does not provide fails here, as it would in the cluster.
func validate(t *testing.T, what, config string, env map[string]string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(vigil(t), "validate", "-c", path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s: vigil validate with the environment %v: %v\n%s", what, keys(env), err, out)
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// containerEnv is the environment a container spec gives, with a stand-in value for what
// comes from Secrets and the downward API.
func containerEnv(t *testing.T, c map[string]any) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range list(c["env"]) {
		m, _ := e.(map[string]any)
		name := str(m["name"])
		switch {
		case m["value"] != nil:
			env[name] = str(m["value"])
		case get(m, "valueFrom", "secretKeyRef", "name") != nil:
			env[name] = "from-secret-" + str(get(m, "valueFrom", "secretKeyRef", "key"))
		case get(m, "valueFrom", "fieldRef", "fieldPath") != nil:
			env[name] = "from-field"
		default:
			t.Errorf("env %s has neither a value nor a valueFrom this test knows", name)
		}
	}
	return env
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

// proc is a vigil process (the sample shop or an agent) that lives as long as the test.
type proc struct {
	url string
	out *bytes.Buffer
	mu  *sync.Mutex
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// start runs vigil with args and waits until url+ready answers 200.
func start(t *testing.T, ready string, env []string, args func(addr string) []string) *proc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p, err := tryStart(t, freeAddr(t), ready, env, args)
		if err == nil {
			return p
		}
		// The free port can be taken between the probe and vigil's bind.
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("a port was taken before vigil bound it; trying again on a new one (%d of 3)", attempt+1)
	}
}

func tryStart(t *testing.T, addr, ready string, env []string, argsFor func(string) []string) (*proc, error) {
	t.Helper()
	args := argsFor(addr)
	p := &proc{url: "http://" + addr, out: &bytes.Buffer{}, mu: &sync.Mutex{}}
	cmd := exec.Command(vigil(t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lockedWriter{p.mu, p.out}, lockedWriter{p.mu, p.out}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			p.mu.Lock()
			t.Logf("vigil %s:\n%s", strings.Join(args, " "), p.out.String())
			p.mu.Unlock()
		}
	})
	probe := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := probe.Get(p.url + ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p, nil
			}
		}
		select {
		case <-done:
			p.mu.Lock()
			defer p.mu.Unlock()
			return nil, fmt.Errorf("vigil %s exited:\n%s", strings.Join(args, " "), p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("vigil %s: %s did not answer within 30s", strings.Join(args, " "), ready)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shop is the sample app, `vigil demo app`, on a free port.
type shop struct{ *proc }

func startShop(t *testing.T) shop {
	t.Helper()
	return shop{start(t, "/healthz", nil, func(addr string) []string { return []string{"demo", "app", "--listen", addr} })}
}

// deploy switches the shop's version: v1 renders, v2's bundle dies at startup.
func (s shop) deploy(t *testing.T, version string) {
	t.Helper()
	resp, err := http.Post(s.url+"/admin/deploy", "application/json", strings.NewReader(`{"version":"`+version+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("deploying %s: %d", version, resp.StatusCode)
	}
}

const agentToken = "deploy-test-token"

// agentConfig verifies a service (named service) of the shop without a browser: the
// bundle check reads the script that v2 breaks.
func agentConfig(service, verify string) string {
	return fmt.Sprintf(`
agent: {api_token: "${VIGIL_API_TOKEN}"}
checks:
  - name: health
    kind: http
    every: 1h
    request: {url: "${SHOP}/healthz"}
  - name: bundle
    kind: http
    every: 1h
    request: {url: "${SHOP}/static/app.js"}
    assert: ["status == 200", "body contains 'registry[\"formatPrice\"]'"]
services:
  %s:
    checks: [health, bundle]
    verify: {%s}
`, service, verify)
}

// startAgent runs `vigil agent` on config, with its store beside it.
func startAgent(t *testing.T, config string, s shop) *proc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return start(t, "/readyz", []string{"VIGIL_API_TOKEN=" + agentToken, "SHOP=" + s.url},
		func(addr string) []string { return []string{"agent", "-c", path, "--listen", addr} })
}
