package checks

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
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

// Loki's query frontend answers 429 "too many outstanding requests" when a tenant's queue
// is full, and 503 while a querier restarts: one such answer made the run an error.
// vigil asks again within the run's deadline: after the Retry-After when it fits, else
// after a short backoff.
func TestLogscanLokiRateLimited(t *testing.T) {
	loki := &lokiServer{}
	deploy := time.Now().Add(-time.Minute)
	for i := range 5 {
		loki.push(map[string]string{"app": "web"}, deploy.Add(time.Duration(i+1)*time.Second), "WARNING: Possible connection leak detected")
	}
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter string
		want       string
	}{
		{"429 with Retry-After", http.StatusTooManyRequests, "1", "Loki answered 429 (Loki's rate limit: it refused the query as one too many): asked again after 1s, as its Retry-After asks"},
		{"503", http.StatusServiceUnavailable, "", "Loki answered 503 (Loki unavailable): asked again after "},
		{"429 with a Retry-After past the deadline", http.StatusTooManyRequests, "3600", "its Retry-After (1h0m0s) ends too close to the run's deadline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked atomic.Int32
			srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if asked.Add(1) == 1 {
					if tc.retryAfter != "" {
						w.Header().Set("Retry-After", tc.retryAfter)
					}
					http.Error(w, "too many outstanding requests", tc.status)
					return
				}
				loki.ServeHTTP(w, r)
			}))
			c := buildOne(t, logscanYAML(fmt.Sprintf(`{url: %q, query: '{app="web"}'}`, srv.URL), ""))
			res := run(t, c, Input{Since: deploy})
			wantOutcome(t, res, Fail, "matches = 5 ")
			if tr := strings.Join(res.Transcript, "\n"); !strings.Contains(tr, tc.want) {
				t.Fatalf("the transcript lacks %q:\n%s", tc.want, tr)
			}
			if n := asked.Load(); n != 2 {
				t.Fatalf("Loki was asked %d times, want 2", n)
			}
		})
	}
}

// A Loki that answers 429 (or 503) every time: vigil asks again until the run's deadline
// leaves no room for another attempt, then the run is an error that names Loki's rate
// limit (or Loki unavailable), not a deadline passed.
func TestLogscanLokiAlwaysRateLimited(t *testing.T) {
	for status, why := range map[int]string{
		http.StatusTooManyRequests:    "answered 429 (Loki's rate limit: it refused the query as one too many), asked ",
		http.StatusServiceUnavailable: "answered 503 (Loki unavailable), asked ",
	} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			var asked atomic.Int32
			srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				asked.Add(1)
				w.Header().Set("Retry-After", "1")
				http.Error(w, "too many outstanding requests", status)
			}))
			c := buildOne(t, strings.Replace(logscanYAML(fmt.Sprintf(`{url: %q, query: '{app="web"}'}`, srv.URL), ""), "timeout: 10s", "timeout: 3s", 1))
			done := make(chan *Result, 1)
			go func() { done <- c.Run(context.Background(), Input{}) }()
			var res *Result
			select {
			case res = <-done:
			case <-time.After(time.Minute):
				t.Fatal("the run did not end within a minute; its timeout is 3s")
			}
			t.Logf("%s: %s %v (%s)", c.Name, res.Outcome, res.Reasons, res.Duration.Round(time.Millisecond))
			wantOutcome(t, res, Error, "the Loki API at ", why, "too many outstanding requests", "give the check a longer timeout")
			if n := asked.Load(); n < 2 {
				t.Fatalf("Loki was asked %d times: not again", n)
			}
		})
	}
}
