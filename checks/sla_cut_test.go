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
