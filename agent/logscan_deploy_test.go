package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// An application that writes bare lines, without a timestamp, logs a warning as the new
// version starts, between the deploy's registration and its first round (initial_delay
// later). The check could date it only by its run before the deploy (or not at all, on
// a first read), so the leaky release passed. The agent marks where the log stood when
// it registered the deploy (checks.Check.MarkDeploy): the warning, written past the
// mark, is the deploy's.
func TestDeployLogscanUndatedWarning(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "app.log")
	app, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	println := func(line string) {
		t.Helper()
		if _, err := fmt.Fprintln(app, line); err != nil {
			t.Fatal(err)
		}
	}
	println("v1 started")
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - name: leak-log
    kind: logscan
    every: 1h
    retries: 0
    source: {file: %q}
    pattern: "Possible connection leak detected"
    window: 5m
    assert: ["matches == 0"]
services:
  app: {checks: [leak-log], verify: {initial_delay: 1s, interval: 300ms, count: 2}}
`, filepath.Join(dir, "*.log")))
	if d := h.verdict(h.deploy("app", "good"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("good release: %v %v", d["status"], d["reason"])
	}
	println("WARNING: Possible connection leak detected (v1, before the next deploy)")
	id := h.deploy("app", "leaky")
	println("v2 started")
	println("WARNING: Possible connection leak detected (v2, at startup)")
	d := h.verdict(id, 30*time.Second)
	reasons := fmt.Sprint(checkOf(t, d, "leak-log")["reasons"])
	if d["status"] != store.StatusFailed || !strings.Contains(reasons, "matches = 1 ") || !strings.Contains(reasons, "(v2, at startup)") {
		t.Fatalf("leaky release: %v %v %v", d["status"], d["reason"], d["checks"])
	}
}
