package memlimit

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Go's default while the live heap is small, then the share the headroom is of it, down
// to 50.
func TestGCPercent(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 100},
		{4 << 20, 100},
		{16 << 20, 100},
		{16<<20 + 1, 99},
		{20 << 20, 80},
		{32 << 20, 50},
		{35 << 20, 50},
		{1 << 40, 50},
	} {
		if got := GCPercent(c.live); got != c.want {
			t.Errorf("GCPercent(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

// The pace sets the percentage at once, again when the live heap moves it, not when it
// does not, sets nothing before the first collection (a reading of 0), and ends with its
// context.
func TestPaceGC(t *testing.T) {
	var mu sync.Mutex
	readings := []uint64{0, 8 << 20, 0, 9 << 20, 40 << 20, 40 << 20, 20 << 20}
	var set, told []int
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		PaceGC(ctx, time.Millisecond, func() uint64 {
			mu.Lock()
			defer mu.Unlock()
			if len(readings) == 0 {
				return 20 << 20
			}
			r := readings[0]
			readings = readings[1:]
			return r
		}, func(p int) {
			mu.Lock()
			defer mu.Unlock()
			set = append(set, p)
		}, func(p int, _ uint64) {
			mu.Lock()
			defer mu.Unlock()
			told = append(told, p)
		})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(readings)
		mu.Unlock()
		if n == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("PaceGC did not end with its context")
	}
	mu.Lock()
	defer mu.Unlock()
	want := []int{100, 50, 80}
	if len(set) != len(want) || set[0] != 100 || set[1] != 50 || set[2] != 80 {
		t.Errorf("set %v, want %v", set, want)
	}
	if len(told) != len(set) {
		t.Errorf("told %v of %v", told, set)
	}
}

// The live heap is read from the runtime.
func TestLiveHeap(t *testing.T) {
	keep := make([]byte, 8<<20)
	runtime.GC()
	if got := LiveHeap(); got < 8<<20 {
		t.Errorf("LiveHeap() = %d with 8 MiB held", got)
	}
	_ = keep[len(keep)-1]
}
