package agent

// The uptime board: every check's runs counted by outcome, with their durations, in time
// buckets kept in memory: five-minute buckets for the last hour, half-hour ones for the
// last day (the bars, uptime over 24 h) and six-hour ones for the last week (uptime over
// 7 d). The status page and the badges read it without a query, so a page of a thousand
// checks costs what rendering it costs. It starts from the store's history (one grouped
// query per ring at start, off the request path) and follows every run this agent records
// after that. A check's rings are fixed arrays of compact buckets, about 1.8 KiB however
// often it runs, so that ten thousand checks fit in a small agent.

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/store"
)

const (
	hourWidth    = 5 * time.Minute
	hourSlots    = 12 + 1 // an hour of five-minute buckets, and the one in progress
	dayWidth     = 30 * time.Minute
	daySlots     = 48 + 1 // a day of half-hour buckets (the bars), and the one in progress
	weekWidth    = 6 * time.Hour
	weekSlots    = 7*4 + 1 // a week of six-hour buckets, and the one in progress
	barWidth     = dayWidth
	barsShown    = 48 // a day of half-hour bars
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

// bucket is the runs of one ring bucket: 20 bytes. Its counts saturate at 65,535, more
// than six hours of a check every second (the shortest `every`) and its deploy
// verifications make.
type bucket struct {
	num   int32 // the bucket's number: start / width since the Unix epoch; 0 is empty
	runs  [outcomeCount]uint16
	sumMS float32
	maxMS float32
}

// runTotals is buckets added up: a window, a bar.
type runTotals struct {
	num   int32
	runs  [outcomeCount]uint32
	sumMS float32
	maxMS float32
}

func (b *bucket) add(o bucket) {
	for i := range b.runs {
		b.runs[i] = uint16(min(uint32(b.runs[i])+uint32(o.runs[i]), math.MaxUint16))
	}
	b.sumMS += o.sumMS
	b.maxMS = max(b.maxMS, o.maxMS)
}

func (t *runTotals) add(b bucket) {
	for i := range t.runs {
		t.runs[i] += uint32(b.runs[i])
	}
	t.sumMS += b.sumMS
	t.maxMS = max(t.maxMS, b.maxMS)
}

func (t *runTotals) total() uint32 { return t.runs[0] + t.runs[1] + t.runs[2] + t.runs[3] }

// avgMS is the mean duration of the runs in milliseconds; 0 when there are none.
func (t *runTotals) avgMS() float64 {
	if n := t.total(); n > 0 {
		return float64(t.sumMS) / float64(n)
	}
	return 0
}

// judged counts the runs that answered or could not measure: inconclusive runs do not
// count for or against uptime.
func (t *runTotals) judged() uint32 { return t.runs[0] + t.runs[1] + t.runs[2] }

type checkBoard struct {
	hour [hourSlots]bucket
	day  [daySlots]bucket
	week [weekSlots]bucket
}

// rings are a check's rings with their bucket widths.
func (cb *checkBoard) rings() [3]ring {
	return [3]ring{{cb.hour[:], hourWidth}, {cb.day[:], dayWidth}, {cb.week[:], weekWidth}}
}

type ring struct {
	buckets []bucket
	width   time.Duration
}

// slot returns the bucket of the ring for the time ns, emptied when it held an older
// number. A time older than the ring's newest bucket minus its size is not kept.
func (r ring) slot(ns int64) *bucket {
	n := int32(ns / int64(r.width))
	b := &r.buckets[int(n)%len(r.buckets)]
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
	ms := float32(d.Microseconds()) / 1000
	one.sumMS, one.maxMS = ms, ms
	bd.mu.Lock()
	defer bd.mu.Unlock()
	ns := started.UnixNano()
	for _, r := range bd.check(check).rings() {
		if b := r.slot(ns); b != nil {
			b.add(one)
		}
	}
}

// seed counts the store's runs started in [now - 7 d, until): the history before this
// agent started recording. Runs from until on are added as they happen.
func (bd *board) seed(ctx context.Context, st statusStore, now, until time.Time) error {
	for i, width := range []time.Duration{hourWidth, dayWidth, weekWidth} {
		since := now.Add(-[]time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}[i] - width)
		err := st.RunBuckets(ctx, since, until, width, func(r store.BucketRow) {
			one := bucket{}
			one.runs[outcomeIndex(r.Outcome)] = uint16(min(r.Runs, math.MaxUint16))
			one.sumMS = float32(r.Sum.Microseconds()) / 1000
			one.maxMS = float32(r.Max.Microseconds()) / 1000
			bd.mu.Lock()
			defer bd.mu.Unlock()
			rg := bd.check(r.Check).rings()[i]
			if b := rg.slot(r.Bucket * int64(width)); b != nil {
				b.add(one)
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// checkStats is what the status page shows of a check's history.
type checkStats struct {
	// Bars are the last day in half-hour bars, oldest first; Start is the first bar's start.
	Bars  [barsShown]runTotals
	Start time.Time
	// Hour, Day and Week add up the last hour (to five minutes), the last 24 h (to half an
	// hour) and the last seven days (to six hours).
	Hour, Day, Week runTotals
}

// stats reads a check's history as of now; ok is false when it has no run in the last week.
func (bd *board) stats(name string, now time.Time) (st checkStats, ok bool) {
	bd.mu.RLock()
	defer bd.mu.RUnlock()
	cb := bd.checks[name]
	ns := now.UnixNano()
	lastBar := int32(ns / int64(barWidth))
	firstBar := lastBar - barsShown + 1
	st.Start = time.Unix(0, int64(firstBar)*int64(barWidth)).UTC()
	for i := range st.Bars {
		st.Bars[i].num = firstBar + int32(i)
	}
	if cb == nil {
		return st, false
	}
	// sum adds up the buckets of r within the last runTotals, the one in progress included.
	sum := func(r ring, window time.Duration, into *runTotals, bars bool) {
		now := int32(ns / int64(r.width))
		from := now - int32(window/r.width) + 1
		for i := range r.buckets {
			b := &r.buckets[i]
			if b.num == 0 || b.num < from || b.num > now {
				continue
			}
			into.add(*b)
			if bars {
				st.Bars[b.num-firstBar].add(*b)
			}
		}
	}
	rings := cb.rings()
	sum(rings[0], time.Hour, &st.Hour, false)
	sum(rings[1], 24*time.Hour, &st.Day, true)
	sum(rings[2], 7*24*time.Hour, &st.Week, false)
	for i := range st.Bars {
		st.Bars[i].num = firstBar + int32(i)
	}
	return st, st.Week.total() > 0 || st.Day.total() > 0
}
