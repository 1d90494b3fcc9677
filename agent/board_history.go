package agent

// Reading the store's history into the uptime board at start: the runs before this agent
// began recording, read in five-minute slices newest first while the checks already run.
// Until the board holds a window's whole history, the figures of that window say so.

import (
	"context"
	"math"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// readFrom sets how far back the board holds every run, and whether it is still reading.
func (bd *board) readFrom(from int64, reading bool) {
	bd.mu.Lock()
	defer bd.mu.Unlock()
	bd.from, bd.reading = from, reading
}

// seed counts the store's runs in location started in [now - 7 d, until): the history
// before this agent started recording, as seen from where it runs (agents in other
// locations share a PostgreSQL store; the agent counts its own runs from until on, as
// they happen). It is read in five-minute slices, newest first (the last hour and day
// fill first), back to the oldest stored run, each slice counted into all three rings
// (half-hour and six-hour buckets are whole numbers of five-minute ones), with a pause as
// long as each seedBurst of reading: an agent restarted on a store of a million runs or
// more reads them once, at most half a core, while its checks run beside it (reading them
// once per ring, at once, took most of the machine for half a minute, and the checks
// started late or not at all).
func (bd *board) seed(ctx context.Context, st statusStore, location string, now, until time.Time) error {
	oldest := now.Add(-ringWindow[weekRing] - weekWidth)
	bd.readFrom(until.UnixNano(), true)
	// Nothing is read from before the first run (a new store: nothing at all).
	first, stored, err := st.FirstRun(ctx)
	switch {
	case err != nil:
		return err
	case !stored:
		oldest = until
	case first.After(oldest):
		oldest = first.Add(-1) // the slice holding first is read
	}
	complete := false
	defer func() { bd.finish(complete) }()
	fold, pace := bd.folder(now), pacer{}
	for hi := until; hi.After(oldest); {
		lo := hi.Truncate(hourWidth)
		if !lo.Before(hi) {
			lo = hi.Add(-hourWidth)
		}
		began := time.Now()
		if err := st.RunBuckets(ctx, location, lo, hi, hourWidth, fold); err != nil {
			return err
		}
		hi = lo
		bd.readFrom(lo.UnixNano(), true)
		if err := pace.after(ctx, began); err != nil {
			return err
		}
	}
	complete = true
	return nil
}

// finish ends a reading of the store's history: the board holds every run when it was
// complete, else from where it got to.
func (bd *board) finish(complete bool) {
	bd.mu.Lock()
	defer bd.mu.Unlock()
	bd.reading = false
	if complete {
		bd.from = math.MinInt64
	}
}

// folder returns what counts a row of five-minute buckets into the three rings, those of
// its buckets in the windows as of now.
func (bd *board) folder(now time.Time) func(store.BucketRow) {
	var since [3]int64 // each ring's oldest bucket
	for r, width := range ringWidth {
		since[r] = now.Add(-ringWindow[r]-width).UnixNano() / int64(width)
	}
	return func(row store.BucketRow) {
		one := boardRuns{}
		one.runs[outcomeIndex(row.Outcome)] = uint32(max(0, row.Runs))
		one.sumMS = float32(row.Sum.Microseconds()) / 1000
		one.maxMS = float32(row.Max.Microseconds()) / 1000
		bd.mu.Lock()
		defer bd.mu.Unlock()
		cb := bd.check(row.Check)
		for r, width := range ringWidth {
			if n := row.Bucket / int64(width/hourWidth); n >= since[r] {
				cb.put(r, n*int64(width), 0, one)
			}
		}
	}
}

// pacer keeps a reading of the store to half a core: after every seedBurst of reading it
// pauses as long as it read.
type pacer struct{ busy time.Duration }

// after counts a read begun at began, and pauses when it is time to.
func (p *pacer) after(ctx context.Context, began time.Time) error {
	if p.busy += time.Since(began); p.busy < seedBurst {
		return nil
	}
	pause := time.NewTimer(p.busy)
	defer pause.Stop()
	p.busy = 0
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-pause.C:
		return nil
	}
}

// seedBurst is how long seed reads before it pauses as long: a small store's week is read
// in a burst or two, a large store's at half a core.
const seedBurst = 20 * time.Millisecond

// coverage says which windows (hour, day, week) as of ns start before the instant from
// which the board holds every run, that instant (zero when none does) and whether the
// board is still reading the store's history. bd.mu is held.
func (bd *board) coverage(ns int64) (partial [3]bool, from time.Time, reading bool) {
	if bd.from == math.MinInt64 {
		return partial, from, false
	}
	for r, width := range ringWidth {
		first := ns/int64(width) - int64(ringWindow[r]/width) + 1 // the window's first bucket
		partial[r] = first*int64(width) < bd.from
	}
	if partial != [3]bool{} {
		from, reading = time.Unix(0, bd.from).UTC(), bd.reading
	}
	return partial, from, reading
}

// history is the board's coverage as of now, as checkStats' Partial, From and Reading.
func (bd *board) history(now time.Time) (st checkStats) {
	bd.mu.RLock()
	defer bd.mu.RUnlock()
	st.Partial, st.From, st.Reading = bd.coverage(now.UnixNano())
	return st
}
