package checks

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestSLACutByMaxDurationIsNotAnError: a healthy service that answers every request in
// 100 ms (the first, cold, in 400 ms) is asked for more requests than max_duration leaves
// time for. The requests still in flight when vigil's own burst ends were cut by vigil,
// not timed out by the service: they are left out, and error_rate stays 0. A request cut
// after waiting longer than every answered one still counts as a timeout (TestSLABounded).
func TestSLACutByMaxDurationIsNotAnError(t *testing.T) {
	var n atomic.Int64
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := 100 * time.Millisecond
		if n.Add(1) == 1 {
			d = 400 * time.Millisecond
		}
		select {
		case <-time.After(d):
			fmt.Fprintln(w, "ok")
		case <-r.Context().Done():
		}
	}))
	res := run(t, buildOne(t, slaYAML(srv.URL, 500, 4, "    max_duration: 1s\n    assert: [\"error_rate == 0\"]")), Input{})
	wantOutcome(t, res, Pass)
	st := res.Vars["statuses"].(map[string]int)
	if st["timeout"] != 0 || st["error"] != 0 || st["200"] == 0 {
		t.Fatalf("statuses %v: want only 200s", st)
	}
	if got := res.Vars["requests"].(int); got >= 500 || got != st["200"] {
		t.Fatalf("requests = %d with statuses %v: want the answered ones only", got, st)
	}
	all := strings.Join(res.Transcript, "\n")
	for _, want := range []string{"of 500 requests sent before max_duration 1s", "left out"} {
		if !strings.Contains(all, want) {
			t.Fatalf("transcript lacks %q:\n%s", want, all)
		}
	}
}

// TestSLAFewSamplesSayWhatAPercentileIs: nearest-rank p99 of 20 requests is the slowest of
// them, so one slow request (a cold cache, a GC pause) decides `p99_ms < 200`. The result
// still fails, as the assertion asks, but the reason says that p99 here is one request, so
// nobody reads it as "1% of requests were slow".
func TestSLAFewSamplesSayWhatAPercentileIs(t *testing.T) {
	var n atomic.Int64
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			time.Sleep(300 * time.Millisecond)
		}
		fmt.Fprintln(w, "ok")
	}))
	res := run(t, buildOne(t, slaYAML(srv.URL, 20, 2, `    assert: ["p99_ms < 200", "p50_ms < 200"]`)), Input{})
	wantOutcome(t, res, Fail, "p99_ms < 200 is false", "p99 of fewer than 100 requests is the slowest one: 1 of 20 decides it")
}
