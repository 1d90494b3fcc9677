package agent

// The uptime board: every check's runs counted by outcome, with their durations, in time
// buckets kept in memory: five-minute buckets for the last hour, half-hour ones for the
// last day (the bars, uptime over 24 h) and six-hour ones for the last week (uptime over
// 7 d). The status page and the badges read it without a query, so a page of a thousand
// checks costs what rendering it costs. It starts from the store's history (one grouped
// query per ring at start, off the request path) and follows every run this agent records
// after that. A check's rings are fixed arrays of compact buckets, 1.3 KB however
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

// slotRuns is the runs of one bucket of the hour and week rings: 12 bytes. Its counts
// saturate at 65,535, more than six hours of a check every second (the shortest `every`)
// and its deploy verifications make.
type slotRuns struct {
	runs  [outcomeCount]uint16
	sumMS float32
}

// bar is a bucket of the day ring, whose buckets are the status page's bars: a slotRuns and
// the slowest run, 16 bytes.
type bar struct {
	slotRuns
	maxMS float32
}

// runTotals is buckets added up: a window, a bar.
type runTotals struct {
	num   int32
	runs  [outcomeCount]uint32
	sumMS float32
	maxMS float32 // of bars (the day ring) only
}

func (t *slotRuns) add(o slotRuns) {
	for i := range t.runs {
		t.runs[i] = uint16(min(uint32(t.runs[i])+uint32(o.runs[i]), math.MaxUint16))
	}
	t.sumMS += o.sumMS
}

func (b *bar) add(o bar) {
	b.slotRuns.add(o.slotRuns)
	b.maxMS = max(b.maxMS, o.maxMS)
}

func (t *runTotals) add(o slotRuns) {
	for i := range t.runs {
		t.runs[i] += uint32(o.runs[i])
	}
	t.sumMS += o.sumMS
}

func (t *runTotals) addBar(b bar) {
	t.add(b.slotRuns)
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

// checkBoard is a check's three rings, 1,300 bytes. A ring is a circle of buckets and
// the number of its newest (start / width since the Unix epoch; 0 before its first run):
// bucket number n is buckets[n % len(buckets)], for the len(buckets) numbers up to the
// newest.
type checkBoard struct {
	hourHead, dayHead, weekHead int32
	hour                        [hourSlots]slotRuns
	day                         [daySlots]bar
	week                        [weekSlots]slotRuns
}

// slot returns the bucket of a ring for the time ns, moving the ring on to it (emptying
// the buckets it passes) when it is newer than the newest; nil when it is older than the
// ring keeps, unless the ring is ahead of now, the wall clock (0 when seeding): then the
// clock went back, and the ring starts again from ns rather than dropping every run until
// the clock has caught up.
func slot[B any](buckets []B, head *int32, width time.Duration, ns, now int64) *B {
	n := int32(ns / int64(width))
	size := int32(len(buckets))
	switch {
	case n > *head:
		if *head == 0 || n-*head >= size {
			clear(buckets)
		} else {
			var empty B
			for k := *head + 1; k <= n; k++ {
				buckets[k%size] = empty
			}
		}
		*head = n
	case n <= *head-size:
		if now == 0 || *head <= int32(now/int64(width)) {
			return nil
		}
		clear(buckets)
		*head = n
	}
	return &buckets[n%size]
}

// each calls fn for every bucket of a ring numbered from..to, those the ring keeps.
func each[B any](buckets []B, head int32, from, to int32, fn func(num int32, b *B)) {
	if head == 0 {
		return
	}
	for n := max(from, head-int32(len(buckets))+1); n <= min(to, head); n++ {
		fn(n, &buckets[n%int32(len(buckets))])
	}
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

// put adds runs started at ns to a check's rings; ring < 0 is all three, else the one of
// that index. now is the wall clock, 0 when seeding (see slot).
func (cb *checkBoard) put(ring int, ns, now int64, one bar) {
	if ring < 0 || ring == 0 {
		if b := slot(cb.hour[:], &cb.hourHead, hourWidth, ns, now); b != nil {
			b.add(one.slotRuns)
		}
	}
	if ring < 0 || ring == 1 {
		if b := slot(cb.day[:], &cb.dayHead, dayWidth, ns, now); b != nil {
			b.add(one)
		}
	}
	if ring < 0 || ring == 2 {
		if b := slot(cb.week[:], &cb.weekHead, weekWidth, ns, now); b != nil {
			b.add(one.slotRuns)
		}
	}
}

// add counts one run; now is the wall clock.
func (bd *board) add(check string, started time.Time, d time.Duration, outcome checks.Outcome, now time.Time) {
	one := bar{}
	one.runs[outcomeIndex(string(outcome))] = 1
	ms := float32(d.Microseconds()) / 1000
	one.sumMS, one.maxMS = ms, ms
	bd.mu.Lock()
	defer bd.mu.Unlock()
	bd.check(check).put(-1, started.UnixNano(), now.UnixNano(), one)
}

// seed counts the store's runs started in [now - 7 d, until): the history before this
// agent started recording. Runs from until on are added as they happen.
func (bd *board) seed(ctx context.Context, st statusStore, now, until time.Time) error {
	for i, width := range []time.Duration{hourWidth, dayWidth, weekWidth} {
		since := now.Add(-[]time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}[i] - width)
		err := st.RunBuckets(ctx, since, until, width, func(r store.BucketRow) {
			one := bar{}
			one.runs[outcomeIndex(r.Outcome)] = uint16(min(r.Runs, math.MaxUint16))
			one.sumMS = float32(r.Sum.Microseconds()) / 1000
			one.maxMS = float32(r.Max.Microseconds()) / 1000
			bd.mu.Lock()
			defer bd.mu.Unlock()
			bd.check(r.Check).put(i, r.Bucket*int64(width), 0, one)
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
	// last is the numbers of a ring's buckets in the last window, the one in progress included.
	last := func(width, window time.Duration) (from, to int32) {
		to = int32(ns / int64(width))
		return to - int32(window/width) + 1, to
	}
	from, to := last(hourWidth, time.Hour)
	each(cb.hour[:], cb.hourHead, from, to, func(_ int32, b *slotRuns) { st.Hour.add(*b) })
	from, to = last(dayWidth, 24*time.Hour)
	each(cb.day[:], cb.dayHead, from, to, func(n int32, b *bar) {
		st.Day.addBar(*b)
		st.Bars[n-firstBar].addBar(*b)
	})
	from, to = last(weekWidth, 7*24*time.Hour)
	each(cb.week[:], cb.weekHead, from, to, func(_ int32, b *slotRuns) { st.Week.add(*b) })
	return st, st.Week.total() > 0 || st.Day.total() > 0
}
