package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// vigil run --concurrency caps the checks at once (the config's agent.concurrency
// otherwise), and --no-retry runs a check that ends in error once, where its retries
// would run it again.
func TestRunConcurrencyAndNoRetry(t *testing.T) {
	var inflight vigiltest.InFlight
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer inflight.Enter()()
		time.Sleep(400 * time.Millisecond)
	}))
	t.Cleanup(slow.Close)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close() // nothing listens there now: connecting is refused, an error outcome
	body := "agent: {concurrency: 4}\nchecks:\n"
	for i := range 4 {
		body += fmt.Sprintf("  - {name: slow-%d, kind: http, retries: 0, request: {url: %q}}\n", i, slow.URL)
	}
	body += fmt.Sprintf("  - {name: refused, kind: http, retries: 2, request: {url: \"http://%s/\"}}\n", refused)
	cfg := writeConfig(t, body)

	run := func(args ...string) (peakSeen int32, attempts float64) {
		t.Helper()
		inflight.ResetPeak()
		code, out, errOut := vigilRun(t, nil, append([]string{"run", "-c", cfg, "--json"}, args...)...)
		if code != 1 {
			t.Fatalf("run %v: exit %d, want 1 (a check errored):\n%s%s", args, code, out, errOut)
		}
		var res struct {
			Results []map[string]any `json:"results"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Results) != 5 {
			t.Fatalf("run %v --json: %v: %s", args, err, out)
		}
		for _, r := range res.Results {
			if r["check"] == "refused" {
				if r["outcome"] != "error" {
					t.Errorf("run %v: the refused check's outcome %v, want error", args, r["outcome"])
				}
				attempts, _ = r["attempts"].(float64)
			} else if r["outcome"] != "pass" {
				t.Errorf("run %v: %v: %v %v", args, r["check"], r["outcome"], r["reasons"])
			}
		}
		return inflight.Peak(), attempts
	}
	if p, n := run("--concurrency", "1", "--no-retry"); p != 1 || n != 1 {
		t.Errorf("--concurrency 1 --no-retry: %d requests at once, the refused check tried %v times; want 1 and 1", p, n)
	}
	if p, n := run(); p < 2 || n != 3 {
		t.Errorf("agent.concurrency 4, retries 2: %d requests at once, the refused check tried %v times; want more than 1 and 3", p, n)
	}
}

// A negative --concurrency (a typo, a variable gone wrong: --concurrency "-$N") is a usage
// error, not the config's concurrency taken silently; 0 still means "the config's".
func TestRunRefusesANegativeConcurrency(t *testing.T) {
	srv := target(t)
	cfg := writeConfig(t, config(srv.URL))
	if code, out, errs := run("run", "-c", cfg, "--service", "good", "--concurrency", "-3"); code != 2 || !strings.Contains(errs, "--concurrency") {
		t.Errorf("--concurrency -3: exit %d, want 2:\n%s%s", code, out, errs)
	}
	if code, out, errs := run("run", "-c", cfg, "--service", "good", "--concurrency", "0"); code != 0 {
		t.Errorf("--concurrency 0: exit %d, want 0:\n%s%s", code, out, errs)
	}
}
