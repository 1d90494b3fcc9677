package memlimit

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

// The lowest percentage, down to 50, at which the heap is collected about once a second
// at most; Go's 100 where even that collects more often, or before a collection.
func TestGCPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name       string
		live, rate uint64
		want       int
	}{
		{"no collection yet", 0, 10 * mib, 100},
		{"idle: 100 checks every 30 s", 5 * mib, 40 << 10, 50},
		{"1,000 checks every 10 s", 6 * mib, 1300 << 10, 50},
		{"1,000 checks a second on a small heap", 6 * mib, 13 * mib, 100},
		{"10,000 checks every 10 s", 35 * mib, 13 * mib, 50},
		{"between", 10 * mib, 7 * mib, 70},
		{"just over a half", 10 * mib, 5*mib + 1, 51},
	} {
		if got := GCPercent(c.live, c.rate); got != c.want {
			t.Errorf("%s: GCPercent(%d MiB live, %d KiB/s) = %d, want %d", c.name, c.live>>20, c.rate>>10, got, c.want)
		}
	}
}

// A percentage goes down at the first slow reading and up only when the rate has held for
// SustainFor readings: a burst (a scrape) leaves it where it was.
func TestPace(t *testing.T) {
	const mib = 1 << 20
	var p Pace
	step := func(rate uint64, want int) {
		t.Helper()
		if got, _ := p.Percent(8*mib, rate); got != want {
			t.Fatalf("reading %d (%d MiB/s on 8 MiB live): %d, want %d", p.n, rate>>20, got, want)
		}
	}
	for range SustainFor - 1 {
		step(64*mib, 50) // fast from the start: not yet sustained
	}
	step(64*mib, 100)
	step(64*mib, 100)
	step(1*mib, 50) // down at once
	for range SustainFor - 1 {
		step(64*mib, 50)
	}
	step(64*mib, 100)
	for range 3 { // a burst among slow readings
		step(0, 50)
		step(40*mib, 50)
	}
	if got, sustained := p.Percent(8*mib, 7*mib); got != 50 || sustained != 0 {
		t.Errorf("after the bursts: %d by %d B/s, want 50 by 0 (the slowest of the last %d)", got, sustained, SustainFor)
	}
}

// The pace sets the percentage once it has a rate and a live heap, again only when the
// readings move it, and ends with its context.
func TestPaceGC(t *testing.T) {
	const mib = 1 << 20
	type reading struct{ live, allocated uint64 }
	var mu sync.Mutex
	// Readings a tick apart, a millisecond or, on a busy machine, less (a tick missed is
	// delivered at once) or more: nothing allocated is slow, and 63 MiB is fast, however
	// long the tick.
	readings := []reading{
		{0, 0},               // the start: no collection yet
		{0, 1 * mib},         // still none: nothing set
		{8 * mib, 1 * mib},   // slow: 50
		{8 * mib, 1 * mib},   // the same: nothing new
		{8 * mib, 64 * mib},  // a burst: still 50
		{8 * mib, 64 * mib},  // slow
		{8 * mib, 127 * mib}, // fast, five times in a row: 100
		{8 * mib, 190 * mib},
		{8 * mib, 253 * mib},
		{8 * mib, 316 * mib},
		{8 * mib, 379 * mib},
		{8 * mib, 379 * mib}, // slow again: 50
	}
	last := readings[len(readings)-1]
	var set []int
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		PaceGC(ctx, time.Millisecond, func() (uint64, uint64) {
			mu.Lock()
			defer mu.Unlock()
			if len(readings) == 0 {
				return last.live, last.allocated
			}
			r := readings[0]
			readings = readings[1:]
			return r.live, r.allocated
		}, func(p int) {
			mu.Lock()
			defer mu.Unlock()
			set = append(set, p)
		}, nil)
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		n := len(readings)
		mu.Unlock()
		if n == 0 || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("PaceGC did not end with its context")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(set) != 3 || set[0] != 50 || set[1] != 100 || set[2] != 50 {
		t.Errorf("set %v, want [50 100 50]", set)
	}
}

// The heap's figures are read from the runtime.
func TestReadHeap(t *testing.T) {
	keep := make([]byte, 8<<20)
	runtime.GC()
	live, allocated := ReadHeap()
	if live < 8<<20 || allocated < live {
		t.Errorf("ReadHeap() = %d live, %d allocated with 8 MiB held", live, allocated)
	}
	runtime.KeepAlive(keep) // live through the collection
}
