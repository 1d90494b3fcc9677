package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fakeReleases serves, for each version, a "vigil" that prints its version and otherwise
// does what script says, with a SHA256SUMS that matches it: the action installs it as it
// installs a release.
func fakeReleases(t *testing.T, scripts map[string]string) *httptest.Server {
	t.Helper()
	dir := t.TempDir()
	for version, script := range scripts {
		bin := "vigil_" + version + "_linux_" + runtime.GOARCH
		data := []byte("#!/bin/sh\n[ \"$1\" = version ] && { echo \"vigil " + version + " (commit fake)\"; exit 0; }\n" + script + "\n")
		sum := sha256.Sum256(data)
		if err := os.MkdirAll(filepath.Join(dir, version), 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(dir, version, bin), data, 0o755)
		_ = os.WriteFile(filepath.Join(dir, version, "SHA256SUMS"), []byte(hex.EncodeToString(sum[:])+"  "+bin+"\n"), 0o644)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv
}

// vigil gate and preflight exit 130 or 143 when the job is cancelled (SIGINT, SIGTERM).
// The action said then that gate "could not register the deploy or reach the agent", and
// preflight that it "could not reach the agent or was refused": a cancelled job read as
// an agent problem. Now it says vigil was interrupted, and what becomes of the deploy.
func TestGitHubActionWhenVigilIsInterrupted(t *testing.T) {
	action := yamlFile(t, "github-action/action.yml")[0]
	deployJSON := `printf '{\n  "id": "d1",\n  "status": "verifying",\n  "url": "http://127.0.0.1:1/deploys/d1"\n}\n'`
	srv := fakeReleases(t, map[string]string{
		"v0.0.0-sigint":         deployJSON + "; exit 130",
		"v0.0.0-sigterm":        deployJSON + "; exit 143",
		"v0.0.0-sigterm-early":  `echo '{"error": "interrupted", "exit_code": 143}'; exit 143`,
		"v0.0.0-unreachable":    `echo '{"error": "cannot reach the agent", "exit_code": 2}'; exit 2`,
		"v0.0.0-preflight-term": `echo "vigil preflight: interrupted (SIGTERM)" >&2; exit 143`,
	})
	for _, c := range []struct {
		release, command string
		code             int
		want, preflight  string
		verdict          string
	}{
		{"v0.0.0-sigint", "gate", 130, "::error::vigil gate was interrupted (exit 130): the job was cancelled before the verdict on web v9; the agent goes on verifying it: http://127.0.0.1:1/deploys/d1", "", "verifying"},
		{"v0.0.0-sigterm", "gate", 143, "::error::vigil gate was interrupted (exit 143)", "", "verifying"},
		{"v0.0.0-sigterm-early", "gate", 143, "the job was cancelled before the verdict on web v9; it may or may not be registered", "", "error"},
		{"v0.0.0-unreachable", "gate", 2, "::error::vigil gate could not register the deploy or reach the agent (exit 2)", "", "error"},
		{"v0.0.0-preflight-term", "preflight", 143, "::error::vigil preflight was interrupted (exit 143): the job was cancelled before the agent answered", "error", ""},
	} {
		t.Run(c.release, func(t *testing.T) {
			r := runAction(t, action, map[string]string{"command": c.command, "agent": "http://127.0.0.1:1", "token": "t", "service": "web",
				"version": "v9", "vigil-version": c.release, "release-url": srv.URL})
			if !r.failed || !strings.Contains(r.log, c.want) || r.outputs["verdict"] != c.verdict || r.outputs["preflight"] != c.preflight {
				t.Errorf("failed=%v verdict=%q preflight=%q; want the step failed, verdict %q, preflight %q and the log saying %q:\n%s",
					r.failed, r.outputs["verdict"], r.outputs["preflight"], c.verdict, c.preflight, c.want, r.log)
			}
			if c.code >= 128 && strings.Contains(r.log, "could not") {
				t.Errorf("an interrupted vigil is reported as an agent problem:\n%s", r.log)
			}
			if !strings.Contains(r.log, fmt.Sprintf("exit %d", c.code)) {
				t.Errorf("the log does not give vigil's exit code %d:\n%s", c.code, r.log)
			}
		})
	}
}
