package checks

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func logscanYAML(source, extra string) string {
	return fmt.Sprintf(`
checks:
  - name: leak-log
    kind: logscan
    timeout: 10s
    source: %s
    pattern: "Possible connection leak detected"
    window: 5m
    assert: ["matches == 0"]
%s`, source, extra)
}

func appendLog(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := fmt.Fprintln(f, l); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLogscanSeed001: the connection leak of seed 001, in the log. The release before it
// logs nothing alarming. The bad release looks fine to one client, yet holds a connection
// through every blocking third-party call and logs "WARNING: Possible connection leak
// detected" (as Hikari does): the logscan check fails with the matching line, and the sla
// check at fifty clients fails on p95. After the rollback, the warnings from before it do
// not fail the next deploy's verification.
func TestLogscanSeed001(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "app.log")
	leak := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", filepath.Join(dir, "*.log")), ""))
	slaAt := func(url string, clients int) *Check {
		return buildOne(t, slaYAML(url, 10*min(clients, 10), clients, `    assert: ["p95_ms < 600", "error_rate < 0.01"]`))
	}

	// v1, the release before: the connection goes back to the pool before the call.
	_, v1 := newPoolApp(t, logPath, false)
	deployV1 := time.Now()
	wantOutcome(t, run(t, slaAt(v1.URL, 50), Input{}), Pass)
	wantOutcome(t, run(t, leak, Input{Since: deployV1}), Pass)

	// v2, the bad release.
	app, v2 := newPoolApp(t, logPath, true)
	deployV2 := time.Now()
	wantOutcome(t, run(t, slaAt(v2.URL, 1), Input{}), Pass) // "the tests were running through"
	res := run(t, leak, Input{Since: deployV2})
	wantOutcome(t, res, Fail, "matches == 0 is false: matches = ", "in lines written since the deploy started", "WARNING: Possible connection leak detected")
	samples := res.Vars["samples"].([]string)
	if len(samples) == 0 || !strings.Contains(samples[len(samples)-1], "WARNING: Possible connection leak detected. Connection held for") {
		t.Fatalf("samples = %q", samples)
	}
	if got, want := res.Vars["matches"], int(app.leaks.Load()); got != want {
		t.Fatalf("matches = %v, the app logged %d warnings", got, want)
	}
	wantOutcome(t, run(t, slaAt(v2.URL, 50), Input{}), Fail, "p95_ms < 600 is false")

	// Rolled back to v1: the warnings are still in the file and in the window, but they
	// were written before this deploy.
	_, v3 := newPoolApp(t, logPath, false)
	rollback := time.Now()
	wantOutcome(t, run(t, slaAt(v3.URL, 50), Input{}), Pass)
	after := run(t, leak, Input{Since: rollback})
	wantOutcome(t, after, Pass)
	// Outside a verification the window alone counts, and it still holds v2's warnings.
	wantOutcome(t, run(t, leak, Input{}), Fail, "matches == 0 is false", "in lines written since the last 5m0s")
}

