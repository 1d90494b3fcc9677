package checks

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gzipLog writes the bytes of src, compressed, to dst and removes src, as logrotate's
// compress does to a rotated file.
func gzipLog(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeGzip(t, dst, b)
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
}

func writeGzip(t *testing.T, dst string, b []byte) {
	t.Helper()
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// logrotate can rename or delete a file between vigil's listing of the glob and its read
// of it. That made the whole run an error (the file was gone) or, with a new file already
// in its place, read the new file from where vigil had read the old one. A file that
// vanished so is followed under its new name, or noted and passed over.
func TestLogscanFileGoneBeforeTheRead(t *testing.T) {
	t.Run("rotated, a new file in its place", func(t *testing.T) {
		dir := t.TempDir()
		log := filepath.Join(dir, "app.log")
		appendLog(t, log, "boot")
		c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", filepath.Join(dir, "*.log")), ""))
		wantOutcome(t, run(t, c, Input{}), Pass)
		deploy := time.Now()
		wantOutcome(t, run(t, c, Input{Since: deploy}), Pass)
		appendLog(t, log, "Possible connection leak detected (just before the rotation)")
		fs := fileSourceOf(t, c)
		fs.opening = func(p string) {
			if p == log {
				fs.opening = nil
				rename(t, log, log+".1")
				appendLog(t, log, "v2 started, a longer line than the one before it, much longer")
			}
		}
		res := run(t, c, Input{Since: deploy})
		wantOutcome(t, res, Fail, "matches = 1 ", "just before the rotation")
		wantTranscript(t, res, log+" was rotated to "+log+".1 after vigil listed it")
		wantOutcome(t, run(t, c, Input{Since: deploy}), Fail, "matches = 1 ")
		appendLog(t, log+".1", "Possible connection leak detected (before the reopen)")
		wantOutcome(t, run(t, c, Input{Since: deploy}), Fail, "matches = 2 ", "before the reopen")
	})
	t.Run("deleted", func(t *testing.T) {
		dir := t.TempDir()
		a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
		appendLog(t, a, "boot")
		appendLog(t, b, "boot")
		c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", filepath.Join(dir, "*.log")), ""))
		wantOutcome(t, run(t, c, Input{}), Pass)
		appendLog(t, a, "INFO a")
		appendLog(t, b, "Possible connection leak detected (b)")
		fs := fileSourceOf(t, c)
		fs.opening = func(p string) {
			if p == a {
				fs.opening = nil
				if err := os.Remove(a); err != nil {
					t.Error(err)
				}
			}
		}
		res := run(t, c, Input{})
		wantOutcome(t, res, Fail, "matches = 1 ", "(b)")
		wantTranscript(t, res, a+" was deleted or rotated away after vigil listed it")
		if res.Vars["files"] != 1 {
			t.Fatalf("files = %v, want 1 (b.log)", res.Vars["files"])
		}
	})
	t.Run("unreadable stays an error", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads a file whatever its mode")
		}
		dir := t.TempDir()
		log := filepath.Join(dir, "app.log")
		appendLog(t, log, "boot")
		c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", log), ""))
		if err := os.Chmod(log, 0); err != nil {
			t.Fatal(err)
		}
		wantOutcome(t, run(t, c, Input{}), Error, "permission denied")
	})
}

