package agent

import (
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/store"
)

// Canary web in staging and canary web in prod, no metadata.service: one vigil service,
// whose checks call one set of URLs. While staging's canary is verified, prod's is refused
// with a 409 that names both namespaces and the fix, and nothing is recorded; before, prod's
// superseded staging's (whose calls then got 409 superseded: failed checks, and a rollback
// of a canary nobody judged) and was judged on the answers of staging's URLs. The same
// namespace still supersedes, one namespace after the other is no conflict, and a canary
// with a service of its own is verified beside the other.
func TestFlaggerWebhookCanariesOfTwoNamespaces(t *testing.T) {
	tg := newTarget(t)
	cfg := flaggerConfig(tg.srv.URL, "interval: 1m, count: 2") + `  podinfo-prod:
    checks: [home]
    verify: {interval: 1m, count: 2}
`
	h := startAgent(t, "", cfg)
	canary := func(namespace, checksum string, metadata map[string]string) (int, map[string]any) {
		md := map[string]string{"type": "pre-rollout"}
		for k, v := range metadata {
			md[k] = v
		}
		return flaggerCall(t, h, "", h.token, flaggerHookPayload("podinfo", namespace, "Progressing", checksum, md))
	}
	status, out := canary("staging", "5f1c0ffee0", nil)
	if status != http.StatusTooEarly {
		t.Fatalf("staging's canary: %d %v; want 425 verifying", status, out)
	}
	staging := out["deploy"].(string)

	status, out = canary("prod", "7d2beef001", nil)
	msg := str(out["error"])
	if status != http.StatusConflict {
		t.Errorf("prod's canary while staging's is verified: %d %v; want 409", status, out)
	}
	for _, want := range []string{"is verifying a canary of namespace staging (deploy " + staging, "a canary of namespace prod would supersede it",
		"metadata: {service: podinfo-prod}", "Nothing was registered"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the refusal %q lacks %q", msg, want)
		}
	}
	if n := len(deploysOf(t, h, "podinfo")); n != 1 {
		t.Errorf("%d deploys of podinfo; want staging's only", n)
	}
	if status, out := canary("staging", "5f1c0ffee0", nil); status != http.StatusTooEarly || out["deploy"] != staging {
		t.Errorf("staging's canary called again: %d %v; want 425 for its deploy %s, still verifying", status, out, staging)
	}

	// The fix: prod's canary names a service of its own, verified beside staging's.
	status, out = canary("prod", "7d2beef001", map[string]string{"service": "podinfo-prod"})
	if status != http.StatusTooEarly || out["service"] != "podinfo-prod" {
		t.Errorf("prod's canary with metadata.service: %d %v; want 425 verifying podinfo-prod", status, out)
	}

	// The same namespace supersedes, as before: staging's newer revision replaces the older.
	status, out = canary("staging", "6a0b1c2d3e", nil)
	if status != http.StatusTooEarly || out["deploy"] == staging {
		t.Fatalf("staging's next revision: %d %v; want a new deploy, verifying", status, out)
	}
	if d, _ := h.a.store.Deploy(t.Context(), staging); d.Status != store.StatusSuperseded {
		t.Errorf("staging's first revision is %s; want superseded by its next", d.Status)
	}

	// Once staging's canary ends (Flagger rolled it back), prod's may use the service.
	if status, out := flaggerCall(t, h, "", h.token, flaggerHookPayload("podinfo", "staging", "Failed", "6a0b1c2d3e", map[string]string{"type": "post-rollout"})); status != http.StatusOK {
		t.Fatalf("staging's post-rollout: %d %v", status, out)
	}
	if status, out := canary("prod", "7d2beef001", nil); status != http.StatusTooEarly || out["service"] != "podinfo" {
		t.Errorf("prod's canary after staging's ended: %d %v; want 425, a deploy of podinfo", status, out)
	}
}
