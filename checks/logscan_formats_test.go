package checks

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vigil-monitor/vigil/configs"
)

// go-kit's loggers (Loki's, Prometheus's) write level=warn ts=..., and journald's exports
// put the time in __REALTIME_TIMESTAMP: such lines carry a time, which was not read, so
// on a first read their warnings were undated and not counted.
func TestLogscanLogfmtAndJournaldTimes(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	now := time.Now()
	iso := func(d time.Duration) string { return now.Add(d).UTC().Format(time.RFC3339Nano) }
	micro := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).UnixMicro(), 10) }
	appendLog(t, log,
		"level=warn ts="+iso(-time.Hour)+` caller=pool.go:42 msg="Possible connection leak detected (an hour ago)"`,
		"level=warn ts="+iso(-time.Minute)+` caller=pool.go:42 msg="Possible connection leak detected (go-kit)"`,
		`{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"`+micro(-time.Minute)+`","PRIORITY":"4","MESSAGE":"Possible connection leak detected (journalctl -o json)"}`,
		"__CURSOR=s=2", "__REALTIME_TIMESTAMP="+micro(-time.Minute), "PRIORITY=4",
		"MESSAGE=Possible connection leak detected (journalctl -o export)", "")
	c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", log), ""))
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "matches = 3 ")
	if res.Vars["undated"] != 0 {
		t.Fatalf("undated = %v", res.Vars["undated"])
	}
}

// What a config leaves out: window 5m, samples 5 (the latest), max_bytes 64 MiB; and a
// relative glob is relative to the config file.
func TestLogscanDefaults(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "logs", "app.log")
	if err := os.MkdirAll(filepath.Dir(log), 0o755); err != nil {
		t.Fatal(err)
	}
	appendLog(t, log, "boot")
	cfg, err := configs.Parse(filepath.Join(dir, "vigil.yaml"), []byte(`
checks:
  - name: leak-log
    kind: logscan
    source: {file: "logs/*.log"}
    pattern: "Possible connection leak detected"
    assert: ["matches == 0"]
`), configs.Options{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	client := NewHTTPClient("vigil-test")
	t.Cleanup(client.CloseIdle)
	list, err := Build(cfg, Deps{HTTP: client})
	if err != nil {
		t.Fatal(err)
	}
	c := list[0]
	if l := c.prober.(*Logscan); l.window != 5*time.Minute || l.samples != 5 || l.maxBytes != 64<<20 {
		t.Fatalf("window %s, samples %d, max_bytes %d", l.window, l.samples, l.maxBytes)
	}
	wantOutcome(t, run(t, c, Input{}), Pass)
	for i := range 7 {
		appendLog(t, log, fmt.Sprintf("Possible connection leak detected %d", i))
	}
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "matches = 7 ", "in lines written since the last 5m0s")
	if s := res.Vars["samples"].([]string); len(s) != 5 || s[0] != "Possible connection leak detected 2" || s[4] != "Possible connection leak detected 6" {
		t.Fatalf("samples %q, want the latest 5", s)
	}
}

// Windows services write CRLF: the \r is not part of the line, so a pattern anchored at
// its end matches. A line with bytes that are not UTF-8 (a Latin-1 name) is matched, and
// its sample is valid UTF-8: it goes into JSON, the store and chat messages. Patterns see
// a JSON line as written, escapes included.
func TestLogscanCRLFAndNotUTF8(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendLog(t, log, "boot")
	c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", log), `    patterns: ["pool exhausted$"]`))
	wantOutcome(t, run(t, c, Input{}), Pass)
	writeLog(t, log, "ERROR pool exhausted\r\nWARNING: Possible connection leak detected for Jos\xe9 M\xfcller\r\n")
	// The line as written: a JSON logger that escaped the space is not matched.
	appendLog(t, log, `{"level":"warn","msg":"Possible connection\u0020leak detected"}`)
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "matches = 2 ")
	s := res.Vars["samples"].([]string)
	if len(s) != 2 || s[0] != "ERROR pool exhausted" || !utf8.ValidString(s[1]) || !strings.HasPrefix(s[1], "WARNING: Possible connection leak detected for Jos") {
		t.Fatalf("samples %q: want the lines without \\r, in valid UTF-8", s)
	}
}

// A last line longer than 64 KiB without a newline (a stack dump still being written) is
// read as far as it goes: vigil cannot hold it back whole. What is written after it later
// is a line of its own.
func TestLogscanLongUnfinishedLine(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendLog(t, log, "boot")
	c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", log), ""))
	wantOutcome(t, run(t, c, Input{}), Pass)
	writeLog(t, log, "Possible connection leak detected, then "+strings.Repeat("at Pool.borrow ", 100<<10/15))
	wantOutcome(t, run(t, c, Input{}), Fail, "matches = 1 ")
	writeLog(t, log, "at Pool.release Possible connection leak detected\n")
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "matches = 2 ")
	if res.Vars["lines"] != 1 {
		t.Fatalf("lines %v, want 1 (the rest)", res.Vars["lines"])
	}
}

// RFC 5424 syslog lines ("<34>1 2026-...") carried no time vigil read, and offsets of hours
// alone ("+01", PostgreSQL's for a zone without an abbreviation) were read in vigil's
// zone, hours off: the warnings logged before the deploy could not be told from those
// after it. Only those after it count.
func TestLogscanSyslogAndHourOffsets(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	now := time.Now()
	deploy := now.Add(-2 * time.Minute)
	plus1, minus3 := time.FixedZone("", 3600), time.FixedZone("", -3*3600)
	at := func(d time.Duration, zone *time.Location, layout string) string {
		return now.Add(d).In(zone).Format(layout)
	}
	const (
		rfc5424 = "2006-01-02T15:04:05.000000Z07:00"
		hours   = "2006-01-02T15:04:05.000Z07"
		pg      = "2006-01-02 15:04:05.000 Z07"
		hhmm    = "2006-01-02T15:04:05.000Z0700"
	)
	for _, d := range []time.Duration{-4 * time.Minute, -time.Minute} {
		when := "before the deploy"
		if d > -2*time.Minute {
			when = "after the deploy"
		}
		appendLog(t, log,
			"<34>1 "+at(d, plus1, rfc5424)+" web-1 app 812 - - WARNING: Possible connection leak detected (RFC 5424, "+when+")",
			at(d, plus1, hours)+" WARNING: Possible connection leak detected (+01, "+when+")",
			at(d, minus3, pg)+" [812] WARNING: Possible connection leak detected (PostgreSQL -03, "+when+")",
			at(d, plus1, hhmm)+" WARNING: Possible connection leak detected (+0100, "+when+")")
	}
	c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", log), "    samples: 10"))
	res := run(t, c, Input{Since: deploy})
	wantOutcome(t, res, Fail, "matches = 4 ")
	if res.Vars["undated"] != 0 {
		t.Fatalf("undated = %v; transcript %q", res.Vars["undated"], res.Transcript)
	}
	for _, s := range res.Vars["samples"].([]string) {
		if !strings.Contains(s, "after the deploy") {
			t.Fatalf("a line from before the deploy counted: %q", s)
		}
	}
}
