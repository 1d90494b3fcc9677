package agent

import (
	"context"
	"testing"
	"time"
)

// A limit admits up to its size, serves waiters in order, grows and shrinks while in use,
// and gives up a wait when its context ends.
func TestLimit(t *testing.T) {
	ctx := context.Background()
	l := newLimit(1)
	if err := l.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 3)
	for i := range 2 {
		go func() {
			if l.acquire(ctx) == nil {
				got <- i
			}
		}()
		time.Sleep(20 * time.Millisecond) // queue them in order
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if err := l.acquire(short); err == nil {
		t.Fatal("a full limit admitted a third holder")
	}
	l.setLimit(2) // room for the first waiter
	if first := <-got; first != 0 {
		t.Errorf("waiter %d went first", first)
	}
	l.setLimit(1) // holders keep their slots; nobody new until two release
	l.release()
	select {
	case i := <-got:
		t.Errorf("waiter %d admitted over the lowered limit", i)
	case <-time.After(50 * time.Millisecond):
	}
	l.release()
	if second := <-got; second != 1 {
		t.Errorf("waiter %d went second", second)
	}
	if l.limit() != 1 {
		t.Errorf("limit %d", l.limit())
	}
}
