package store

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A lone write waits only for the writes that asked before it, however eagerly another
// writer begins again. SQLite's busy handler alone sleeps and polls, and lost every poll
// to a writer that begins its next transaction as it commits (the batch of runs under
// load): a run saved at once waited out the busy timeout and was refused.
func TestWritesTakeTurns(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "vigil.db"))
	ctx := context.Background()
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE turns (id INTEGER PRIMARY KEY, who TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	var committed atomic.Int64
	stop := make(chan struct{})
	eager := make(chan error, 1)
	go func() { // begins again as soon as it commits, holding each turn a little while
		for i := 0; i < 500; i++ {
			select {
			case <-stop:
				eager <- nil
				return
			default:
			}
			err := s.tx(ctx, func(tx *txn) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO turns(who) VALUES ('eager')`); err != nil {
					return err
				}
				time.Sleep(10 * time.Millisecond)
				return nil
			})
			if err != nil {
				eager <- err
				return
			}
			committed.Add(1)
		}
		eager <- errors.New("the lone write never got its turn in 500 transactions")
	}()
	for committed.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	for range 5 {
		before := committed.Load()
		if _, err := s.db.ExecContext(ctx, `INSERT INTO turns(who) VALUES ('lone')`); err != nil {
			t.Fatal(err)
		}
		// the transaction under way when it asked, and at most one that had begun waiting
		if waited := committed.Load() - before; waited > 2 {
			t.Errorf("the lone write waited for %d of the other writer's transactions; want at most 2", waited)
		}
	}
	close(stop)
	if err := <-eager; err != nil {
		t.Fatal(err)
	}
}

// The wait for a turn has a deadline, the caller's or the busy timeout, and a write that
// gave up leaves the turn to the others. Every wait is told to the observer, those given
// up included.
func TestWaitForATurnEnds(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "vigil.db"))
	ctx := context.Background()
	var mu sync.Mutex
	var waits []time.Duration
	s.ObserveWriteWaits(func(d time.Duration) {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
	})
	told := func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(waits)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.db.wait = 50 * time.Millisecond
	if err := s.Writable(ctx); err == nil || !strings.Contains(err.Error(), "waited 50ms for this agent's other writes") {
		t.Errorf("a write while another holds the turn: %v; want it to give up after the wait", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	s.db.wait = time.Hour
	if err := s.Writable(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("a write whose context ended while it waited: %v; want context.Canceled", err)
	}
	if w := told(); len(w) != 3 || w[0] != 0 || w[1] < 50*time.Millisecond || w[2] > time.Second {
		t.Errorf("waits told %v; want none for the transaction, at least 50ms for the write given up, none to a second for the cancelled one", w)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err == nil { // after Commit: ends nothing more
		t.Error("rolling back a committed transaction succeeded")
	}
	for range 3 { // the turn is free again, once for each
		if err := s.Writable(ctx); err != nil {
			t.Fatal(err)
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
}
