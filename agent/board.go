package agent

// The uptime board: every check's runs counted by outcome, with their durations, in time
// buckets kept in memory: five-minute buckets for the last hour, half-hour ones for the
// last day (the bars, uptime over 24 h) and six-hour ones for the last week (uptime over
// 7 d). The status page and the badges read it without a query, so a page of a thousand
// checks costs what rendering it costs. It starts from the store's history (read at start
// in five-minute slices, off the request path: board_history.go) and follows every run
// this agent records after that. A check's rings are fixed arrays of compact buckets, 944 bytes however
// often it runs, and 364 more while it has failed or errored in the last week, so that ten
// thousand checks fit in a small agent.

import (
	"math"
	"sync"
	"time"

	"github.com/vigil-monitor/vigil/checks"
)

const (
	hourRing, dayRing, weekRing = 0, 1, 2

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

var (
	ringWidth = [3]time.Duration{hourWidth, dayWidth, weekWidth}
	ringSlots = [3]int32{hourSlots, daySlots, weekSlots}
	// ringWindow is how far back each ring's figures reach (the last hour, day and week).
	ringWindow = [3]time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}
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

// boardRuns is runs to add to a check's rings: one run, or a bucket of the store's history.
type boardRuns struct {
	runs         [outcomeCount]uint32 // by outcomeIndex
	sumMS, maxMS float32
}

// slotRuns is the runs of one bucket of the hour and week rings, 8 bytes: how many, how
// many passed, and their durations added up. How the others ended is in the check's
// badRuns when any failed or errored; the rest were inconclusive. Counts saturate at
// 65,535, more than six hours of a check every second (the shortest `every`) and its
// deploy verifications make.
type slotRuns struct {
	runs, passed uint16
	sumMS        float32
}

// bar is a bucket of the day ring, whose buckets are the status page's bars: a slotRuns and
// the slowest run, 12 bytes.
type bar struct {
	slotRuns
	maxMS float32
}

// badSlot is how many of a bucket's runs failed and how many errored.
type badSlot struct{ failed, errored uint16 }

// badRuns is a check's failed and errored runs, bucket by bucket beside its rings (364
// bytes). Most checks pass nearly always, so it is kept apart: made at a check's first run
// that fails or errors, dropped when the week ring moves on with none left in it.
type badRuns struct {
	hour [hourSlots]badSlot
	day  [daySlots]badSlot
	week [weekSlots]badSlot
}

func (b *badRuns) ring(r int) []badSlot {
	switch r {
	case hourRing:
		return b.hour[:]
	case dayRing:
		return b.day[:]
	}
	return b.week[:]
}

func (b *badRuns) empty() bool {
	for _, ring := range [][]badSlot{b.hour[:], b.day[:], b.week[:]} {
		for _, s := range ring {
			if s != (badSlot{}) {
				return false
			}
		}
	}
	return true
}

// runTotals is buckets added up: a window, a bar.
type runTotals struct {
	num   int32
	runs  [outcomeCount]uint32
	sumMS float32
	maxMS float32 // of bars (the day ring) only
}

func sat16(a uint16, b uint32) uint16 { return uint16(min(uint32(a)+b, math.MaxUint16)) }

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

// checkBoard is a check's three rings, 944 bytes, and its badRuns when it has any. A ring
// is a circle of buckets and the number of its newest (start / width since the Unix epoch;
// 0 before its first run): bucket number n is at index n % slots, for the slots numbers up
// to the newest.
type checkBoard struct {
	heads [3]int32 // hour, day, week
	hour  [hourSlots]slotRuns
	day   [daySlots]bar
	week  [weekSlots]slotRuns
	bad   *badRuns
}

// bucket returns ring r's bucket at index i, and the slowest run when r is the day ring.
func (cb *checkBoard) bucket(r int, i int32) (*slotRuns, *float32) {
	switch r {
	case hourRing:
		return &cb.hour[i], nil
	case dayRing:
		return &cb.day[i].slotRuns, &cb.day[i].maxMS
	}
	return &cb.week[i], nil
}

func (cb *checkBoard) emptyBucket(r int, i int32) {
	s, maxMS := cb.bucket(r, i)
	*s = slotRuns{}
	if maxMS != nil {
		*maxMS = 0
	}
	if cb.bad != nil {
		cb.bad.ring(r)[i] = badSlot{}
	}
}

// advance returns the index of ring r's bucket for the time ns, moving the ring on to it
// (emptying the buckets it passes) when it is newer than the newest; -1 when it is older
// than the ring keeps, unless the ring is ahead of now, the wall clock (0 when seeding):
// then the clock went back, and the ring starts again from ns rather than dropping every
// run until the clock has caught up.
func (cb *checkBoard) advance(r int, ns, now int64) int32 {
	width, size, head := int64(ringWidth[r]), ringSlots[r], &cb.heads[r]
	n := int32(ns / width)
	switch {
	case n > *head:
		from := *head + 1
		if *head == 0 || n-*head >= size {
			from = n - size + 1
		}
		for k := from; k <= n; k++ {
			cb.emptyBucket(r, k%size)
		}
		*head = n
		if r == weekRing && cb.bad != nil && cb.bad.empty() {
			cb.bad = nil // a week without a failure or an error
		}
	case n <= *head-size:
		if now == 0 || *head <= int32(now/width) {
			return -1
		}
		for k := range size {
			cb.emptyBucket(r, k)
		}
		*head = n
	}
	return n % size
}

// put adds runs started at ns to a check's rings; ring < 0 is all three, else the one of
// that index. now is the wall clock, 0 when seeding (see advance).
func (cb *checkBoard) put(ring int, ns, now int64, t boardRuns) {
	if cb.bad == nil && (t.runs[1] > 0 || t.runs[2] > 0) {
		cb.bad = &badRuns{}
	}
	all := t.runs[0] + t.runs[1] + t.runs[2] + t.runs[3]
	for r := range 3 {
		if ring >= 0 && r != ring {
			continue
		}
		i := cb.advance(r, ns, now)
		if i < 0 {
			continue
		}
		s, maxMS := cb.bucket(r, i)
		s.runs, s.passed = sat16(s.runs, all), sat16(s.passed, t.runs[0])
		s.sumMS += t.sumMS
		if maxMS != nil {
			*maxMS = max(*maxMS, t.maxMS)
		}
		if cb.bad != nil {
			b := &cb.bad.ring(r)[i]
			b.failed, b.errored = sat16(b.failed, t.runs[1]), sat16(b.errored, t.runs[2])
		}
	}
}

// addTo adds ring r's bucket at index i to t.
func (cb *checkBoard) addTo(t *runTotals, r int, i int32) {
	s, maxMS := cb.bucket(r, i)
	var b badSlot
	if cb.bad != nil {
		b = cb.bad.ring(r)[i]
	}
	t.runs[0] += uint32(s.passed)
	t.runs[1] += uint32(b.failed)
	t.runs[2] += uint32(b.errored)
	// Saturated counts can disagree; none is below zero.
	t.runs[3] += uint32(max(0, int32(s.runs)-int32(s.passed)-int32(b.failed)-int32(b.errored)))
	t.sumMS += s.sumMS
	if maxMS != nil {
		t.maxMS = max(t.maxMS, *maxMS)
	}
}

// each calls fn with the number and index of every bucket of ring r numbered from..to,
// those the ring keeps.
func (cb *checkBoard) each(r int, from, to int32, fn func(num, i int32)) {
	head, size := cb.heads[r], ringSlots[r]
	if head == 0 {
		return
	}
	for n := max(from, head-size+1); n <= min(to, head); n++ {
		fn(n, n%size)
	}
}

type board struct {
	mu     sync.RWMutex
	checks map[string]*checkBoard
	// from is the instant (Unix ns) from which the board holds every run: when the agent
	// began recording, moved back as seed reads the store's history, math.MinInt64 once it
	// has read the week. A window that starts before it is counted in part. reading is
	// true while seed runs.
	from    int64
	reading bool
}

// holdsWeek is whether the board holds every run of its windows (its history is read).
func (bd *board) holdsWeek() bool {
	bd.mu.RLock()
	defer bd.mu.RUnlock()
	return bd.from == math.MinInt64
}

// newBoard makes a board that holds every run recorded from from on.
func newBoard(from time.Time) *board {
	return &board{checks: map[string]*checkBoard{}, from: from.UnixNano()}
}

func (bd *board) check(name string) *checkBoard {
	cb := bd.checks[name]
	if cb == nil {
		cb = &checkBoard{}
		bd.checks[name] = cb
	}
	return cb
}

// add counts one run; now is the wall clock.
func (bd *board) add(check string, started time.Time, d time.Duration, outcome checks.Outcome, now time.Time) {
	one := boardRuns{}
	one.runs[outcomeIndex(string(outcome))] = 1
	ms := float32(d.Microseconds()) / 1000
	one.sumMS, one.maxMS = ms, ms
	bd.mu.Lock()
	defer bd.mu.Unlock()
	bd.check(check).put(-1, started.UnixNano(), now.UnixNano(), one)
}

// checkStats is what the status page shows of a check's history.
type checkStats struct {
	// Bars are the last day in half-hour bars, oldest first; Start is the first bar's start.
	Bars  [barsShown]runTotals
	Start time.Time
	// Hour, Day and Week add up the last hour (to five minutes), the last 24 h (to half an
	// hour) and the last seven days (to six hours).
	Hour, Day, Week runTotals
	// Partial marks the windows (hour, day, week) that start before From, the instant
	// from which the board holds every run: the store's history before it is still being
	// read (Reading), or could not be read. From is zero when the board holds the week.
	Partial [3]bool
	From    time.Time
	Reading bool
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
	// last is the numbers of a ring's buckets in the last window, the one in progress included.
	last := func(width, window time.Duration) (from, to int32) {
		to = int32(ns / int64(width))
		return to - int32(window/width) + 1, to
	}
	st.Partial, st.From, st.Reading = bd.coverage(ns)
	if cb == nil {
		return st, false
	}
	from, to := last(hourWidth, time.Hour)
	cb.each(hourRing, from, to, func(_, i int32) { cb.addTo(&st.Hour, hourRing, i) })
	from, to = last(dayWidth, 24*time.Hour)
	cb.each(dayRing, from, to, func(n, i int32) {
		cb.addTo(&st.Day, dayRing, i)
		cb.addTo(&st.Bars[n-firstBar], dayRing, i)
	})
	from, to = last(weekWidth, 7*24*time.Hour)
	cb.each(weekRing, from, to, func(_, i int32) { cb.addTo(&st.Week, weekRing, i) })
	return st, st.Week.total() > 0 || st.Day.total() > 0
}
