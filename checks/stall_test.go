package checks

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// A service that hangs, asked by an agent that is held up while it waits: the test's own
// process is stopped (SIGSTOP, by a child process) for longer than the check's timeout, as
// a debugger, a VM snapshot or a CPU limit at its quota would hold it, and continued. The
// deadline passed with vigil not running, so the run is an error but not the service's
// silence: it cannot fail a deploy (README, "A service that stops answering after a
// deploy fails it"). The same hang with vigil running is (the control).
//
// Not parallel: the whole process stops, and a test running beside it would be held up
// too.
func TestHeldUpAgentIsNotTheServiceSilence(t *testing.T) {
	done := testDone(t)
	arrived := make(chan struct{}, 4)
	hung := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		hang(done)(w, r)
	}))
	c := buildOne(t, fmt.Sprintf("\nchecks:\n  - {name: api, kind: http, timeout: 1s, retries: 0, request: {url: %q}}\n", hung.URL+"/"))

	res := run(t, c, Input{})
	wantOutcome(t, res, Error, "timed out")
	if !res.NoAnswer {
		t.Fatalf("the control: a hang with vigil running is not marked as the service's silence: %q", res.Reasons)
	}
	<-arrived

	heldBefore := HeldUp()
	paused := make(chan error, 1)
	go func() {
		<-arrived
		// The child stops this process, sleeps past the 1 s deadline and continues it.
		cmd := exec.Command("sh", "-c", `kill -STOP "$1"; sleep 2; kill -CONT "$1"`, "sh", strconv.Itoa(os.Getpid()))
		paused <- cmd.Run()
	}()
	res = run(t, c, Input{})
	if err := <-paused; err != nil {
		t.Fatalf("pausing the process: %v", err)
	}
	wantOutcome(t, res, Error, "vigil itself was held up for ", "not counted as the service's silence")
	if res.NoAnswer {
		t.Errorf("a deadline passed while vigil was stopped is marked as the service's silence: %q", res.Reasons)
	}
	// The clock counts from the wake-up due in the stop, up to a tick after it began.
	if held := HeldUp() - heldBefore; held < 2*time.Second-stallTick-100*time.Millisecond {
		t.Errorf("HeldUp grew by %s over a stop of 2 s", held)
	}
	if res.Duration < 2*time.Second {
		t.Errorf("the run took %s; the process was stopped for 2 s during it", res.Duration)
	}
}

// heldUp counts the part of each late wake-up within the span asked, and the wake-up
// overdue at its end.
func TestHeldUpSpan(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	s := &stallClock{last: at(3000)}
	s.ring[0] = lateWake{at: at(1000), late: 500 * time.Millisecond} // held up 500-1000
	s.ring[1] = lateWake{at: at(2000), late: 100 * time.Millisecond} // 1900-2000
	s.next = 2
	for _, tc := range []struct {
		from, now int
		want      time.Duration
	}{
		{from: 0, now: 3000, want: 600 * time.Millisecond},
		{from: 800, now: 3000, want: 300 * time.Millisecond},                                     // the part of the first within
		{from: 1000, now: 3000, want: 100 * time.Millisecond},                                    // the first ended as the span began
		{from: 2500, now: 3100, want: 0},                                                         // the next wake-up is not overdue yet
		{from: 2500, now: 3700, want: 500 * time.Millisecond},                                    // overdue: due at 3200
		{from: 3500, now: 3700, want: 200 * time.Millisecond},                                    // only its part within
		{from: 0, now: 3000 + int(stallTick/time.Millisecond) + 1, want: 600 * time.Millisecond}, // within the noise
	} {
		if got := s.heldUp(at(tc.from), at(tc.now)); got != tc.want {
			t.Errorf("heldUp(%d, %d) = %s; want %s", tc.from, tc.now, got, tc.want)
		}
	}
}
