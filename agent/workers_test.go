package agent

import (
	"bytes"
	"runtime"
	"sync"
	"testing"
	"time"
)

// goroutineID is the running goroutine's number, from its stack trace's first line.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	return string(bytes.Fields(buf)[1])
}

func (w *workers) parked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.idle)
}

// Functions run one after another reuse one goroutine; functions running at once each have
// their own; a worker idle past its time ends.
func TestWorkers(t *testing.T) {
	w := &workers{idleFor: 200 * time.Millisecond}
	seen := map[string]bool{}
	for range 50 {
		done := make(chan string)
		w.run(func() { done <- goroutineID() })
		seen[<-done] = true
		eventually(t, 10*time.Second, "the worker to park", func() bool { return w.parked() == 1 })
	}
	if len(seen) != 1 {
		t.Errorf("50 functions one after another ran on %d goroutines; want one, reused", len(seen))
	}

	release := make(chan struct{})
	var mu sync.Mutex
	ids := map[string]bool{}
	var started sync.WaitGroup
	for range 10 {
		started.Add(1)
		w.run(func() {
			mu.Lock()
			ids[goroutineID()] = true
			mu.Unlock()
			started.Done()
			<-release
		})
	}
	started.Wait() // ten at once: none waits for another
	close(release)
	if len(ids) != 10 {
		t.Errorf("ten functions at once ran on %d goroutines", len(ids))
	}
	eventually(t, 10*time.Second, "the ten workers to park", func() bool { return w.parked() == 10 })
	eventually(t, 10*time.Second, "idle workers to end", func() bool { return w.parked() == 0 })

	// Workers whose time runs out as they are handed a function run it: functions handed
	// around a 1ms idle time, every one of them runs.
	w = &workers{idleFor: time.Millisecond}
	var ran sync.WaitGroup
	for i := range 2000 {
		ran.Add(1)
		w.run(ran.Done)
		time.Sleep(time.Duration(i%3) * 500 * time.Microsecond)
	}
	all := make(chan struct{})
	go func() { ran.Wait(); close(all) }()
	select {
	case <-all:
	case <-time.After(time.Minute): // lost, not slow
		t.Fatal("a function handed to a worker whose time ran out never ran")
	}
}
