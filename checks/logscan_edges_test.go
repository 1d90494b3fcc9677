package checks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An application that writes local times without a zone, in a zone ahead of vigil's (a
// JVM container on Europe/Berlin beside a vigil container on UTC), stamps its lines an hour
// in the future as vigil reads them. A line cannot have been written after vigil saw the
// file hold it: such a timestamp is wrong, and the line is placed by when vigil saw it, as
// if it had none. Before, v2's warnings, read before the rollback, were dated after it and
// failed the rollback's verification.
func TestLogscanTimestampsInTheFuture(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	ahead := func(d time.Duration) string {
		return time.Now().Add(time.Hour + d).Format("2006-01-02 15:04:05,000")
	}
	appendLog(t, log,
		ahead(-3*time.Minute)+" WARN Possible connection leak detected (v2)",
		ahead(-2*time.Minute)+" WARN Possible connection leak detected (v2)")
	c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", log), ""))
	res := run(t, c, Input{}) // a scheduled run reads v2's warnings
	if res.Outcome == Error || res.Vars["matches"] != 0 || res.Vars["undated"] != 2 {
		t.Errorf("first read: %s matches %v undated %v; want the two lines of unknown age undated", res.Outcome, res.Vars["matches"], res.Vars["undated"])
	}
	if tr := strings.Join(res.Transcript, "\n"); !strings.Contains(tr, "2 lines carry a timestamp later than when vigil read them") {
		t.Errorf("the transcript does not say why: %s", tr)
	}

	rollback := time.Now()
	appendLog(t, log, ahead(0)+" INFO v1 started")
	wantOutcome(t, run(t, c, Input{Since: rollback}), Pass)

	// After the rollback v1 leaks too: appended since the last run, its line counts.
	appendLog(t, log, ahead(0)+" WARN Possible connection leak detected (v1)")
	wantOutcome(t, run(t, c, Input{Since: rollback}), Fail, "matches = 1", "(v1)")
}

// After a rotation by rename the application writes on into the renamed file until it
// reopens its log (logrotate's postrotate signal, a reopen on the next write): the renamed
// file is followed, not read once and dropped with what was written after that read.
func TestLogscanFollowsTheRotatedFile(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendLog(t, log, "boot")
	c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", filepath.Join(dir, "*.log")), ""))
	wantOutcome(t, run(t, c, Input{}), Pass)

	deploy := time.Now()
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendLog(t, log, "v2 started")
	wantOutcome(t, run(t, c, Input{Since: deploy}), Pass)

	appendLog(t, log+".1", "Possible connection leak detected (written before the reopen)")
	wantOutcome(t, run(t, c, Input{Since: deploy}), Fail, "matches = 1", "before the reopen")

}