// TestLogscanFollowsFiles: lines without timestamps, placed in time by when vigil saw the
// file grow; rotation by rename plus a new file; copytruncate; the deploy as the cutoff.
func TestLogscanFollowsFiles(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendLog(t, log, "boot", "Possible connection leak detected (from an earlier life)")
	c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", filepath.Join(dir, "*.log")), "    samples: 10"))
	matches := func(in Input) (int, *Result) {
		t.Helper()
		r := run(t, c, in)
		if r.Outcome == Error {
			t.Fatalf("error: %v", r.Reasons)
		}
		return r.Vars["matches"].(int), r
	}

	// First look: an undated line of unknown age is not blamed on anyone.
	if n, r := matches(Input{}); n != 0 || r.Vars["undated"] != 1 {
		t.Fatalf("first run: matches %d undated %v", n, r.Vars["undated"])
	}

	// Appended, then rotated (app.log -> app.log.1, which the glob does not match), and a
	// new app.log: both the tail of the old file and the new file count.
	appendLog(t, log, "Possible connection leak detected A")
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendLog(t, log, "Possible connection leak detected B")
	n, r := matches(Input{})
	if n != 2 {
		t.Fatalf("after rotation: matches %d, want 2 (A before the rename, B in the new file); transcript %q", n, r.Transcript)
	}
	if !strings.Contains(strings.Join(r.Transcript, "\n"), "was rotated to "+log+".1") {
		t.Fatalf("transcript does not mention the rotation: %q", r.Transcript)
	}

	// Nothing new: the window still holds A and B; nothing is counted twice.
	if n, _ := matches(Input{}); n != 2 {
		t.Fatalf("unchanged files: matches %d, want 2", n)
	}

	// copytruncate: the file is cut to zero and written again from the start.
	appendLog(t, log, "Possible connection leak detected C", "filler filler filler filler")
	if n, _ := matches(Input{}); n != 3 {
		t.Fatalf("appended C: matches %d, want 3", n)
	}
	if err := os.Truncate(log, 0); err != nil {
		t.Fatal(err)
	}
	appendLog(t, log, "Possible connection leak detected D")
	n, r = matches(Input{})
	if n != 4 || !strings.Contains(strings.Join(r.Transcript, "\n"), "was truncated") {
		t.Fatalf("after truncation: matches %d, want 4; transcript %q", n, r.Transcript)
	}

	// copytruncate, then more written between two runs than there was before: the size is
	// past the old offset, and the bytes before it are not those read there.
	appendLog(t, log, strings.Repeat("filler ", 20))
	if n, _ := matches(Input{}); n != 4 {
		t.Fatalf("filler: matches %d, want 4", n)
	}
	if err := os.Truncate(log, 0); err != nil {
		t.Fatal(err)
	}
	appendLog(t, log, "Possible connection leak detected F1", "Possible connection leak detected F2", strings.Repeat("more ", 100))
	n, r = matches(Input{})
	if n != 6 || !strings.Contains(strings.Join(r.Transcript, "\n"), "was truncated and written again") {
		t.Fatalf("after truncation and regrowth: matches %d, want 6; transcript %q", n, r.Transcript)
	}

	// A deploy: only lines written since it count. The first run after the deploy marks
	// where the files were; a line appended after it counts.
	deploy := time.Now()
	res := run(t, c, Input{Since: deploy})
	wantOutcome(t, res, Pass)
	appendLog(t, log, "Possible connection leak detected E")
	res = run(t, c, Input{Since: deploy})
	wantOutcome(t, res, Fail, `matches == 0 is false: matches = 1 (in lines written since the deploy started`, `e.g. "Possible connection leak detected E"`)
	if s := res.Vars["samples"].([]string); len(s) != 1 || s[0] != "Possible connection leak detected E" {
		t.Fatalf("samples = %q", s)
	}
}

// TestLogscanTimestampsAndWindow: on a first read, timestamped lines are placed by their
// timestamps: older than the window or the deploy, they do not count.
func TestLogscanTimestampsAndWindow(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	now := time.Now().UTC()
	stamp := func(d time.Duration) string { return now.Add(d).Format("2006-01-02T15:04:05.000Z") }
	appendLog(t, log,
		stamp(-time.Hour)+" WARNING: Possible connection leak detected (an hour ago)",
		stamp(-2*time.Minute)+" WARNING: Possible connection leak detected (two minutes ago)",
		"\tat com.example.Pool.borrow(Pool.java:42)",
		stamp(-2*time.Minute)+" INFO: ok",
		now.Add(-30*time.Second).Local().Format("2006/01/02 15:04:05")+" Possible connection leak detected (Go log format, local time)")
	c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", log), ""))
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "matches = 2")
	if res.Vars["lines"] != 5 || res.Vars["files"] != 1 {
		t.Fatalf("lines %v files %v", res.Vars["lines"], res.Vars["files"])
	}
	// The deploy a minute ago: only the Go-format line is after it.
	c2 := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", log), ""))
	wantOutcome(t, run(t, c2, Input{Since: now.Add(-time.Minute)}), Fail, "matches = 1", "Go log format")

	// A glob that matches nothing is not a pass: nothing was read.
	none := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", filepath.Join(dir, "*.txt")), ""))
	wantOutcome(t, run(t, none, Input{}), Inconclusive, "no file matches")
}

