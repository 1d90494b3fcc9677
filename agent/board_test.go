package agent

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/store"
)

// The board's windows: each run counts in the windows it falls in and in its half-hour bar;
// a run older than a week counts nowhere; a board seeded from the store after a restart
// says the same as the one that saw the runs happen.
func TestBoardWindowsAndSeed(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 7, 0, 0, time.UTC)
	runs := []struct {
		ago     time.Duration
		outcome checks.Outcome
		took    time.Duration
	}{
		{10 * time.Minute, checks.Fail, 40 * time.Millisecond},
		{50 * time.Minute, checks.Pass, 20 * time.Millisecond},
		{2 * time.Hour, checks.Pass, 30 * time.Millisecond},
		{23 * time.Hour, checks.Error, 10 * time.Millisecond},
		{30 * time.Hour, checks.Fail, 50 * time.Millisecond},
		{6 * 24 * time.Hour, checks.Inconclusive, 5 * time.Millisecond},
		{8 * 24 * time.Hour, checks.Pass, time.Second}, // older than a week: nowhere
	}
	live := wholeBoard()
	st, err := store.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var recs []*store.RunRecord
	for _, r := range runs {
		live.add("home", now.Add(-r.ago), r.took, r.outcome, now)
		recs = append(recs, &store.RunRecord{Check: "home", Kind: "http", Started: now.Add(-r.ago), Duration: r.took, Outcome: string(r.outcome)})
	}
	if err := st.SaveRuns(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	seeded := newBoard(now.Add(time.Second))
	if err := seeded.seed(context.Background(), st, "", now, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	for name, bd := range map[string]*board{"live": live, "seeded": seeded} {
		s, ok := bd.stats("home", now)
		if !ok {
			t.Fatalf("%s: no stats", name)
		}
		// runs: pass, fail, error, inconclusive
		if want := [4]uint32{1, 1, 0, 0}; s.Hour.runs != want {
			t.Errorf("%s: last hour %v, want %v", name, s.Hour.runs, want)
		}
		if want := [4]uint32{2, 1, 1, 0}; s.Day.runs != want {
			t.Errorf("%s: last day %v, want %v", name, s.Day.runs, want)
		}
		if want := [4]uint32{2, 2, 1, 1}; s.Week.runs != want {
			t.Errorf("%s: last week %v, want %v", name, s.Week.runs, want)
		}
		if got := s.Day.avgMS(); got != 25 {
			t.Errorf("%s: mean over the day %v ms, want 25", name, got)
		}
		if s.Day.maxMS != 40 {
			t.Errorf("%s: max over the day %v ms, want 40", name, s.Day.maxMS)
		}
		// bars: 48 half-hours, the last one in progress (12:00-12:07 holds nothing)
		var total uint32
		for i, b := range s.Bars {
			total += b.total()
			at := s.Start.Add(time.Duration(i) * barWidth)
			if b.num != int32(at.UnixNano()/int64(barWidth)) {
				t.Fatalf("%s: bar %d numbered %d, starts %s", name, i, b.num, at)
			}
		}
		if total != 4 || s.Bars[47].total() != 0 || s.Bars[46].runs != [4]uint32{0, 1, 0, 0} || s.Bars[45].runs != [4]uint32{1, 0, 0, 0} {
			t.Errorf("%s: bars hold %d runs; last three %v %v %v", name, total, s.Bars[45].runs, s.Bars[46].runs, s.Bars[47].runs)
		}
	}
	if _, ok := live.stats("other", now); ok {
		t.Error("a check with no runs has stats")
	}
	// A week later nothing is left.
	if s, ok := live.stats("home", now.Add(8*24*time.Hour)); ok {
		t.Errorf("stats a week after the last run: %+v", s.Week)
	}
}

// A bucket's counts saturate rather than wrap.
func TestBoardCountsSaturate(t *testing.T) {
	bd := wholeBoard()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for range 70_000 {
		bd.add("busy", at, time.Millisecond, checks.Pass, at)
	}
	s, _ := bd.stats("busy", at.Add(time.Minute))
	if s.Hour.runs[0] != 65535 || s.Week.runs[0] != 65535 {
		t.Errorf("70,000 runs in one bucket counted as %d (hour), %d (week); want 65,535", s.Hour.runs[0], s.Week.runs[0])
	}
}

// The rings move on as time does: a run every five minutes for three days leaves each
// window holding the runs whose bucket it covers, counted by brute force here.
func TestBoardRingsMoveOn(t *testing.T) {
	bd := wholeBoard()
	start := time.Date(2026, 11, 20, 0, 2, 0, 0, time.UTC)
	var times []time.Time
	for at := start; at.Before(start.Add(3 * 24 * time.Hour)); at = at.Add(5 * time.Minute) {
		bd.add("tick", at, time.Millisecond, checks.Pass, at)
		times = append(times, at)
	}
	now := times[len(times)-1].Add(time.Minute)
	in := func(width, window time.Duration) uint32 {
		to := now.UnixNano() / int64(width)
		from := to - int64(window/width) + 1
		var n uint32
		for _, at := range times {
			if b := at.UnixNano() / int64(width); b >= from && b <= to {
				n++
			}
		}
		return n
	}
	s, ok := bd.stats("tick", now)
	if !ok {
		t.Fatal("no stats")
	}
	for _, w := range []struct {
		name string
		got  uint32
		want uint32
	}{
		{"hour", s.Hour.total(), in(hourWidth, time.Hour)},
		{"day", s.Day.total(), in(dayWidth, 24*time.Hour)},
		{"week", s.Week.total(), in(weekWidth, 7*24*time.Hour)},
	} {
		if w.got != w.want || w.want == 0 {
			t.Errorf("%s: %d runs, want %d", w.name, w.got, w.want)
		}
	}
	for i, b := range s.Bars {
		if b.total() != 6 && i != len(s.Bars)-1 {
			t.Errorf("bar %d holds %d runs, want 6", i, b.total())
		}
	}
	if size, bad := unsafe.Sizeof(checkBoard{}), unsafe.Sizeof(badRuns{}); size != 944 || bad != 364 {
		t.Errorf("a check's board is %d bytes and its failures %d; the package comment says 944 and 364", size, bad)
	}
	if bd.checks["tick"].bad != nil {
		t.Error("a check that only passed keeps buckets for failures")
	}
}

// Failed and errored runs are counted beside the rings, made at a check's first and
// dropped a week after its last; inconclusive runs need no such buckets. The counts read
// the same before, during and after.
func TestBoardKeepsFailuresApart(t *testing.T) {
	bd := wholeBoard()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	bd.add("c", at, time.Millisecond, checks.Pass, at)
	bd.add("c", at, time.Millisecond, checks.Inconclusive, at)
	if bd.checks["c"].bad != nil {
		t.Fatal("buckets for failures made for a pass and an inconclusive run")
	}
	at = at.Add(time.Minute)
	bd.add("c", at, time.Millisecond, checks.Fail, at)
	bd.add("c", at, time.Millisecond, checks.Error, at)
	bd.add("c", at, time.Millisecond, checks.Error, at)
	if bd.checks["c"].bad == nil {
		t.Fatal("no buckets for failures after a failure")
	}
	s, _ := bd.stats("c", at)
	for name, got := range map[string][4]uint32{"hour": s.Hour.runs, "day": s.Day.runs, "week": s.Week.runs, "bar": s.Bars[47].runs} {
		if want := [4]uint32{1, 1, 2, 1}; got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	// A pass every six hours for a week and a bit: the failures leave the week ring, and
	// their buckets go with them.
	for k := 1; k <= 30; k++ {
		now := at.Add(time.Duration(k) * 6 * time.Hour)
		bd.add("c", now, time.Millisecond, checks.Pass, now)
		s, _ := bd.stats("c", now)
		if inWeek := k < 28; inWeek != (s.Week.runs[1] == 1 && s.Week.runs[2] == 2) {
			t.Fatalf("%d x 6 h later: week %v", k, s.Week.runs)
		}
	}
	if bd.checks["c"].bad != nil {
		t.Error("the buckets for failures are kept a week after the last failure")
	}
	now := at.Add(31 * 6 * time.Hour)
	bd.add("c", now, time.Millisecond, checks.Error, now)
	if s, _ := bd.stats("c", now); s.Hour.runs != [4]uint32{0, 0, 1, 0} || s.Week.runs[2] != 1 {
		t.Errorf("an error after they were dropped: hour %v, week %v", s.Hour.runs, s.Week.runs)
	}
}

// When the wall clock goes back by more than a ring holds, the ring starts again from the
// new time rather than dropping every run until the clock has caught up; a run that is
// old because it ran long (the clock did not go back) is dropped from the rings too short
// for it and counted in the others.
func TestBoardClockGoesBack(t *testing.T) {
	bd := wholeBoard()
	now := time.Date(2026, 12, 1, 12, 7, 0, 0, time.UTC)
	ahead := now.Add(3 * time.Hour) // the clock was three hours ahead, then corrected
	bd.add("home", ahead, time.Millisecond, checks.Fail, ahead)
	bd.add("home", now, time.Millisecond, checks.Pass, now)
	s, _ := bd.stats("home", now.Add(time.Minute))
	if s.Hour.runs != [4]uint32{1, 0, 0, 0} || s.Day.runs != [4]uint32{1, 0, 0, 0} {
		t.Errorf("after the clock went back: hour %v, day %v; want the run after it", s.Hour.runs, s.Day.runs)
	}

	bd = wholeBoard()
	bd.add("slow", now, time.Millisecond, checks.Pass, now)
	bd.add("slow", now.Add(-2*time.Hour), 2*time.Hour, checks.Fail, now) // began two hours ago
	s, _ = bd.stats("slow", now.Add(time.Minute))
	if s.Hour.runs != [4]uint32{1, 0, 0, 0} || s.Day.runs != [4]uint32{1, 1, 0, 0} || s.Week.runs != [4]uint32{1, 1, 0, 0} {
		t.Errorf("a long run: hour %v, day %v, week %v", s.Hour.runs, s.Day.runs, s.Week.runs)
	}
}

// A board seeded from the store (one scan in five-minute slices, folded into the three
// rings) says what a board that saw the same runs happen says, on random histories of
// eight days with runs on the slices' edges; runs the agent records itself, from until on,
// are not read twice, and those of an agent in another location sharing the store are not
// counted.
func TestBoardSeedMatchesLive(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	outcomes := []checks.Outcome{checks.Pass, checks.Fail, checks.Error, checks.Inconclusive}
	for round := range 4 {
		now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(time.Hour))))
		until := now.Add(-time.Duration(rng.Int64N(int64(20 * time.Minute)))) // the agent started recording here
		st, err := store.Open(context.Background(), ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		live, seeded := wholeBoard(), newBoard(until)
		var recs []*store.RunRecord
		for i := range 600 {
			ago := time.Duration(rng.Int64N(int64(8 * 24 * time.Hour)))
			if i%10 == 0 {
				ago = ago.Truncate(5 * time.Minute) // on a slice's edge
			}
			at := now.Add(-ago)
			check := fmt.Sprintf("c%d", rng.IntN(3))
			o := outcomes[rng.IntN(len(outcomes))]
			took := time.Duration(1+rng.IntN(900)) * time.Millisecond
			live.add(check, at, took, o, now)
			if at.Before(until) {
				recs = append(recs, &store.RunRecord{Check: check, Kind: "http", Started: at, Duration: took, Outcome: string(o), Location: "eu-west"},
					// the run of an agent elsewhere sharing the store: not counted here
					&store.RunRecord{Check: check, Kind: "http", Started: at, Duration: 2 * took, Outcome: string(checks.Fail), Location: "us-east"})
			} else {
				seeded.add(check, at, took, o, now) // recorded by this agent as it ran
			}
		}
		if err := st.SaveRuns(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
		if err := seeded.seed(context.Background(), st, "eu-west", now, until); err != nil {
			t.Fatal(err)
		}
		st.Close()
		for _, c := range []string{"c0", "c1", "c2"} {
			a, aok := live.stats(c, now)
			b, bok := seeded.stats(c, now)
			if aok != bok || a.Hour.runs != b.Hour.runs || a.Day.runs != b.Day.runs || a.Week.runs != b.Week.runs || a.Day.maxMS != b.Day.maxMS {
				t.Errorf("round %d, %s: live hour %v day %v week %v max %v; seeded hour %v day %v week %v max %v", round, c,
					a.Hour.runs, a.Day.runs, a.Week.runs, a.Day.maxMS, b.Hour.runs, b.Day.runs, b.Week.runs, b.Day.maxMS)
			}
			if a.Bars != b.Bars {
				t.Errorf("round %d, %s: the bars differ", round, c)
			}
		}
	}
}

// wholeBoard is a board that holds every run it will ever be told of: one that saw them happen.
func wholeBoard() *board {
	bd := newBoard(time.Time{})
	bd.from = math.MinInt64
	return bd
}

// slowHistory is a store whose history is read a slice at a time, when the test says.
type slowHistory struct {
	*store.SQLite
	slices chan chan struct{} // each read of a slice sends here, and waits for what it sent to close
	failAt int                // the read of this slice (from 1) fails; 0: none does
	read   int
}

func (s *slowHistory) RunBuckets(ctx context.Context, location string, from, to time.Time, width time.Duration, fn func(store.BucketRow)) error {
	s.read++
	if s.read == s.failAt {
		return errors.New("the disk went away")
	}
	done := make(chan struct{})
	s.slices <- done
	<-done
	return s.SQLite.RunBuckets(ctx, location, from, to, width, fn)
}

// While the board reads the store's history, the windows that start before what it has
// read say so (Partial, From, Reading), so a page shows a figure as counted in part rather
// than a half-read week as the uptime; once it has read the week none is partial. A read
// that fails leaves the windows it did not reach partial, no longer reading, until they
// start after what it read.
func TestBoardSaysWhileItReads(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 7, 30, 0, time.UTC)
	st, err := store.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var recs []*store.RunRecord
	for ago := time.Minute; ago < 7*24*time.Hour; ago += 10 * time.Minute {
		recs = append(recs, &store.RunRecord{Check: "home", Kind: "http", Started: now.Add(-ago), Duration: time.Millisecond, Outcome: "pass"})
	}
	if err := st.SaveRuns(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	check := func(what string, bd *board, at time.Time, partial [3]bool, reading bool, from time.Time) {
		t.Helper()
		s, _ := bd.stats("home", at)
		if s.Partial != partial || s.Reading != reading || !s.From.Equal(from) {
			t.Errorf("%s: partial %v, reading %v, from %v; want %v, %v, %v", what, s.Partial, s.Reading, s.From, partial, reading, from)
		}
	}
	// read lets n slices be read, then waits until the board is reading the next: what it
	// says then is what it holds after n slices.
	read := func(slow *slowHistory, n int) {
		for range n {
			close(<-slow.slices)
		}
	}
	slice := func(k int) time.Time { return now.Truncate(5 * time.Minute).Add(-time.Duration(k-1) * 5 * time.Minute) } // the kth slice's start

	slow := &slowHistory{SQLite: st, slices: make(chan chan struct{})}
	bd := newBoard(now)
	seeded := make(chan error, 1)
	go func() { seeded <- bd.seed(context.Background(), slow, "", now, now) }()
	next := <-slow.slices
	check("before reading", bd, now, [3]bool{true, true, true}, true, now)
	close(next)
	// The hour's first bucket starts at 11:10, the 12th slice's start.
	read(slow, 10)
	next = <-slow.slices
	check("11 slices", bd, now, [3]bool{true, true, true}, true, slice(11))
	close(next)
	next = <-slow.slices
	check("12 slices", bd, now, [3]bool{false, true, true}, true, slice(12))
	close(next)
	// The day's first bucket starts at 12:30 yesterday, the 284th slice's start.
	read(slow, 283-13)
	next = <-slow.slices
	check("283 slices", bd, now, [3]bool{false, true, true}, true, slice(283))
	close(next)
	next = <-slow.slices
	check("284 slices", bd, now, [3]bool{false, false, true}, true, slice(284))
	close(next)
	for {
		select {
		case err := <-seeded:
			if err != nil {
				t.Fatal(err)
			}
			check("the week", bd, now, [3]bool{}, false, time.Time{})
			weekFrom := now.Truncate(6 * time.Hour).Add(-27 * 6 * time.Hour) // the week's first bucket
			want := uint32(0)
			for _, r := range recs {
				if !r.Started.Before(weekFrom) {
					want++
				}
			}
			if s, _ := bd.stats("home", now); s.Week.runs[0] != want {
				t.Errorf("the week counts %d runs, want %d", s.Week.runs[0], want)
			}
			goto failing
		case next := <-slow.slices:
			close(next)
		}
	}

failing:
	slow = &slowHistory{SQLite: st, slices: make(chan chan struct{}), failAt: 30}
	bd = newBoard(now)
	go func() { seeded <- bd.seed(context.Background(), slow, "", now, now) }()
	read(slow, 29)
	if err := <-seeded; err == nil {
		t.Fatal("the seed did not say its read failed")
	}
	check("the 30th slice failed", bd, now, [3]bool{false, true, true}, false, slice(29))
	// A day on, the day's window starts after what was read; the week's still does not.
	check("a day on", bd, now.Add(24*time.Hour), [3]bool{false, false, true}, false, slice(29))
}
