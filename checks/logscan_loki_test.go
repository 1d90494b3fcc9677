package checks

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A Loki whose max_entries_limit_per_query is below vigil's page of 1000 lines answers 400
// to every query vigil sent: the check was an error on every run. vigil pages by the
// limit the Loki names.
func TestLogscanLokiMaxEntriesLimit(t *testing.T) {
	loki := &lokiServer{maxEntries: 500}
	srv := serve(t, loki)
	deploy := time.Now().Add(-time.Minute)
	for i := range 1200 {
		loki.push(map[string]string{"app": "web"}, deploy.Add(time.Duration(i+1)*time.Millisecond), "WARNING: Possible connection leak detected "+strconv.Itoa(i))
	}
	c := buildOne(t, logscanYAML(fmt.Sprintf(`{url: %q, query: '{app="web"}'}`, srv.URL), ""))
	res := run(t, c, Input{Since: deploy})
	wantOutcome(t, res, Fail, "matches = 1200 ")
	if res.Vars["truncated"] != false {
		t.Fatalf("truncated = %v: every line was read", res.Vars["truncated"])
	}
	if tr := strings.Join(res.Transcript, "\n"); !strings.Contains(tr, "Loki answers at most 500 lines a query") {
		t.Fatalf("the transcript does not say why the pages are smaller: %s", tr)
	}
	qs := loki.seen()
	if got := qs[len(qs)-1].Get("limit"); got != "500" {
		t.Fatalf("the last page asked for %s lines", got)
	}
}

// A stack dump written as one line of 10 MB, the warning at its end: Loki's line filter
// matched it and sent it, and vigil matched only its first 64 KiB, counting nothing.
func TestLogscanLokiLongLine(t *testing.T) {
	loki := &lokiServer{}
	srv := serve(t, loki)
	loki.push(map[string]string{"app": "web"}, time.Now().Add(-time.Second),
		"java.lang.IllegalStateException: "+strings.Repeat("at com.example.Pool.borrow(Pool.java:42) ", 10<<20/41)+"WARNING: Possible connection leak detected")
	c := buildOne(t, logscanYAML(fmt.Sprintf(`{url: %q, query: '{app="web"}'}`, srv.URL), ""))
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "matches = 1 ")
	if s := res.Vars["samples"].([]string); len(s) != 1 || len(s[0]) > logSampleMax+40 {
		t.Fatalf("samples: %d, the first %d bytes long; want one, trimmed", len(s), len(s[0]))
	}
}

// Loki answers "success" with a top-level "warnings" list when it left part of the
// answer out. The matches are then a lower bound, and the run says why.
func TestLogscanLokiWarnings(t *testing.T) {
	loki := &lokiServer{warnings: []string{"query timed out, returning partial results"}}
	srv := serve(t, loki)
	loki.push(map[string]string{"app": "web"}, time.Now().Add(-time.Second), "WARNING: Possible connection leak detected")
	c := buildOne(t, logscanYAML(fmt.Sprintf(`{url: %q, query: '{app="web"}'}`, srv.URL), ""))
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "matches = 1 ", "a lower bound: Loki warned: query timed out, returning partial results")
	if res.Vars["truncated"] != true {
		t.Fatalf("truncated = %v", res.Vars["truncated"])
	}
}

// More lines at one nanosecond than a page holds: vigil steps past that nanosecond, and
// the lines after the first page's are never read. It said so in a note, yet truncated
// stayed false and matches was not called a lower bound.
func TestLogscanLokiPageAtOneTimestamp(t *testing.T) {
	loki := &lokiServer{}
	srv := serve(t, loki)
	deploy := time.Now().Add(-time.Minute)
	at := deploy.Add(time.Second)
	for i := range lokiPageLimit + 200 {
		loki.push(map[string]string{"app": "web", "pod": strconv.Itoa(i)}, at, "WARNING: Possible connection leak detected")
	}
	c := buildOne(t, logscanYAML(fmt.Sprintf(`{url: %q, query: '{app="web"}'}`, srv.URL), ""))
	res := run(t, c, Input{Since: deploy})
	wantOutcome(t, res, Fail, "matches = 1000 ", "a lower bound", "share one timestamp")
	if res.Vars["truncated"] != true {
		t.Fatalf("truncated = %v", res.Vars["truncated"])
	}
}

// source.headers and source.auth go with every page: a multi-tenant Loki wants
// X-Scope-OrgID, and one behind a proxy a bearer token.
func TestLogscanLokiHeadersAndAuth(t *testing.T) {
	loki := &lokiServer{}
	srv := serve(t, loki)
	deploy := time.Now().Add(-time.Minute)
	for i := range 1500 {
		loki.push(map[string]string{"app": "web"}, deploy.Add(time.Duration(i+1)*time.Millisecond), "Possible connection leak detected")
	}
	c := buildOne(t, logscanYAML(fmt.Sprintf(`{url: %q, query: '{app="web"}', headers: {X-Scope-OrgID: team-a}, auth: {bearer: s3cret}}`, srv.URL), ""))
	wantOutcome(t, run(t, c, Input{Since: deploy}), Fail, "matches = 1500 ")
	loki.mu.Lock()
	defer loki.mu.Unlock()
	if len(loki.headers) != 2 {
		t.Fatalf("%d pages asked for, want 2", len(loki.headers))
	}
	for i, h := range loki.headers {
		if h.Get("X-Scope-OrgID") != "team-a" || h.Get("Authorization") != "Bearer s3cret" {
			t.Fatalf("page %d: X-Scope-OrgID %q, Authorization %q", i, h.Get("X-Scope-OrgID"), h.Get("Authorization"))
		}
	}
}

// max_bytes bounds what one run downloads from Loki too: past it, matches is a lower bound.
func TestLogscanLokiMaxBytes(t *testing.T) {
	loki := &lokiServer{}
	srv := serve(t, loki)
	deploy := time.Now().Add(-time.Minute)
	for i := range 200 {
		loki.push(map[string]string{"app": "web"}, deploy.Add(time.Duration(i+1)*time.Millisecond), "WARNING: Possible connection leak detected "+strings.Repeat("x", 100))
	}
	c := buildOne(t, logscanYAML(fmt.Sprintf(`{url: %q, query: '{app="web"}'}`, srv.URL), "    max_bytes: 4096"))
	res := run(t, c, Input{Since: deploy})
	// The first page was cut before a line was read: matches is not measured, and a run
	// that asserts matches == 0 is inconclusive (it passed on a count of nothing).
	wantOutcome(t, res, Inconclusive, "no line was read within max_bytes")
	if res.Vars["truncated"] != true || res.Vars["bytes"].(int) > 4096 {
		t.Fatalf("truncated %v, bytes %v", res.Vars["truncated"], res.Vars["bytes"])
	}
	if tr := strings.Join(res.Transcript, "\n"); !strings.Contains(tr, "stopped at max_bytes (4096) of Loki answers") {
		t.Fatalf("transcript: %s", tr)
	}
}
