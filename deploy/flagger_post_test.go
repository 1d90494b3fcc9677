package deploy

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// The example Canary's post-rollout hook, called as Flagger's rollback calls it (phase
// Failed, the checksum of the canary its pre-rollout hook registered), cancels the
// verification in the vigil binary: 200, verdict cancelled.
func TestFlaggerCanaryPostRollout(t *testing.T) {
	canary := k8sObjects(t, "canary.yaml", yamlFile(t, "flagger/canary.yaml"))["Canary/podinfo"]
	if canary == nil {
		t.Fatal("want Canary podinfo")
	}
	hooks := map[string]map[string]any{}
	for _, h := range list(get(canary, "spec", "analysis", "webhooks")) {
		hook := h.(map[string]any)
		hooks[str(hook["type"])] = hook
	}
	pre, post := hooks["pre-rollout"], hooks["post-rollout"]
	if pre == nil || post == nil {
		t.Fatalf("want a pre-rollout and a post-rollout webhook: %v", hooks)
	}
	if str(get(post, "metadata", "type")) != "post-rollout" || str(get(post, "metadata", "service")) != str(get(pre, "metadata", "service")) {
		t.Errorf("the post-rollout hook's metadata %v: want type post-rollout and the pre-rollout hook's service", get(post, "metadata"))
	}
	if str(get(pre, "metadata", "service")) == "" {
		t.Fatal("the pre-rollout hook names no service")
	}

	s := startShop(t)
	agent := startAgent(t, agentConfig(str(get(pre, "metadata", "service")), "interval: 1m, count: 2"), s)
	call := func(hook map[string]any, phase string) (int, map[string]any) {
		u, err := url.Parse(str(hook["url"]))
		if err != nil {
			t.Fatal(err)
		}
		target, _ := url.Parse(agent.url)
		u.Host = target.Host
		u.User = url.UserPassword(u.User.Username(), agentToken)
		q := u.Query()
		q.Del("wait") // the verification takes a minute: answer at once
		u.RawQuery = q.Encode()
		metadata := map[string]string{}
		for k, v := range get(hook, "metadata").(map[string]any) {
			metadata[k] = str(v)
		}
		body, _ := json.Marshal(map[string]any{"name": get(canary, "metadata", "name"), "namespace": get(canary, "metadata", "namespace"),
			"phase": phase, "checksum": "7c9f8c8b4", "metadata": metadata})
		req, _ := http.NewRequest("POST", u.String(), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	status, out := call(pre, "Progressing")
	if status != http.StatusTooEarly || out["verdict"] != "verifying" {
		t.Fatalf("the pre-rollout hook: %d %v; want 425 verifying", status, out)
	}
	status, ended := call(post, "Failed")
	if status != http.StatusOK || ended["verdict"] != "cancelled" || ended["deploy"] != out["deploy"] {
		t.Fatalf("the post-rollout hook as Flagger rolls back: %d %v; want 200, deploy %v cancelled", status, ended, out["deploy"])
	}
}