// TestLogscanBounded: max_bytes bounds what one run reads; a huge line without a newline
// is cut, not buffered whole.
func TestLogscanBounded(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", log), "    max_bytes: 65536"))
	appendLog(t, log, "start")
	wantOutcome(t, run(t, c, Input{}), Pass)
	big := strings.Repeat("x", 1<<20)
	appendLog(t, log, big, "Possible connection leak detected after the flood")
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "matches = 1", "a lower bound", "bytes skipped (max_bytes 65536 per run)")
	if b := res.Vars["bytes"].(int); b > 65536 {
		t.Fatalf("read %d bytes with max_bytes 65536", b)
	}
}

// TestLogscanLongLinesAndManyFiles: a line longer than the 64 KiB read at once is matched
// in every piece, and counted once; a glob past the 1,000 files followed follows those
// written last, where the live log is, not the first by name.
func TestLogscanLongLinesAndManyFiles(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", log), ""))
	appendLog(t, log, "start")
	wantOutcome(t, run(t, c, Input{}), Pass)
	appendLog(t, log, strings.Repeat("x", 1<<20)+" Possible connection leak detected at the end of a long line",
		"Possible connection leak detected "+strings.Repeat("y", 200<<10)+" Possible connection leak detected")
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "matches = 2")
	if res.Vars["lines"] != 2 {
		t.Errorf("lines %v, want 2", res.Vars["lines"])
	}

	many := filepath.Join(t.TempDir(), "logs")
	if err := os.MkdirAll(many, 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	for i := range logMaxFiles + 50 {
		p := filepath.Join(many, fmt.Sprintf("app-%05d.log", i))
		appendLog(t, p, "old")
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	live := filepath.Join(many, "zz-current.log")
	appendLog(t, live, "started")
	c = buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", filepath.Join(many, "*.log")), ""))
	wantOutcome(t, run(t, c, Input{}), Pass)
	appendLog(t, live, "Possible connection leak detected in the live log")
	res = run(t, c, Input{})
	wantOutcome(t, res, Fail, "matches = 1", "only the 1000 modified last are followed")
}

// lokiServer is a loopback server implementing the part of Loki's HTTP API that logscan
// uses: GET /loki/api/v1/query_range with query (a stream selector of name="value"
// matchers, then optional |~ `regex` line filters), start and end in nanoseconds (start
// inclusive, end exclusive), limit and direction=forward, answering
// {"status":"success","data":{"resultType":"streams","result":[...]}}. Errors come back
// as Loki sends them: 400 with a plain-text message.
type lokiServer struct {
	mu      sync.Mutex
	entries []lokiTestEntry
	queries []url.Values
	// early, when set, answers lines up to that long before start too, as Loki has been
	// seen to (grafana/loki issues 3428 and 5451: lines from before start, shortly after
	// ingestion, with direction=forward).
	early time.Duration
	// maxEntries, when set, is Loki's max_entries_limit_per_query: a larger limit is a
	// 400 with Loki's message.
	maxEntries int
	// warnings, when set, go in every answer as Loki's top-level "warnings".
	warnings []string
	headers  []http.Header
}

type lokiTestEntry struct {
	labels map[string]string
	ts     int64
	line   string
}

func (s *lokiServer) push(labels map[string]string, ts time.Time, line string) {
	s.mu.Lock()
	s.entries = append(s.entries, lokiTestEntry{labels: labels, ts: ts.UnixNano(), line: line})
	s.mu.Unlock()
}

var (
	lokiMatcher = regexp.MustCompile(`(\w+)="([^"]*)"`)
	lokiFilter  = regexp.MustCompile("\\|~ (`[^`]*`|\"(?:[^\"\\\\]|\\\\.)*\")")
)

func (s *lokiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/loki/api/v1/query_range" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	s.mu.Lock()
	s.queries = append(s.queries, q)
	s.headers = append(s.headers, r.Header.Clone())
	s.mu.Unlock()
	query := q.Get("query")
	if !strings.HasPrefix(query, "{") || !strings.Contains(query, "}") {
		http.Error(w, "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER", http.StatusBadRequest)
		return
	}
	selector := query[:strings.Index(query, "}")+1]
	var filters []*regexp.Regexp
	for _, m := range lokiFilter.FindAllStringSubmatch(query, -1) {
		lit := m[1]
		if lit[0] == '`' {
			lit = lit[1 : len(lit)-1]
		} else {
			lit, _ = strconv.Unquote(lit)
		}
		re, err := regexp.Compile(lit)
		if err != nil {
			http.Error(w, "parse error: invalid regex "+err.Error(), http.StatusBadRequest)
			return
		}
		filters = append(filters, re)
	}
	start, err1 := strconv.ParseInt(q.Get("start"), 10, 64)
	end, err2 := strconv.ParseInt(q.Get("end"), 10, 64)
	limit, err3 := strconv.Atoi(q.Get("limit"))
	if err1 != nil || err2 != nil || err3 != nil || q.Get("direction") != "forward" {
		http.Error(w, "invalid start, end, limit or direction", http.StatusBadRequest)
		return
	}
	if s.maxEntries > 0 && limit > s.maxEntries {
		http.Error(w, fmt.Sprintf("max entries limit per query exceeded, limit > max_entries_limit_per_query (%d > %d)", limit, s.maxEntries), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	var hits []lokiTestEntry
	for _, e := range s.entries {
		ok := e.ts >= start-int64(s.early) && e.ts < end
		for _, m := range lokiMatcher.FindAllStringSubmatch(selector, -1) {
			ok = ok && e.labels[m[1]] == m[2]
		}
		for _, re := range filters {
			ok = ok && re.MatchString(e.line)
		}
		if ok {
			hits = append(hits, e)
		}
	}
	s.mu.Unlock()
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].ts < hits[j].ts })
	if len(hits) > limit {
		hits = hits[:limit]
	}
	type stream struct {
		Stream map[string]string `json:"stream"`
		Values [][2]string       `json:"values"`
	}
	var streams []*stream
	byKey := map[string]*stream{}
	for _, e := range hits {
		key := formatLabels("", e.labels)
		st := byKey[key]
		if st == nil {
			st = &stream{Stream: e.labels}
			byKey[key] = st
			streams = append(streams, st)
		}
		st.Values = append(st.Values, [2]string{strconv.FormatInt(e.ts, 10), e.line})
	}
	w.Header().Set("Content-Type", "application/json")
	answer := map[string]any{"status": "success", "data": map[string]any{"resultType": "streams", "result": streams}}
	if len(s.warnings) > 0 {
		answer["warnings"] = s.warnings
	}
	writeJSON(w, answer)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *lokiServer) seen() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.queries...)
}

