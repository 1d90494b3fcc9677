package agent

import (
	"context"
	"sync"
)

// limit is a counting semaphore whose size can change while it is in use, so a reload can
// raise or lower agent.concurrency without waiting for a restart. Waiters are served in
// the order they came; lowering the size never interrupts a holder, it only admits no one
// until enough have released.
type limit struct {
	mu      sync.Mutex
	held    int
	max     int
	waiters []waiter
	workers workers // start acquireLater's functions
}

// waiter waits for a slot: a goroutine blocked on ch, or fn to start holding the slot.
type waiter struct {
	ch chan struct{}
	fn func()
}

func newLimit(n int) *limit { return &limit{max: max(1, n)} }

// acquire takes a slot, waiting for one until ctx ends.
func (l *limit) acquire(ctx context.Context) error {
	l.mu.Lock()
	if l.held < l.max && len(l.waiters) == 0 {
		l.held++
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	l.waiters = append(l.waiters, waiter{ch: ch})
	l.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, w := range l.waiters {
			if w.ch == ch {
				l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
				return ctx.Err()
			}
		}
		// Granted a slot while giving up: hand it on.
		l.held--
		l.grant()
		return ctx.Err()
	}
}

// acquireLater takes a slot for fn without waiting for it: fn starts on a worker goroutine
// (see workers), holding the slot, as soon as one is free (at once when one is), in turn
// with the goroutines waiting in acquire. A run waiting for a slot is then a closure in a
// queue, not a parked goroutine and its stack. fn must release the slot.
func (l *limit) acquireLater(fn func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held < l.max && len(l.waiters) == 0 {
		l.held++
		l.workers.run(fn)
		return
	}
	l.waiters = append(l.waiters, waiter{fn: fn})
}

// release gives a slot back.
func (l *limit) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held--
	l.grant()
}

// setLimit changes the size; new room goes to the waiters at once.
func (l *limit) setLimit(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.max = max(1, n)
	l.grant()
}

// limit is the size in force.
func (l *limit) limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.max
}

// grant admits waiters while there is room; l.mu is held.
func (l *limit) grant() {
	for l.held < l.max && len(l.waiters) > 0 {
		l.held++
		if w := l.waiters[0]; w.fn != nil {
			l.workers.run(w.fn)
		} else {
			close(w.ch)
		}
		l.waiters[0] = waiter{}
		l.waiters = l.waiters[1:]
	}
}
