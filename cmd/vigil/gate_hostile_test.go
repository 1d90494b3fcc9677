package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// What the agent answers is data, and the reasons in it quote what the service under
// test sent: gate prints it into a CI log, where an escape sequence recolours or clears
// the log, a carriage return overwrites a line, and a line of its own starting "::" is a
// GitHub Actions workflow command (::error::, ::add-mask::, ::stop-commands::). Each field
// gate prints stays on its line with its control characters shown escaped, is cut to a
// length a person reads, and a verdict with hundreds of failing checks lists the first
// ones and points at the rest. Gate printed all of it as it came: 2 MB reasons, raw
// escapes, a reason's newline starting a "::error::" line.
func TestGatePrintsAHostileAnswerSafely(t *testing.T) {
	huge := strings.Repeat("x", 2<<20)
	inject := "boom\x1b[2J\x1b]0;title\x07\r\n::error::injected\n::add-mask::x"
	checks := make([]map[string]any, 0, 300)
	for i := range 300 {
		checks = append(checks, map[string]any{"name": fmt.Sprintf("c%03d\r", i), "runs": 1, "failed": 1, "last_outcome": "fail",
			"reasons": []string{inject, huge[:20<<10], "third", "fourth"}, "run_url": "http://127.0.0.1/runs/1\n::error::run"})
	}
	body, err := json.Marshal(map[string]any{"id": "d-1", "service": "web", "version": "v2\x1b[32m", "status": "failed",
		"reason": inject + huge, "halt": inject, "url": "http://127.0.0.1/deploys/d-1", "checks": checks,
		"links": []map[string]string{{"name": "CI\n::error::link", "url": "http://127.0.0.1/ci"}}})
	if err != nil {
		t.Fatal(err)
	}
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprint(w, `{"id":"d-1"}`)
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(agent.Close)
	code, out, errOut := vigilRun(t, nil, "gate", "--agent", agent.URL, "--service", "web", "--version", "v2", "--wait", "1m")
	all := out + errOut
	if code != 1 || !strings.Contains(out, "FAILED") {
		t.Fatalf("exit %d (want 1, FAILED):\n%.2000s", code, all)
	}
	if strings.ContainsAny(all, "\x1b\r\x07") {
		t.Errorf("gate printed control characters as they came:\n%q", all[:min(len(all), 2000)])
	}
	for _, line := range strings.Split(all, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "::") {
			t.Errorf("a line of the agent's text became a line of its own: %q", line)
		}
	}
	if len(all) > 128<<10 {
		t.Errorf("gate printed %d bytes for one verdict; want at most 128 KiB", len(all))
	}
	for _, want := range []string{`boom\x1b[2J`, `\r\n::error::injected`, "more failing checks", "details: http://127.0.0.1/deploys/d-1", "c000"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not show %q", want)
		}
	}
}

// preflight prints the agent's text the same way.
func TestPreflightPrintsAHostileAnswerSafely(t *testing.T) {
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(map[string]any{"service": "web", "version": "v2", "clear": false,
			"blocked": []map[string]string{{"rule": "version_failed", "message": "failed\x1b[2J\n::error::injected" + strings.Repeat("y", 1<<20), "url": "http://127.0.0.1/d\r"}}})
	}))
	t.Cleanup(agent.Close)
	code, out, errOut := vigilRun(t, nil, "preflight", "--agent", agent.URL, "--service", "web", "--version", "v2")
	all := out + errOut
	if code != 1 || strings.ContainsAny(all, "\x1b\r") || strings.Contains(all, "\n::") || len(all) > 16<<10 || !strings.Contains(out, `failed\x1b[2J\n::error::injected`) {
		t.Errorf("exit %d (want 1), %d bytes, control characters or lines of the agent's own:\n%q", code, len(all), all[:min(len(all), 1000)])
	}
}

// An answer over the client's 8 MiB cut is not "the agent does not answer": gate said so,
// asked again for all of --wait, then called the agent unreachable. It says the answer
// is too big, where to read the deploy instead, and stops (exit 2) at once.
func TestGateSaysAnAnswerIsTooBig(t *testing.T) {
	big := `{"id":"d-1","service":"web","version":"v2","status":"failed","reason":"` + strings.Repeat("x", 9<<20) + `"}`
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprint(w, `{"id":"d-1"}`)
			return
		}
		fmt.Fprint(w, big)
	}))
	t.Cleanup(agent.Close)
	code, out, errOut := vigilRun(t, nil, "gate", "--agent", agent.URL, "--service", "web", "--version", "v2", "--wait", "1m")
	if code != 2 || !strings.Contains(errOut, "over 8 MiB") || strings.Contains(errOut, "does not answer") || !strings.Contains(errOut, "/api/v1/deploys/d-1") {
		t.Errorf("exit %d, want 2 saying the answer is over 8 MiB:\n%s%.2000s", code, out, errOut)
	}
}