// TestLogscanLoki: the url source against a loopback Loki-API server. Only lines since
// the deploy count; pages of 1000 are followed, lines sharing a timestamp across a page
// boundary are counted once; the patterns travel in the query as a line filter.
func TestLogscanLoki(t *testing.T) {
	loki := &lokiServer{}
	srv := serve(t, loki)
	web := func(pod string) map[string]string { return map[string]string{"app": "web", "pod": pod} }
	deploy := time.Now().Add(-time.Minute)
	loki.push(web("a"), deploy.Add(-time.Second), "WARNING: Possible connection leak detected (before the deploy)")
	loki.push(map[string]string{"app": "db"}, deploy.Add(time.Second), "WARNING: Possible connection leak detected (another app)")
	// 2,400 lines after the deploy, every timestamp shared by the two pods; a third of them
	// warnings. Page boundaries (1000 lines) fall inside a shared timestamp.
	want := 0
	for i := range 1200 {
		ts := deploy.Add(time.Duration(i+1) * time.Millisecond)
		for _, pod := range []string{"a", "b"} {
			line := fmt.Sprintf("INFO: request %d on %s", i, pod)
			if i%3 == 0 {
				line = fmt.Sprintf("WARNING: Possible connection leak detected: request %d on %s", i, pod)
				want++
			}
			loki.push(web(pod), ts, line)
		}
	}
	c := buildOne(t, logscanYAML(fmt.Sprintf(`{url: %q, query: '{app="web"}'}`, srv.URL), "    patterns: [\"request \\\\d+ on b$\"]"))
	res := run(t, c, Input{Since: deploy})
	wantOutcome(t, res, Fail, fmt.Sprintf("matches == 0 is false: matches = %d", want+1200))
	byPattern := res.Vars["by_pattern"].(map[string]int)
	if byPattern["Possible connection leak detected"] != want || byPattern[`request \d+ on b$`] != 1200 {
		t.Fatalf("by_pattern = %v, want %d and 1200", byPattern, want)
	}
	// The patterns travel as a line filter: only matching lines come back (pod b's 1200,
	// and pod a's 400 warnings), not all 2400.
	if res.Vars["lines"] != 1600 {
		t.Fatalf("lines = %v, want the 1600 that match", res.Vars["lines"])
	}
	qs := loki.seen()
	if len(qs) != 2 { // 1600 lines, 1000 a page
		t.Fatalf("%d pages asked for", len(qs))
	}
	if got := qs[0].Get("start"); got != strconv.FormatInt(deploy.UnixNano(), 10) {
		t.Fatalf("first page starts at %s, not at the deploy (%d)", got, deploy.UnixNano())
	}
	if q := qs[0].Get("query"); q != "{app=\"web\"} |~ `(?:Possible connection leak detected)|(?:request \\d+ on b$)`" {
		t.Fatalf("query sent: %s", q)
	}

	// Outside a verification: the window, which also holds the line before the deploy.
	wantOutcome(t, run(t, c, Input{}), Fail, fmt.Sprintf("matches = %d", want+1200+1))
	// A clean stream passes.
	clean := buildOne(t, logscanYAML(fmt.Sprintf(`{url: %q, query: '{app="api"}'}`, srv.URL), ""))
	wantOutcome(t, run(t, clean, Input{Since: deploy}), Pass)
}

