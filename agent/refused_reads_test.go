package agent

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/store"
)

// Deploy is refused as ServiceDeploys is (refusingReads, metrics_store_test.go).
func (s *refusingReads) Deploy(ctx context.Context, id string) (*store.Deploy, error) {
	if err := s.refused(ctx); err != nil {
		return nil, err
	}
	return s.Store.Deploy(ctx, id)
}

// A cancel or a preflight the store cannot answer now is the agent's failure, not the
// caller's: a JSON 503 with Retry-After that says why and what to do, and nothing decided.
// Once the store answers, the same requests do what they say.
func TestCancelAndPreflightRefusedByTheStore(t *testing.T) {
	dir := t.TempDir()
	st := &refusingReads{Store: openSQLite(t, dir)}
	tg := newTarget(t)
	h := startAgentWith(t, dir, webConfig{url: tg.srv.URL, verify: "interval: 1h, count: 2"}.String(), Options{Store: st})
	status, out := h.request("POST", "/api/v1/deploys", `{"service":"web","version":"v2"}`)
	if status != http.StatusAccepted {
		t.Fatalf("register: %d %v", status, out)
	}
	id := fmt.Sprint(out["id"])

	st.mode.Store("fail")
	for _, c := range []struct{ method, path, body, want string }{
		{"POST", "/api/v1/deploys/" + id + "/cancel", `{"reason":"aborted"}`, "send the cancel again"},
		{"POST", "/api/v1/services/web/deploys/cancel", `{"version":"v2"}`, "send the cancel again"},
		{"GET", "/api/v1/services/web/preflight?version=v3", "", "ask again"},
	} {
		req, _ := http.NewRequest(c.method, h.url+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+h.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s with the store refusing: %d, Retry-After %q; want 503 with Retry-After", c.method, c.path, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		status, out := h.request(c.method, c.path, c.body)
		if msg := fmt.Sprint(out["error"]); status != http.StatusServiceUnavailable || !strings.Contains(msg, "connection refused") || !strings.Contains(msg, c.want) {
			t.Errorf("%s %s with the store refusing: %d %v; want a 503 naming the error and saying %q", c.method, c.path, status, out, c.want)
		}
	}
	st.mode.Store("")
	if status, out := h.request("GET", "/api/v1/deploys/"+id, ""); status != http.StatusOK || out["status"] != store.StatusVerifying {
		t.Fatalf("after the refused cancels: %d %v; want the deploy still verifying", status, out)
	}
	if status, out := h.request("POST", "/api/v1/deploys/"+id+"/cancel", `{"reason":"aborted"}`); status != http.StatusOK || out["status"] != store.StatusCancelled {
		t.Fatalf("cancel once the store answers: %d %v; want 200 cancelled", status, out)
	}
}
