package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// retries is read from the check: a run that ends in error (the connection dropped before
// an answer) is tried again that many times. Each path below drops its first two
// connections and answers 200 from the third on, so retries: 2 passes on the third
// attempt, and retries: 0 ends in error on the first one, though the default (1) would
// give either another outcome or another attempt count.
func TestRetriesKeyBoundsTheAttemptsOfARun(t *testing.T) {
	var hits [2]atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := 0
		if r.URL.Path == "/two" {
			i = 1
		}
		if hits[i].Add(1) <= 2 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close() // no answer: the run ends in error, which retries cover
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	h := startAgent(t, "", fmt.Sprintf(`agent: {api_token: s3cret-token}
checks:
  - name: zero
    kind: http
    every: 24h
    retries: 0
    request: {url: "%[1]s/zero"}
  - name: two
    kind: http
    every: 24h
    retries: 2
    request: {url: "%[1]s/two"}
`, srv.URL))
	for i, tc := range []struct {
		check, outcome string
		attempts       float64
	}{
		{"zero", "error", 1},
		{"two", "pass", 3},
	} {
		status, out := h.request("POST", "/api/v1/checks/"+tc.check+"/run", "")
		if status != http.StatusOK {
			t.Fatalf("%s: run: %d %v", tc.check, status, out)
		}
		if out["outcome"] != tc.outcome || out["attempts"] != tc.attempts || hits[i].Load() != int64(tc.attempts) {
			t.Errorf("%s: outcome %v after %v attempts (%d requests), want %s after %v: %v",
				tc.check, out["outcome"], out["attempts"], hits[i].Load(), tc.outcome, tc.attempts, out["reasons"])
		}
	}
}