// During a rollout the old pods keep logging: a leak warning of theirs, written after the
// deploy started, is not the new version's. A Loki query that names the deploy's version
// reads the new pods' lines only; outside a deploy the matcher is left out.
func TestLogscanLokiNamesTheVersion(t *testing.T) {
	loki := &lokiServer{}
	srv := serve(t, loki)
	deploy := time.Now().Add(-time.Minute)
	for i := range 10 {
		ts := deploy.Add(time.Duration(i+1) * time.Second)
		loki.push(map[string]string{"app": "web", "version": "v1"}, ts, "WARNING: Possible connection leak detected (an old pod)")
		loki.push(map[string]string{"app": "web", "version": "v2"}, ts, "INFO: request served")
	}
	v2 := Input{Since: deploy, Deploy: &Deploy{ID: "d-2", Service: "web", Version: "v2"}}
	all := buildOne(t, logscanYAML(fmt.Sprintf(`{url: %q, query: '{app="web"}'}`, srv.URL), ""))
	wantOutcome(t, run(t, all, v2), Fail, "matches = 10")
	named := buildOne(t, logscanYAML(fmt.Sprintf(`{url: %q, query: '{app="web"{{ with .Deploy.Version }}, version="{{ . }}"{{ end }}}'}`, srv.URL), ""))
	wantOutcome(t, run(t, named, v2), Pass)
	if q := loki.seen(); q[len(q)-1].Get("query") != "{app=\"web\", version=\"v2\"} |~ `(?:Possible connection leak detected)`" {
		t.Fatalf("query sent: %s", q[len(q)-1].Get("query"))
	}
	wantOutcome(t, run(t, named, Input{}), Fail, "matches = 10")
	asked := len(loki.seen())
	hostile := Input{Since: deploy, Deploy: &Deploy{ID: "d-3", Service: "web", Version: `v2"} |= "`}}
	wantOutcome(t, run(t, named, hostile), Error, "the deploy's version", "which a query cannot hold safely")
	if len(loki.seen()) != asked {
		t.Fatal("Loki was asked with a version that does not belong in a query")
	}
	wantBuildError(t, logscanYAML(`{url: "http://127.0.0.1:9", query: '{app="web", version="{{ .Deploy.Verison }}"}'}`, ""),
		"source.query", "can't evaluate field Verison", ".Deploy.Version")
	wantBuildError(t, logscanYAML(`{url: "http://127.0.0.1:9", query: '{app="web"} |= "{{ .Window }}"'}`, ""),
		"source.query", "a log query has no range for {{ .Window }}")
}

func TestLogscanLokiErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		reason  string
	}{
		{"rejected", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "parse error at line 1, col 12: syntax error: unexpected IDENTIFIER", http.StatusBadRequest)
		}, "answered 400: parse error"},
		{"query failed", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, map[string]any{"status": "error", "errorType": "timeout", "error": "context deadline exceeded"})
		}, "the Loki answer says error: context deadline exceeded"},
		{"metric query", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, map[string]any{"status": "success", "data": map[string]any{"resultType": "matrix", "result": []any{}}})
		}, `the query returned "matrix", not log lines`},
		{"not loki", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>") }, "not a Loki query_range answer"},
		{"bad timestamp", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"streams","result":[{"stream":{},"values":[["soon","x"]]}]}}`)
		}, `timestamp "soon" is not nanoseconds since 1970`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			query := `{app="web"}`
			c := buildOne(t, logscanYAML(fmt.Sprintf(`{url: %q, query: '%s'}`, serve(t, tc.handler).URL, query), ""))
			wantOutcome(t, run(t, c, Input{}), Error, "the Loki API at ", tc.reason)
		})
	}
	c := buildOne(t, logscanYAML(fmt.Sprintf(`{url: %q, query: '{app="web"}'}`, closedURL(t)), ""))
	wantOutcome(t, run(t, c, Input{}), Error, "could not query Loki: ", "connection refused")
}

func TestParseLogTime(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	want := time.Date(2026, 11, 23, 10, 15, 4, 123_000_000, time.UTC)
	for _, line := range []string{
		"2026-11-23T10:15:04.123Z WARN x",
		"2026-11-23 10:15:04,123 +0000 WARN x",
		"2026-11-23T11:15:04.123+01:00 x",
		"[2026-11-23T10:15:04.123Z] x",
		`{"level":"warn","time":"2026-11-23T10:15:04.123Z","msg":"x"}`,
		`{"ts":1795428904.123,"msg":"x"}`,
		`time="2026-11-23T10:15:04.123Z" level=warning`,
		`level=warn ts=2026-11-23T10:15:04.123Z caller=pool.go:42 msg="leak"`,
		`level=warn msg="a quoted ts=2020-01-01T00:00:00Z is not the time" ts=2026-11-23T10:15:04.123Z`,
		`level=warn ts=1795428904.123 msg=x`,
		`{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1795428904123000","MESSAGE":"x"}`,
		`__REALTIME_TIMESTAMP=1795428904123000`,
		"2026-11-23T15:45:04.123+05:30 x",
		"2026-11-23 02:15:04,123 -0800 x",
		"2026-11-23T11:15:04.123+0100 x",
		"2026-11-23T11:15:04.123+01 x",
		"2026-11-23 07:15:04.123 -03 x",
		"2026-11-23T11:15:04.123+01",
		`{"time":"2026-11-23T11:15:04.123+01","msg":"x"}`,
		"<34>1 2026-11-23T11:15:04.123+01:00 host app - - - x",
		"<165>1 2026-11-23T10:15:04.123Z host app 1234 ID47 [exampleSDID@32473 iut=\"3\"] x",
	} {
		got, ok := ParseLogTime([]byte(line), now, time.UTC)
		if !ok || !got.Equal(want) {
			t.Errorf("%s: %v %v, want %v", line, got, ok, want)
		}
	}
	if got, ok := ParseLogTime([]byte("Nov 23 10:15:04 host app: x"), now, time.UTC); !ok || !got.Equal(want.Truncate(time.Second)) {
		t.Errorf("syslog: %v %v", got, ok)
	}
	if got, ok := ParseLogTime([]byte("<34>Nov 23 10:15:04 host app: x"), now, time.UTC); !ok || !got.Equal(want.Truncate(time.Second)) {
		t.Errorf("syslog with a priority (RFC 3164): %v %v", got, ok)
	}
	if got, ok := ParseLogTime([]byte("Dec 31 23:59:59 host app: x"), now, time.UTC); !ok || got.Year() != 2025 {
		t.Errorf("syslog from last year: %v %v", got, ok)
	}
	// Syslog has no year: in the first minutes of January, December's lines are last year's,
	// and January's this year's.
	newYear := time.Date(2027, 1, 1, 0, 5, 0, 0, time.UTC)
	if got, ok := ParseLogTime([]byte("Dec 31 23:59:58 host app: x"), newYear, time.UTC); !ok || !got.Equal(time.Date(2026, 12, 31, 23, 59, 58, 0, time.UTC)) {
		t.Errorf("syslog of December 31 read on January 1: %v %v", got, ok)
	}
	if got, ok := ParseLogTime([]byte("Jan  1 00:04:00 host app: x"), newYear, time.UTC); !ok || !got.Equal(time.Date(2027, 1, 1, 0, 4, 0, 0, time.UTC)) {
		t.Errorf("syslog of January 1: %v %v", got, ok)
	}
	// Not offsets vigil can be sure of: the time is read in loc, as without one.
	for _, line := range []string{"2026-11-23T10:15:04.123+012 x", "2026-11-23T10:15:04.123+15 x", "2026-11-23 10:15:04.123 Zurich"} {
		if got, ok := ParseLogTime([]byte(line), now, time.UTC); !ok || !got.Equal(want) {
			t.Errorf("%s: %v %v, want %v", line, got, ok, want)
		}
	}
	for _, line := range []string{"level=info msg=started", "MESSAGE=Possible connection leak detected", "count=3 t=5ms"} {
		if got, ok := ParseLogTime([]byte(line), now, time.UTC); ok {
			t.Errorf("%q parsed as %v", line, got)
		}
	}
	for _, line := range []string{"", "WARNING: no time", "2026-13-45T99:00:00Z", "\tat Pool.java:42", "<34>1 - host app - - - x", "<34>"} {
		if got, ok := ParseLogTime([]byte(line), now, time.UTC); ok {
			t.Errorf("%q parsed as %v", line, got)
		}
	}
}

