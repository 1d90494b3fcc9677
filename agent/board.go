package agent

// The uptime board: every check's runs counted by outcome, with their durations, in time
// buckets kept in memory — five-minute buckets for the last day (the bars, uptime over 1 h
// and 24 h) and hourly ones for the last week (uptime over 7 d). The status page and the
// badges read it without a query, so a page of a thousand checks costs what rendering it
// costs. It starts from the store's history (one grouped query at start, off the request
// path) and follows every run this agent records after that.

import (
	"context"
	"sync"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/store"
)

const (
	fineWidth    = 5 * time.Minute
	fineSlots    = 24*12 + 1 // a day of five-minute buckets, and the one in progress
	coarseWidth  = time.Hour
	coarseSlots  = 7*24 + 1 // a week of hourly buckets, and the one in progress
	barWidth     = 30 * time.Minute
	barsShown    = 48 // a day of half-hour bars
	finePerBar   = int64(barWidth / fineWidth)
	outcomeCount = 4
)

// outcomeIndex orders outcomes in a bucket's counts.
func outcomeIndex(o string) int {
	switch checks.Outcome(o) {
	case checks.Pass:
		return 0
	case checks.Fail:
		return 1
	case checks.Error:
		return 2
	default:
		return 3
	}
}

// tally is the runs of one bucket (or of several, added up).
type bucket struct {
	num   int64 // the bucket's number: start / width since the Unix epoch; 0 is empty
	runs  [outcomeCount]uint32
	sumMS float64
	maxMS float64
}

func (b *bucket) add(o bucket) {
	for i := range b.runs {
		b.runs[i] += o.runs[i]
	}
	b.sumMS += o.sumMS
	b.maxMS = max(b.maxMS, o.maxMS)
}

func (b *bucket) total() uint32 { return b.runs[0] + b.runs[1] + b.runs[2] + b.runs[3] }

// judged counts the runs that answered or could not measure: inconclusive runs do not
// count for or against uptime.
func (b *bucket) judged() uint32 { return b.runs[0] + b.runs[1] + b.runs[2] }

type checkBoard struct {
	fine   [fineSlots]bucket
	coarse [coarseSlots]bucket
}

// slot returns the bucket of ring for number n, emptied when it held an older number. A
// number older than the ring's newest minus its size is not kept.
func slot(ring []bucket, n int64) *bucket {
	b := &ring[n%int64(len(ring))]
	if b.num != n {
		if b.num > n {
			return nil
		}
		*b = bucket{num: n}
	}
	return b
}

type board struct {
	mu     sync.RWMutex
	checks map[string]*checkBoard
}

func newBoard() *board { return &board{checks: map[string]*checkBoard{}} }

func (bd *board) check(name string) *checkBoard {
	cb := bd.checks[name]
	if cb == nil {
		cb = &checkBoard{}
		bd.checks[name] = cb
	}
	return cb
}

// add counts one run.
func (bd *board) add(check string, started time.Time, d time.Duration, outcome checks.Outcome) {
	one := bucket{}
	one.runs[outcomeIndex(string(outcome))] = 1
	ms := float64(d.Microseconds()) / 1000
	one.sumMS, one.maxMS = ms, ms
	bd.mu.Lock()
	defer bd.mu.Unlock()
	cb := bd.check(check)
	ns := started.UnixNano()
	if b := slot(cb.fine[:], ns/int64(fineWidth)); b != nil {
		b.add(one)
	}
	if b := slot(cb.coarse[:], ns/int64(coarseWidth)); b != nil {
		b.add(one)
	}
}

// seed counts the store's runs started in [now - 7 d, until): the history before this
// agent started recording. Runs from until on are added as they happen.
func (bd *board) seed(ctx context.Context, st *store.SQLite, now, until time.Time) error {
	into := func(fine bool) func(store.BucketRow) {
		return func(r store.BucketRow) {
			one := bucket{}
			one.runs[outcomeIndex(r.Outcome)] = uint32(r.Runs)
			one.sumMS = float64(r.Sum.Microseconds()) / 1000
			one.maxMS = float64(r.Max.Microseconds()) / 1000
			bd.mu.Lock()
			defer bd.mu.Unlock()
			cb := bd.check(r.Check)
			ring := cb.coarse[:]
			if fine {
				ring = cb.fine[:]
			}
			if b := slot(ring, r.Bucket); b != nil {
				b.add(one)
			}
		}
	}
	if err := st.RunBuckets(ctx, now.Add(-24*time.Hour-fineWidth), until, fineWidth, into(true)); err != nil {
		return err
	}
	return st.RunBuckets(ctx, now.Add(-7*24*time.Hour-coarseWidth), until, coarseWidth, into(false))
}

// checkStats is what the status page shows of a check's history.
type checkStats struct {
	// Bars are the last day in half-hour bars, oldest first; Start is the first bar's start.
	Bars  [barsShown]bucket
	Start time.Time
	// Day, Hour and Week add up the last 24 h, the last hour (to five minutes) and the last
	// seven days (to the hour).
	Hour, Day, Week bucket
}

// stats reads a check's history as of now; ok is false when it has no run in the last week.
func (bd *board) stats(name string, now time.Time) (st checkStats, ok bool) {
	bd.mu.RLock()
	defer bd.mu.RUnlock()
	cb := bd.checks[name]
	ns := now.UnixNano()
	lastBar := ns / int64(barWidth)
	firstBar := lastBar - barsShown + 1
	st.Start = time.Unix(0, firstBar*int64(barWidth)).UTC()
	if cb == nil {
		return st, false
	}
	nowFine := ns / int64(fineWidth)
	hourFrom := nowFine - int64(time.Hour/fineWidth) + 1
	dayFrom := nowFine - int64(24*time.Hour/fineWidth) + 1
	for i := range cb.fine {
		b := &cb.fine[i]
		if b.num == 0 || b.num > nowFine {
			continue
		}
		if b.num >= dayFrom {
			st.Day.add(*b)
		}
		if b.num >= hourFrom {
			st.Hour.add(*b)
		}
		if bar := b.num/finePerBar - firstBar; bar >= 0 && bar < barsShown {
			st.Bars[bar].add(*b)
		}
	}
	nowCoarse := ns / int64(coarseWidth)
	weekFrom := nowCoarse - int64(7*24*time.Hour/coarseWidth) + 1
	for i := range cb.coarse {
		b := &cb.coarse[i]
		if b.num >= weekFrom && b.num <= nowCoarse {
			st.Week.add(*b)
		}
	}
	for i := range st.Bars {
		st.Bars[i].num = firstBar + int64(i)
	}
	return st, st.Week.total() > 0 || st.Day.total() > 0
}
