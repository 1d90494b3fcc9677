package agent

import (
	"context"
	"testing"
	"time"

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
	live := newBoard()
	st, err := store.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var recs []*store.RunRecord
	for _, r := range runs {
		live.add("home", now.Add(-r.ago), r.took, r.outcome)
		recs = append(recs, &store.RunRecord{Check: "home", Kind: "http", Started: now.Add(-r.ago), Duration: r.took, Outcome: string(r.outcome)})
	}
	if err := st.SaveRuns(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	seeded := newBoard()
	if err := seeded.seed(context.Background(), st, now, now.Add(time.Second)); err != nil {
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
	bd := newBoard()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for range 70_000 {
		bd.add("busy", at, time.Millisecond, checks.Pass)
	}
	s, _ := bd.stats("busy", at.Add(time.Minute))
	if s.Hour.runs[0] != 65535 || s.Week.runs[0] != 65535 {
		t.Errorf("70,000 runs in one bucket counted as %d (hour), %d (week); want 65,535", s.Hour.runs[0], s.Week.runs[0])
	}
}