// FuzzParseLogTime: any line either has no timestamp or one time.Date could build; never
// a panic, whatever the bytes.
func FuzzParseLogTime(f *testing.F) {
	for _, s := range []string{"2026-11-23T10:15:04.123Z x", "2026/11/23 10:15:04 x", "Nov 23 10:15:04 x",
		"[Mon Nov 23 10:15:04.123456 2026] x", `{"time":1795428904}`, "time=ts=t=2026-11-23 10:15:04 +01", "2026-11-23 10:15:04 -1",
		"<34>1 2026-11-23T10:15:04.123+01:00 host app - - - x", "<34>Nov 23 10:15:04 x", "2026-11-23T10:15:04+01", "2026-11-23T10:15:04-0930"} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, line []byte) {
		got, ok := ParseLogTime(line, now, time.UTC)
		if !ok && !got.IsZero() {
			t.Fatalf("no timestamp, yet %v", got)
		}
		if _, off := got.Zone(); off < -14*3600 || off > 14*3600 {
			t.Fatalf("%v: an offset no zone has", got)
		}
	})
}

// FuzzParseLokiResponse: any answer parses or is an error, never a panic.
func FuzzParseLokiResponse(f *testing.F) {
	f.Add([]byte(`{"status":"success","data":{"resultType":"streams","result":[{"stream":{"a":"b"},"values":[["1","x"],["2","y"]]}]}}`))
	f.Add([]byte(`{"status":"error","error":"too many"}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"streams","result":[{"values":[["1"]]}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		entries, err := ParseLokiResponse(body)
		if err != nil && entries != nil {
			t.Fatal("entries with an error")
		}
	})
}

// FuzzReadLines: readLines hands out every complete line once, in pieces none longer than
// logLineMax that make up the line, and consumes exactly the bytes up to the last newline
// (or a too-long tail), or with flush every byte.
func FuzzReadLines(f *testing.F) {
	f.Add([]byte("a\nb\r\nc"), false)
	f.Add([]byte("a\nb\r\nc"), true)
	f.Add([]byte(strings.Repeat("x", logLineMax+10)+"\nend\n"), false)
	f.Add([]byte("\n\n\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, flush bool) {
		var n int
		var got, line []byte
		consumed, err := readLines(strings.NewReader(string(data)), flush, func(piece []byte, end bool, _ int) {
			if len(piece) > logLineMax {
				t.Fatalf("a piece of %d bytes", len(piece))
			}
			line = append(line, piece...)
			if end {
				n++
				got = append(append(got, line...), '\n')
				line = line[:0]
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		last := strings.LastIndexByte(string(data), '\n') + 1
		if flush {
			last = len(data)
		}
		if consumed < int64(last) || consumed > int64(len(data)) {
			t.Fatalf("consumed %d of %d (last newline ends at %d)", consumed, len(data), last)
		}
		if want := strings.Count(string(data[:last]), "\n"); n < want {
			t.Fatalf("%d lines, want at least %d", n, want)
		}
		// The pieces make up the lines consumed, line ends aside.
		strip := func(b []byte) string { return strings.NewReplacer("\r", "", "\n", "").Replace(string(b)) }
		if len(line) > 0 || strip(got) != strip(data[:consumed]) {
			t.Fatalf("the pieces handed out are not the bytes consumed")
		}
	})
}
