package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vigil-monitor/vigil/internal/pgtest"
	"github.com/vigil-monitor/vigil/store"
)

// A Canary whose webhook says the application's version (metadata.version) is verified as
// that version, so that served_version tells the canary's answers from the primary's: the
// version is what the pods say, where the checksum is Flagger's own. Before, the deploy's
// version was always the checksum, every answer named another version and was left out,
// and a good canary was inconclusive (a 409: Flagger rolled it back).
func TestFlaggerWebhookVersionFromMetadata(t *testing.T) {
	var served atomic.Value
	served.Store("v2")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App-Version", served.Load().(string))
	}))
	t.Cleanup(srv.Close)
	cfg := strings.Replace(flaggerConfig(srv.URL, "interval: 100ms, count: 2"), "    assert:",
		"    served_version: {header: X-App-Version}\n    assert:", 1)
	h := startAgent(t, "", cfg)

	canary := func(checksum string) string {
		return flaggerHookPayload("podinfo", "test", "Progressing", checksum, map[string]string{"type": "pre-rollout", "version": "v2"})
	}
	status, out := flaggerCall(t, h, "?wait=20s", h.token, canary("85d557f47b"))
	if status != http.StatusOK || out["verdict"] != "passed" || out["version"] != "v2" {
		t.Fatalf("a good canary whose webhook names its version: %d %v; want 200 passed v2", status, out)
	}
	first := out["deploy"]
	if status, out := flaggerCall(t, h, "", h.token, canary("85d557f47b")); status != http.StatusOK || out["deploy"] != first {
		t.Errorf("the same canary called again: %d %v; want deploy %v's verdict", status, out, first)
	}

	// The same version with another checksum (a ConfigMap changed, the image did not) is
	// another canary: verified, not answered with the last one's verdict.
	status, out = flaggerCall(t, h, "", h.token, canary("0aa1b2c3d4"))
	if status != http.StatusTooEarly || out["deploy"] == first || out["version"] != "v2" {
		t.Fatalf("v2 again under a new checksum: %d %v; want a new deploy of v2, verifying", status, out)
	}
	if n := len(deploysOf(t, h, "podinfo")); n != 2 {
		t.Errorf("%d deploys; want 2", n)
	}

	// Still served by the old version: its answers are left out, so no verdict to pass on.
	served.Store("v1")
	status, out = flaggerCall(t, h, "?wait=20s", h.token, flaggerHookPayload("podinfo", "test", "Progressing", "77e0f1", map[string]string{"version": "v3"}))
	if status != http.StatusConflict || out["verdict"] != "inconclusive" || out["version"] != "v3" {
		t.Errorf("a canary of v3 while only v1 answers: %d %v; want 409 inconclusive", status, out)
	}
}

// Two agents sharing one store behind one Kubernetes Service: Flagger's calls for one
// canary land on either, at once, and register one deploy, whichever registers first.
func TestFlaggerWebhookTwoAgentsOneCanary(t *testing.T) {
	tg := newTarget(t)
	agents := flaggerAgentsSharingPostgres(t, tg)
	for round, checksum := range []string{"85d557f47b", "9f3c21aa07", "85d557f47b"} {
		ids := make([]string, 6)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Go(func() {
				status, out := flaggerCall(t, agents[i%2], "", agents[0].token, flaggerHookPayload("podinfo", "test", "Progressing", checksum, nil))
				if status != http.StatusTooEarly {
					t.Errorf("round %d, call %d: %d %v; want 425", round, i, status, out)
				}
				ids[i] = fmt.Sprint(out["deploy"])
			})
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("round %d (%s): calls through two agents answered with deploys %v; want one", round, checksum, ids)
			}
		}
		if n := len(deploysOf(t, agents[0], "podinfo")); n != round+1 {
			t.Fatalf("after round %d: %d deploys; want %d (A, B, A again are three)", round, n, round+1)
		}
	}
}

// flaggerAgentsSharingPostgres starts two agents (vigil-0, vigil-1) on one real PostgreSQL
// database, each with flaggerConfig on tg: two replicas behind one Kubernetes Service.
func flaggerAgentsSharingPostgres(t *testing.T, tg *target) []*harness {
	t.Helper()
	dsn := pgtest.Start(t, pgtest.Options{}).Database(t)
	var agents []*harness
	for _, name := range []string{"vigil-0", "vigil-1"} {
		st, err := store.OpenPostgres(t.Context(), dsn, store.PoolOptions{MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		cfg := strings.Replace(flaggerConfig(tg.srv.URL, "interval: 1m, count: 2"), "agent: {api_token: s3cret-token}",
			"agent: {api_token: s3cret-token, name: "+name+"}", 1)
		h := startAgentWith(t, t.TempDir(), cfg, Options{Store: st})
		t.Cleanup(func() { h.stop(); st.Close() })
		agents = append(agents, h)
	}
	return agents
}
