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
	waiters []chan struct{}
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
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, w := range l.waiters {
			if w == ch {
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
		close(l.waiters[0])
		l.waiters = l.waiters[1:]
	}
}
