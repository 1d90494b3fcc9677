package agent

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
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

// Two agents sharing a PostgreSQL store behind one Kubernetes Service take the first calls
// of podinfo's canaries in staging and in prod at the same instant: exactly one is
// registered, the other refused with the 409 that names it, round after round, whichever
// agent is first; odd rounds the two canaries have one checksum (one spec in both
// namespaces). Before, each agent read the store's newest deploy outside the registration,
// both found nothing verifying, both registered, and the later superseded the earlier: the
// ping-pong the refusal exists to stop. On SQLite one agent takes both calls (an agent
// holds its file); the rule is the same store step.
func TestFlaggerWebhookCanariesOfTwoNamespacesAtOnce(t *testing.T) {
	t.Run("postgres, two agents", func(t *testing.T) {
		tg := newTarget(t)
		canariesAtOnce(t, flaggerAgentsSharingPostgres(t, tg))
	})
	t.Run("sqlite, one agent", func(t *testing.T) {
		tg := newTarget(t)
		h := startAgent(t, "", flaggerConfig(tg.srv.URL, "interval: 1m, count: 2"))
		canariesAtOnce(t, []*harness{h, h})
	})
}

// canariesAtOnce sends the first calls of staging's and prod's canaries at once, through
// agents[0] and agents[1] in turn, for 30 rounds; each round's registered canary is then
// ended by its post-rollout Failed, so that the next round starts with nothing verifying.
func canariesAtOnce(t *testing.T, agents []*harness) {
	namespaces := []string{"staging", "prod"}
	for round := range 30 {
		checksums := []string{fmt.Sprintf("5f1c%04d", round), fmt.Sprintf("7d2b%04d", round)}
		if round%2 == 1 {
			checksums[1] = checksums[0]
		}
		statuses, outs := make([]int, 2), make([]map[string]any, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, ns := range namespaces {
			h := agents[(i+round)%2]
			payload := flaggerHookPayload("podinfo", ns, "Progressing", checksums[i], map[string]string{"type": "pre-rollout"})
			wg.Go(func() {
				<-start
				statuses[i], outs[i] = flaggerCall(t, h, "", h.token, payload)
			})
		}
		close(start)
		wg.Wait()
		won := slices.Index(statuses, http.StatusTooEarly)
		lost := 1 - won
		if won == -1 || statuses[lost] != http.StatusConflict {
			t.Fatalf("round %d, the first calls of both canaries at once: staging %d %v, prod %d %v; want one 425 verifying, the other 409",
				round, statuses[0], outs[0], statuses[1], outs[1])
		}
		msg := str(outs[lost]["error"])
		for _, want := range []string{"is verifying a canary of namespace " + namespaces[won] + " (deploy " + str(outs[won]["deploy"]),
			"a canary of namespace " + namespaces[lost] + " would supersede it", "Nothing was registered"} {
			if !strings.Contains(msg, want) {
				t.Fatalf("round %d: the refusal %q lacks %q", round, msg, want)
			}
		}
		if n := len(deploysOf(t, agents[0], "podinfo")); n != round+1 {
			t.Fatalf("round %d: %d deploys of podinfo; want %d, one a round", round, n, round+1)
		}
		h := agents[(won+round)%2]
		status, out := flaggerCall(t, h, "", h.token, flaggerHookPayload("podinfo", namespaces[won], "Failed", checksums[won], map[string]string{"type": "post-rollout"}))
		if status != http.StatusOK || out["verdict"] != store.StatusCancelled {
			t.Fatalf("round %d: %s's post-rollout Failed: %d %v; want its deploy cancelled", round, namespaces[won], status, out)
		}
	}
}
