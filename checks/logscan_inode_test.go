package checks

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fileSourceOf is the file source of a logscan check, for tests that act on it between
// vigil's listing and its read, or rewrite its checkpoints.
func fileSourceOf(t *testing.T, c *Check) *fileSource {
	t.Helper()
	l, ok := c.prober.(*Logscan)
	if !ok || l.files == nil {
		t.Fatalf("%s is not a logscan check with a file source", c.Name)
	}
	return l.files
}

func wantTranscript(t *testing.T, res *Result, fragments ...string) {
	t.Helper()
	tr := strings.Join(res.Transcript, "\n")
	for _, f := range fragments {
		if !strings.Contains(tr, f) {
			t.Fatalf("the transcript lacks %q:\n%s", f, tr)
		}
	}
}

// A file deleted and a new one given its inode (and device) is not the file vigil read:
// it must be read from its start, not from where vigil had read the old one. Inode reuse
// cannot be forced, so the checkpoint is rewritten to carry the new file's identity.
func TestLogscanInodeReused(t *testing.T) {
	t.Run("a followed file", func(t *testing.T) {
		dir := t.TempDir()
		log := filepath.Join(dir, "app.log")
		appendLog(t, log, "INFO v1 started")
		c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", filepath.Join(dir, "*.log")), ""))
		wantOutcome(t, run(t, c, Input{}), Pass)
		if err := os.Remove(log); err != nil {
			t.Fatal(err)
		}
		appendLog(t, log, "WARN Possible connection leak detected (new file)", "INFO v2 started")
		fs := fileSourceOf(t, c)
		info, err := os.Stat(log)
		if err != nil || len(fs.cps) != 1 {
			t.Fatalf("stat %v, %d checkpoints", err, len(fs.cps))
		}
		fs.cps[0].info = info
		res := run(t, c, Input{})
		wantOutcome(t, res, Fail, "matches = 1 ", "(new file)")
		wantTranscript(t, res, "was truncated and written again")
	})
	t.Run("a file back under the glob", func(t *testing.T) {
		dir := t.TempDir()
		release, deploy := releases(t, dir)
		v1, v2, v3 := release("v1"), release("v2"), release("v3")
		appendLog(t, v1, "INFO v1 started")
		deploy("v1")
		c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", filepath.Join(dir, "current", "log", "*.log")), ""))
		wantOutcome(t, run(t, c, Input{}), Pass)
		appendLog(t, v2, "INFO v2 started")
		deploy("v2")
		wantOutcome(t, run(t, c, Input{}), Pass) // v1's file left the glob
		fs := fileSourceOf(t, c)
		if len(fs.away) != 1 {
			t.Fatalf("%d checkpoints of files that left the glob, want 1", len(fs.away))
		}

		since := time.Now()
		wantOutcome(t, run(t, c, Input{Since: since}), Pass)
		// v3's log, written since the last run, takes the inode of v1's.
		appendLog(t, v3, "WARN Possible connection leak detected (v3, undated)", "INFO v3 started")
		info, err := os.Stat(v3)
		if err != nil {
			t.Fatal(err)
		}
		fs.away[0].info = info
		deploy("v3")
		res := run(t, c, Input{Since: since})
		wantOutcome(t, res, Fail, "matches = 1 ", "(v3, undated)")
	})
}
