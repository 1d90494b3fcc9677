package deploy

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// configMapDir lays a config out as the kubelet mounts a ConfigMap: the file is a symlink
// through ..data to a timestamped folder, and an update writes a new folder and swaps the
// ..data link in one rename (the file's own path never changes).
type configMapDir struct {
	dir string
	gen int
}

func (c *configMapDir) write(t *testing.T, config string) {
	t.Helper()
	c.gen++
	ts := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", c.gen, c.gen)
	if err := os.Mkdir(filepath.Join(c.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, ts, "vigil.yaml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if c.gen == 1 {
		if err := os.Symlink(filepath.Join("..data", "vigil.yaml"), filepath.Join(c.dir, "vigil.yaml")); err != nil {
			t.Fatal(err)
		}
	}
}

// The Helm chart's and the sidecar's promise: a changed ConfigMap (a `helm upgrade` with new
// config, a `kubectl apply`) reaches the running agent without a restart, and a config that
// does not validate leaves the old one running.
func TestConfigMapUpdateReachesTheAgent(t *testing.T) {
	s := startShop(t)
	cm := &configMapDir{dir: t.TempDir()}
	base := agentConfig("shop", "interval: 200ms, count: 2") + "store: {dsn: " + filepath.Join(t.TempDir(), "vigil.db") + "}\n"
	cm.write(t, base)
	agent := start(t, "/readyz", []string{"VIGIL_API_TOKEN=" + agentToken, "SHOP=" + s.url},
		func(addr string) []string {
			return []string{"agent", "-c", filepath.Join(cm.dir, "vigil.yaml"), "--listen", addr}
		})

	get := func(path string) string {
		req, _ := http.NewRequest("GET", agent.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+agentToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	waitFor := func(what, path, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(get(path), want) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s has no %q after 30s:\n%s", what, path, want, get(path))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if strings.Contains(get("/api/v1/checks"), `"version-page"`) {
		t.Fatal("the check the update adds is there before it")
	}

	cm.write(t, strings.Replace(base, "checks:\n", `checks:
  - name: version-page
    kind: http
    every: 1h
    request: {url: "${SHOP}/version"}
`, 1))
	waitFor("the updated ConfigMap", "/api/v1/checks", `"version-page"`)

	// A config that does not validate: logged, counted, the running one kept.
	cm.write(t, strings.Replace(base, "kind: http", "kind: htp", 1))
	waitFor("the invalid ConfigMap", "/metrics", "vigil_config_last_reload_successful 0")
	if !strings.Contains(get("/api/v1/checks"), `"version-page"`) {
		t.Error("an invalid config replaced the running one")
	}
}