// logrotate's compress without delaycompress turns app.log.1 into app.log.1.gz at once:
// the lines written between vigil's last read and the rotation are only in the .gz. It
// was skipped, and those lines (maybe the deploy's errors) lost without a word. A gzip
// copy beside the file that holds the bytes vigil had read is read on from there, once.
func TestLogscanCompressedRotation(t *testing.T) {
	setup := func(t *testing.T, extra string) (log string, c *Check, deploy time.Time) {
		t.Helper()
		dir := t.TempDir()
		log = filepath.Join(dir, "app.log")
		appendLog(t, log, "boot")
		c = buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", filepath.Join(dir, "*.log")), extra))
		wantOutcome(t, run(t, c, Input{}), Pass)
		deploy = time.Now()
		wantOutcome(t, run(t, c, Input{Since: deploy}), Pass)
		return log, c, deploy
	}
	t.Run("renamed, then compressed", func(t *testing.T) {
		log, c, deploy := setup(t, "")
		appendLog(t, log, "Possible connection leak detected (just before the rotation)")
		rename(t, log, log+".1")
		gzipLog(t, log+".1", log+".1.gz")
		appendLog(t, log, "v2 started")
		res := run(t, c, Input{Since: deploy})
		wantOutcome(t, res, Fail, "matches = 1 ", "just before the rotation")
		wantTranscript(t, res, log+".1.gz is a compressed copy of "+log+": read ")
		wantOutcome(t, run(t, c, Input{Since: deploy}), Fail, "matches = 1 ")
	})
	t.Run("copytruncate, then compressed", func(t *testing.T) {
		log, c, deploy := setup(t, "")
		appendLog(t, log, "Possible connection leak detected (just before the rotation)")
		b, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		writeGzip(t, log+".1.gz", b)
		if err := os.Truncate(log, 0); err != nil {
			t.Fatal(err)
		}
		appendLog(t, log, "after the rotation")
		wantOutcome(t, run(t, c, Input{Since: deploy}), Fail, "matches = 1 ", "just before the rotation")
		wantOutcome(t, run(t, c, Input{Since: deploy}), Fail, "matches = 1 ")
	})
	t.Run("compressed between the listing and the read", func(t *testing.T) {
		log, c, deploy := setup(t, "")
		appendLog(t, log, "Possible connection leak detected (just before the rotation)")
		fs := fileSourceOf(t, c)
		fs.opening = func(p string) {
			if p == log {
				fs.opening = nil
				rename(t, log, log+".1")
				gzipLog(t, log+".1", log+".1.gz")
			}
		}
		res := run(t, c, Input{Since: deploy})
		wantOutcome(t, res, Fail, "matches = 1 ", "just before the rotation")
		wantTranscript(t, res, log+".1.gz is a compressed copy of "+log)
	})
	t.Run("not what vigil read", func(t *testing.T) {
		log, c, deploy := setup(t, "")
		appendLog(t, log, "INFO fine")
		rename(t, log, log+".1")
		if err := os.Remove(log + ".1"); err != nil {
			t.Fatal(err)
		}
		writeGzip(t, log+".1.gz", []byte("bo\nPossible connection leak detected (another file)\n"))
		appendLog(t, log, "v2 started")
		wantOutcome(t, run(t, c, Input{Since: deploy}), Pass)
	})
	t.Run("bounded by max_bytes", func(t *testing.T) {
		log, c, deploy := setup(t, "    max_bytes: 4096\n")
		appendLog(t, log, "Possible connection leak detected (just before the rotation)")
		b, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(log); err != nil {
			t.Fatal(err)
		}
		// Then 32 MiB of zeros, 32 KiB compressed: read no further than max_bytes.
		writeGzip(t, log+".1.gz", append(b, make([]byte, 32<<20)...))
		appendLog(t, log, "v2 started")
		start := time.Now()
		res := run(t, c, Input{Since: deploy})
		wantOutcome(t, res, Fail, "matches = 1 ", "just before the rotation")
		if res.Vars["truncated"] != true || res.Vars["bytes"].(int) > 4096 {
			t.Fatalf("truncated %v bytes %v; want true and at most 4096", res.Vars["truncated"], res.Vars["bytes"])
		}
		wantTranscript(t, res, log+".1.gz: the bytes past the first ", "were not read (max_bytes 4096 per run)")
		if d := time.Since(start); d > time.Minute {
			t.Fatalf("the run took %s", d)
		}
	})
}

// Hostile or broken .gz files beside a rotated log (here: millions of empty deflate
// blocks, which take long to decompress to nothing) must not hold the run until its
// deadline, run after run: vigil gives up on them after half the time the run had left
// and reads the other files. (A machine that decompresses them all within that half finds
// that they do not match; the run passes the same way.)
func TestLogscanCompressedCopyTooSlow(t *testing.T) {
	dir := t.TempDir()
	log, other := filepath.Join(dir, "app.log"), filepath.Join(dir, "other.log")
	appendLog(t, log, "boot")
	appendLog(t, other, "boot")
	c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", filepath.Join(dir, "*.log")), ""))
	wantOutcome(t, run(t, c, Input{}), Pass)
	if err := os.Remove(log); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})     // a gzip header
	b.Write(bytes.Repeat([]byte{0, 0, 0, 0xff, 0xff}, 13<<20)) // 13 Mi empty stored blocks
	b.Write([]byte{1, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0})
	if err := os.WriteFile(log+".1.gz", b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 4; i++ { // four such copies, in more time than the run has
		if err := os.Link(log+".1.gz", fmt.Sprintf("%s.%d.gz", log, i)); err != nil {
			t.Fatal(err)
		}
	}
	appendLog(t, other, "Possible connection leak detected (other)")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := c.Run(ctx, Input{})
	t.Logf("%s", strings.Join(res.Transcript, "\n"))
	wantOutcome(t, res, Fail, "matches = 1 ", "(other)")
	if d := time.Since(start); d > time.Minute {
		t.Fatalf("the run took %s", d)
	}
}
