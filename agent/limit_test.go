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

// acquireLater queues a function in turn with the goroutines waiting in acquire, and
// starts it holding the slot.
func TestLimitAcquireLaterTakesItsTurn(t *testing.T) {
	l := newLimit(1)
	if err := l.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 3)
	go func() {
		if l.acquire(context.Background()) == nil {
			order <- "waiter"
		}
	}()
	for func() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.waiters) }() == 0 {
		time.Sleep(time.Millisecond)
	}
	l.acquireLater(func() { order <- "later" })
	l.release() // to the goroutine that came first
	if got := <-order; got != "waiter" {
		t.Fatalf("first %q", got)
	}
	select {
	case got := <-order:
		t.Fatalf("%q ran with no slot free", got)
	case <-time.After(50 * time.Millisecond):
	}
	l.release()
	if got := <-order; got != "later" {
		t.Fatalf("second %q", got)
	}
	l.release()
	ran := make(chan struct{})
	l.acquireLater(func() { close(ran) }) // a free slot: at once
	<-ran
}
