package checks

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// logWriter is an application's log file, open for appending as a process holds it.
type logWriter struct {
	t *testing.T
	f *os.File
}

func openLogWriter(t *testing.T, path string) *logWriter {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &logWriter{t: t, f: f}
}

func (w *logWriter) println(lines ...string) {
	w.t.Helper()
	for _, l := range lines {
		if _, err := fmt.Fprintln(w.f, l); err != nil {
			w.t.Fatal(err)
		}
	}
}

// A deploy's first round runs initial_delay after its registration, and the scheduled
// run before it earlier still. A line without a timestamp that the new version writes
// in between (a warning at startup, from an application that writes bare lines) could
// only be dated by that scheduled run, before the deploy: the leaky release passed with
// matches = 0 and undated = 0, in every round. The agent marks where the files stand
// just before and just after it takes the deploy's time (Check.MarkDeploy): what is
// written past the marks counts, and what was written before them does not. A line with
// a timestamp is still dated by it: the old version's buffered lines, flushed as it stops
// after the registration, are not the deploy's.
func TestLogscanUndatedLinesAfterTheDeploy(t *testing.T) {
	dir := t.TempDir()
	app := openLogWriter(t, filepath.Join(dir, "app.log"))
	app.println("v1 started")
	c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", filepath.Join(dir, "*.log")), ""))
	wantOutcome(t, run(t, c, Input{}), Pass) // the scheduled run before the deploy
	app.println("WARNING: Possible connection leak detected (v1, before the deploy)")

	// The agent registers the deploy (agent/deploys.go, verify.go).
	c.MarkDeploy()
	deploy := time.Now()
	c.MarkDeploy()
	app.println("v2 started", "WARNING: Possible connection leak detected (v2, at startup)")
	// v1 stops once v2 is up: its async appender flushes what it held, stamped before
	// the deploy.
	app.println(time.Now().Add(-2*time.Second).UTC().Format(time.RFC3339Nano) + " WARN Possible connection leak detected (v1, flushed as it stopped)")

	for round := 1; round <= 2; round++ {
		res := run(t, c, Input{Since: deploy})
		wantOutcome(t, res, Fail, "matches = 1 ", "(v2, at startup)")
		if res.Vars["undated"] != 0 {
			t.Errorf("round %d: undated = %v; v1's warning was written before the deploy", round, res.Vars["undated"])
		}
	}
}

// A new process writes a new file (app-<pid>.log), created after the deploy was
// registered, so no mark holds it, and the scheduled run before the deploy did not see
// it: its undated lines were written after that run, maybe before the deploy, maybe after.
// They were dated by that run and dropped without a word (matches = 0, undated = 0). They
// are undated now, and the transcript says why: `undated == 0` catches them.
func TestLogscanUnplacedLinesAreUndated(t *testing.T) {
	dir := t.TempDir()
	openLogWriter(t, filepath.Join(dir, "app-100.log")).println("v1 started")
	c := buildOne(t, strings.Replace(logscanYAML(fmt.Sprintf("{file: %q}", filepath.Join(dir, "app-*.log")), ""),
		`assert: ["matches == 0"]`, `assert: ["matches == 0", "undated == 0"]`, 1))
	wantOutcome(t, run(t, c, Input{}), Pass)

	// A new file is dated no earlier than the run before only when it was modified since
	// (within a second: file times are coarser than vigil's clock).
	time.Sleep(1100 * time.Millisecond)
	c.MarkDeploy()
	deploy := time.Now()
	c.MarkDeploy()
	openLogWriter(t, filepath.Join(dir, "app-200.log")).println("v2 started", "WARNING: Possible connection leak detected (v2)")
	res := run(t, c, Input{Since: deploy})
	wantOutcome(t, res, Fail, "undated == 0 is false: undated = 1")
	if res.Vars["matches"] != 0 {
		t.Errorf("matches = %v: the line cannot be placed after the deploy", res.Vars["matches"])
	}
	wantTranscript(t, res, "1 matching lines were written at a time vigil can only bound")
	// Outside a deploy, the window holds it.
	wantOutcome(t, run(t, c, Input{}), Fail, "matches == 0 is false: matches = 1 ")
}