// writeLog appends s to path as it is, without a newline of its own.
func writeLog(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// A last line without a newline that nobody finished for a whole run (the old pod was
// killed mid-write by the deploy, a crash cut the panic short) is a line: it is read, not
// left waiting for a newline that will never come, and counted once. In the renamed file
// of a rotation, and in the live one.
func TestLogscanUnfinishedLastLine(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendLog(t, log, "boot")
	c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", filepath.Join(dir, "*.log")), ""))
	wantOutcome(t, run(t, c, Input{}), Pass)
	deploy := time.Now()

	// The first run after it cannot tell the line from one still being written; the next
	// sees it unchanged and reads it.
	writeLog(t, log, "Possible connection leak detected (cut short")
	wantOutcome(t, run(t, c, Input{Since: deploy}), Pass)
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendLog(t, log, "v2 started")
	wantOutcome(t, run(t, c, Input{Since: deploy}), Fail, "matches = 1", "(cut short")
	wantOutcome(t, run(t, c, Input{Since: deploy}), Fail, "matches = 1")

	writeLog(t, log, "Possible connection leak detected (live, cut short")
	wantOutcome(t, run(t, c, Input{Since: deploy}), Fail, "matches = 1")
	wantOutcome(t, run(t, c, Input{Since: deploy}), Fail, "matches = 2", "(live, cut short")
	wantOutcome(t, run(t, c, Input{Since: deploy}), Fail, "matches = 2")
	// A writer that finishes the line later: the rest is a line of its own, which does not
	// match, and the line is not counted again.
	writeLog(t, log, " and finished later)\n")
	res := run(t, c, Input{Since: deploy})
	wantOutcome(t, res, Fail, "matches = 2")
}

// logrotate's copytruncate copies app.log to app.log.1, then cuts app.log to nothing. The
// copy is a new file holding old lines: under the glob, it is not read again from its
// start as lines written since the last run (which blamed the warnings of the release
// before on the deploy, and counted them twice); outside the glob, the lines written
// between vigil's last read and the copy, now only in the copy, are read from it.
func TestLogscanCopytruncate(t *testing.T) {
	copyTruncate := func(t *testing.T, log string) {
		t.Helper()
		b, err := os.ReadFile(log)
		if err == nil {
			err = os.WriteFile(log+".1", b, 0o600)
		}
		if err == nil {
			err = os.Truncate(log, 0)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	stamp := func(d time.Duration) string { return time.Now().Add(d).UTC().Format("2006-01-02T15:04:05.000Z") }
	t.Run("the copy under the glob", func(t *testing.T) {
		dir := t.TempDir()
		log := filepath.Join(dir, "app.log")
		appendLog(t, log, "undated: Possible connection leak detected (v1)", stamp(-2*time.Minute)+" WARN Possible connection leak detected (v1)")
		c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", filepath.Join(dir, "app.log*")), ""))
		wantOutcome(t, run(t, c, Input{}), Fail, "matches = 1")
		deploy := time.Now()
		wantOutcome(t, run(t, c, Input{Since: deploy}), Pass)
		copyTruncate(t, log)
		appendLog(t, log, "v2 started")
		wantOutcome(t, run(t, c, Input{Since: deploy}), Pass)
		wantOutcome(t, run(t, c, Input{}), Fail, "matches = 1 ")
	})
	t.Run("the copy outside the glob", func(t *testing.T) {
		dir := t.TempDir()
		log := filepath.Join(dir, "app.log")
		appendLog(t, log, "boot")
		c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", filepath.Join(dir, "*.log")), ""))
		wantOutcome(t, run(t, c, Input{}), Pass)
		deploy := time.Now()
		wantOutcome(t, run(t, c, Input{Since: deploy}), Pass)
		appendLog(t, log, "Possible connection leak detected (just before the rotation)")
		copyTruncate(t, log)
		appendLog(t, log, "after the rotation")
		res := run(t, c, Input{Since: deploy})
		wantOutcome(t, res, Fail, "matches = 1 ", "just before the rotation")
		if tr := strings.Join(res.Transcript, "\n"); !strings.Contains(tr, log+".1 is a copy of "+log) {
			t.Fatalf("the transcript does not name the copy: %s", tr)
		}
		wantOutcome(t, run(t, c, Input{Since: deploy}), Fail, "matches = 1 ")
	})
}

// A file that comes (back) under the glob holds lines written before vigil saw it: a
// release directory swapped in by a symlink (Capistrano's current -> releases/v1) on a
// rollback holds v1's log as v1 left it. Its lines were dated no earlier than the last
// run, as if all of it had just been written: v1's warnings of minutes before failed
// the rollback to v1. A line with a timestamp of its own is dated by it.
func TestLogscanFileBackUnderTheGlob(t *testing.T) {
	dir := t.TempDir()
	release, deploy := releases(t, dir)
	current := filepath.Join(dir, "current")
	stamp := func(d time.Duration) string { return time.Now().Add(d).UTC().Format("2006-01-02T15:04:05.000Z") }
	v1, v2 := release("v1"), release("v2")
	appendLog(t, v1, stamp(-4*time.Minute)+" INFO v1 started",
		stamp(-3*time.Minute)+" WARN Possible connection leak detected (v1, the database was slow)")
	deploy("v1")
	c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", filepath.Join(current, "log", "*.log")), ""))
	wantOutcome(t, run(t, c, Input{}), Fail, "matches = 1")

	appendLog(t, v2, stamp(0)+" INFO v2 started")
	deploy("v2")
	wantOutcome(t, run(t, c, Input{Since: time.Now()}), Pass)

	// The rollback is registered; its first round runs while v2 is still current.
	rollback := time.Now()
	wantOutcome(t, run(t, c, Input{Since: rollback}), Pass)
	deploy("v1")
	appendLog(t, v1, stamp(0)+" INFO v1 started again")
	wantOutcome(t, run(t, c, Input{Since: rollback}), Pass)
	// v1 leaks now: that counts.
	appendLog(t, v1, stamp(0)+" WARN Possible connection leak detected (v1, after the rollback)")
	wantOutcome(t, run(t, c, Input{Since: rollback}), Fail, "matches = 1 ", "(v1, after the r")
}

// releases makes Capistrano-style release directories under dir: release(v) is the path
// of v's log file, deploy(v) points dir/current at v's directory, as a deploy does.
func releases(t *testing.T, dir string) (release func(v string) string, deploy func(v string)) {
	current := filepath.Join(dir, "current")
	release = func(v string) string {
		p := filepath.Join(dir, "releases", v, "log")
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(p, "app.log")
	}
	deploy = func(v string) {
		t.Helper()
		tmp := current + ".new"
		if err := os.Symlink(filepath.Join(dir, "releases", v), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, current); err != nil {
			t.Fatal(err)
		}
	}
	return release, deploy
}

// A file vigil followed and that left the glob (the release directory swapped out) is
// remembered, where vigil had read it to, for the window: when it comes back, it is read
// on from there. Its undated lines, which nothing else can place, are not read again as
// written since the last run.
func TestLogscanRemembersFilesThatLeftTheGlob(t *testing.T) {
	dir := t.TempDir()
	release, deploy := releases(t, dir)
	v1, v2 := release("v1"), release("v2")
	appendLog(t, v1, "WARN Possible connection leak detected (v1, undated)")
	deploy("v1")
	c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", filepath.Join(dir, "current", "log", "*.log")), ""))
	if res := run(t, c, Input{}); res.Outcome != Pass || res.Vars["undated"] != 1 {
		t.Fatalf("first look: %s undated %v", res.Outcome, res.Vars["undated"])
	}
	appendLog(t, v2, "INFO v2 started")
	deploy("v2")
	wantOutcome(t, run(t, c, Input{}), Pass)
	wantOutcome(t, run(t, c, Input{}), Pass)

	rollback := time.Now()
	wantOutcome(t, run(t, c, Input{Since: rollback}), Pass)
	deploy("v1")
	appendLog(t, v1, "INFO v1 started again")
	wantOutcome(t, run(t, c, Input{Since: rollback}), Pass)
	appendLog(t, v1, "WARN Possible connection leak detected (v1, after the rollback)")
	wantOutcome(t, run(t, c, Input{Since: rollback}), Fail, "matches = 1 ", "(v1, after the r")
}

// Loki has been seen to answer a query_range with lines from before its start (grafana/loki
// issues 3428 and 5451, direction=forward, shortly after ingestion). A warning from before
// the deploy that comes back so is not the deploy's: only lines within the interval asked
// for count.
func TestLogscanLokiLinesOutsideTheInterval(t *testing.T) {
	loki := &lokiServer{early: time.Minute}
	srv := serve(t, loki)
	deploy := time.Now().Add(-30 * time.Second)
	loki.push(map[string]string{"app": "web"}, deploy.Add(-10*time.Second), "WARNING: Possible connection leak detected (before the deploy)")
	loki.push(map[string]string{"app": "web"}, deploy.Add(time.Second), "INFO: v2 started")
	c := buildOne(t, logscanYAML(fmt.Sprintf(`{url: %q, query: '{app="web"}'}`, srv.URL), ""))
	res := run(t, c, Input{Since: deploy})
	wantOutcome(t, res, Pass)
	if tr := strings.Join(res.Transcript, "\n"); !strings.Contains(tr, "Loki answered 1 lines outside the interval asked for") {
		t.Fatalf("the transcript does not say Loki answered lines outside the interval: %s", tr)
	}
	loki.push(map[string]string{"app": "web"}, deploy.Add(2*time.Second), "WARNING: Possible connection leak detected (v2)")
	wantOutcome(t, run(t, c, Input{Since: deploy}), Fail, "matches = 1 ", "(v2)")
}

// A run that ends in an error part way through its files (its deadline passed while it
// read a large one) has read nothing: the next run reads the same bytes again from the
// same checkpoints, and must not count the matches the failed run had already noted a
// second time.
func TestLogscanErrorPartWayCountsNothing(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	appendLog(t, a, "boot")
	appendLog(t, b, "boot")
	c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", filepath.Join(dir, "*.log")), ""))
	wantOutcome(t, run(t, c, Input{}), Pass)

	// a.log gets three warnings and then 4 MiB of ordinary lines, read in more than the
	// 5 ms the run is given; b.log is listed after it.
	appendLog(t, a, "Possible connection leak detected 1", "Possible connection leak detected 2", "Possible connection leak detected 3")
	f, err := os.OpenFile(a, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	filler := strings.Repeat("INFO request served in 3 ms by the pool of ten\n", 1<<10)
	for range 4 << 20 / len(filler) {
		if _, err := f.WriteString(filler); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	res := c.Run(ctx, Input{})
	if res.Outcome != Error {
		t.Fatalf("the run with 5 ms for 4 MiB: %s %v; want an error (its deadline)", res.Outcome, res.Reasons)
	}
	res = run(t, c, Input{})
	wantOutcome(t, res, Fail, "matches = 3 ")
}

// samples: 0 (the range is 0 to 100) keeps no line as evidence: log lines may hold what
// must not reach a Slack channel. It was accepted and read as the default, 5.
func TestLogscanNoSamples(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendLog(t, log, "boot")
	c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", log), "    samples: 0\n"))
	wantOutcome(t, run(t, c, Input{}), Pass)
	appendLog(t, log, "Possible connection leak detected for user alice@example.com")
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "matches = 1 ")
	if s := res.Vars["samples"].([]string); len(s) != 0 || strings.Contains(strings.Join(res.Reasons, "\n"), "alice") {
		t.Fatalf("samples %q, reasons %q: want no line kept", s, res.Reasons)
	}

	loki := &lokiServer{}
	loki.push(map[string]string{"app": "web"}, time.Now().Add(-time.Second), "Possible connection leak detected for user alice@example.com")
	c = buildOne(t, logscanYAML(fmt.Sprintf(`{url: %q, query: '{app="web"}'}`, serve(t, loki).URL), "    samples: 0\n"))
	res = run(t, c, Input{})
	wantOutcome(t, res, Fail, "matches = 1 ")
	if s := res.Vars["samples"].([]string); len(s) != 0 || strings.Contains(strings.Join(res.Reasons, "\n"), "alice") {
		t.Fatalf("Loki: samples %q, reasons %q: want no line kept", s, res.Reasons)
	}
}
