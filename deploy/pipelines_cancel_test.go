package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cancelWhenRegistered cancels service's deploy of version, through
// POST /api/v1/deploys/{id}/cancel, as soon as the agent has it verifying: an aborted
// rollout's cancel while a pipeline's gate waits. Call the returned function once the
// gate is over: it says whether the cancel was made.
func cancelWhenRegistered(t *testing.T, agent, service, version, reason string) func() error {
	t.Helper()
	ctx, stop := context.WithTimeout(context.Background(), 2*time.Minute)
	result := make(chan error, 1)
	do := func(method, path, body string, v any) (int, error) {
		req, err := http.NewRequestWithContext(ctx, method, agent+path, strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+agentToken)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		return resp.StatusCode, json.NewDecoder(resp.Body).Decode(v)
	}
	go func() {
		for {
			var list struct {
				Deploys []struct{ ID, Version, Status string } `json:"deploys"`
			}
			if status, err := do("GET", "/api/v1/deploys?service="+service, "", &list); err == nil && status == 200 {
				for _, d := range list.Deploys {
					if d.Version == version && d.Status == "verifying" {
						var out map[string]any
						status, err := do("POST", "/api/v1/deploys/"+d.ID+"/cancel", fmt.Sprintf(`{"reason":%q}`, reason), &out)
						if err == nil && status != 200 {
							err = fmt.Errorf("POST /api/v1/deploys/%s/cancel = %d %v", d.ID, status, out)
						}
						result <- err
						return
					}
				}
			}
			select {
			case <-ctx.Done():
				result <- fmt.Errorf("no deploy of %s %s was verifying to cancel: %w", service, version, ctx.Err())
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() error {
		defer stop()
		select {
		case err := <-result:
			return err
		case <-time.After(5 * time.Second):
			stop()
			return <-result
		}
	}
}

// A deploy whose rollout was aborted (the cancel API, Argo's abort) while the pipeline's
// gate waits exits 3, as an inconclusive one does: the templates read 3 as "no clear
// verdict", and with allow-inconclusive the job passed, a pipeline gone green for a
// version that never went out. Both templates now fail the job on a cancelled deploy,
// whatever allow-inconclusive says, naming the cancel's reason. The real release binary
// under bash and sh, a real agent, the cancel sent while gate waits.
func TestPipelineTemplatesFailACancelledDeploy(t *testing.T) {
	action := yamlFile(t, "github-action/action.yml")[0]
	job, _ := yamlFile(t, "gitlab/vigil-gate.gitlab-ci.yml")[0][".vigil-gate"].(map[string]any)
	if job == nil {
		t.Fatal("no .vigil-gate job")
	}
	srv := releaseServer(t)
	s := startShop(t)
	agent := startAgent(t, agentConfig("slow", "interval: 1m, count: 2"), s)
	const reason = "Argo Rollouts aborted slow"
	for i, allow := range []string{"false", "true"} {
		version := fmt.Sprintf("v%d", 10+i)
		t.Run("github-allow-inconclusive-"+allow, func(t *testing.T) {
			cancelled := cancelWhenRegistered(t, agent.url, "slow", version, reason)
			r := runAction(t, action, map[string]string{"agent": agent.url, "token": agentToken, "service": "slow", "version": version,
				"wait": "2m", "allow-inconclusive": allow, "vigil-version": releaseVersion, "release-url": srv.URL})
			if err := cancelled(); err != nil {
				t.Fatal(err)
			}
			want := "::error::vigil: the rollout of slow " + version + " was called off (cancelled: " + reason + "): it did not deploy"
			if !r.failed || r.outputs["verdict"] != "cancelled" || !strings.Contains(r.log, want) {
				t.Errorf("failed=%v verdict=%q; want the step failed, verdict cancelled and the log saying %q:\n%s",
					r.failed, r.outputs["verdict"], want, r.log)
			}
		})
		version = fmt.Sprintf("v%d", 20+i)
		t.Run("gitlab-allow-inconclusive-"+allow, func(t *testing.T) {
			cancelled := cancelWhenRegistered(t, agent.url, "slow", version, reason)
			code, log, env := runGitLab(t, job, map[string]string{"VIGIL_AGENT": agent.url, "VIGIL_API_TOKEN": agentToken,
				"VIGIL_SERVICE": "slow", "VIGIL_VERSION": version, "VIGIL_WAIT": "2m", "VIGIL_ALLOW_INCONCLUSIVE": allow,
				"VIGIL_RELEASE": releaseVersion, "VIGIL_RELEASE_URL": srv.URL})
			if err := cancelled(); err != nil {
				t.Fatal(err)
			}
			want := "vigil: the rollout of slow " + version + " was called off (cancelled: " + reason + "): it did not deploy"
			if code != 3 || env["VIGIL_VERDICT"] != "cancelled" || !strings.Contains(log, want) {
				t.Errorf("exit %d, %v; want 3, VIGIL_VERDICT=cancelled and the log saying %q:\n%s", code, env, want, log)
			}
			// The job failed, so the example's rollback job runs: it must not roll back a
			// rollout that did not happen.
			if rolledBack, log := runExampleRollback(t, env); rolledBack {
				t.Errorf("the example's rollback job rolled back a cancelled rollout:\n%s", log)
			}
		})
	}
}

// runExampleRollback runs the GitLab example's rollback job, as GitLab does after the verify
// job failed, with verify's dotenv report: whether it ran ./rollback.sh, and its log.
func runExampleRollback(t *testing.T, dotenv map[string]string) (bool, string) {
	t.Helper()
	job, _ := yamlFile(t, "gitlab/example.gitlab-ci.yml")[0]["rollback"].(map[string]any)
	if job == nil || str(job["when"]) != "on_failure" {
		t.Fatalf("the GitLab example has no rollback job run on failure: %v", job)
	}
	dir := t.TempDir()
	marker := filepath.Join(dir, "rolled-back")
	if err := os.WriteFile(filepath.Join(dir, "rollback.sh"), []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	for _, line := range list(job["script"]) {
		script.WriteString(str(line) + "\n")
	}
	cmd := exec.Command("sh", "-e", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	for k, v := range dotenv {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the example's rollback job failed: %v\n%s", err, out)
	}
	_, statErr := os.Stat(marker)
	return statErr == nil, string(out)
}
