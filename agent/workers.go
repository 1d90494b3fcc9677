package agent

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// workers runs functions on goroutines kept for the next one. A check's run grows its
// goroutine's stack to what an HTTP round trip, an assertion and a retry loop need; on a
// new goroutine per run, the runtime copied that stack up from its starting size every
// time (about 5% of the agent's CPU at 1,000 checks a second). A worker idle for
// workerIdle ends, so an agent that stopped, or whose checks are few, keeps none.
// The zero value is ready to use.
type workers struct {
	mu      sync.Mutex
	idle    []chan func() // the parked workers, the one parked last at the end
	idleFor time.Duration // 0: workerIdle
}

// workerIdle is how long a worker waits for its next function before it ends.
const workerIdle = 10 * time.Second

// run runs fn on a parked worker, or on a new one when none is parked. It does not wait.
func (w *workers) run(fn func()) {
	w.mu.Lock()
	if n := len(w.idle); n > 0 {
		ch := w.idle[n-1] // the one parked last: its stack is the likeliest to be warm
		w.idle = w.idle[:n-1]
		w.mu.Unlock()
		ch <- fn // buffered: a worker leaves the list only with room for one function
		return
	}
	w.mu.Unlock()
	go w.work(fn)
}

// work runs fn and then each function handed to it, until it has idled workerIdle.
func (w *workers) work(fn func()) {
	ch := make(chan func(), 1)
	idleFor := cmp.Or(w.idleFor, workerIdle)
	idle := time.NewTimer(idleFor)
	defer idle.Stop()
	for {
		fn()
		fn = nil // let what the function held go while the worker waits
		w.mu.Lock()
		w.idle = append(w.idle, ch)
		w.mu.Unlock()
		idle.Reset(idleFor)
		select {
		case fn = <-ch:
			continue
		case <-idle.C:
		}
		w.mu.Lock()
		i := slices.Index(w.idle, ch)
		if i >= 0 {
			w.idle = slices.Delete(w.idle, i, i+1)
		}
		w.mu.Unlock()
		if i >= 0 {
			return
		}
		fn = <-ch // taken from the list as the timer fired: its function is on the way
	}
}
