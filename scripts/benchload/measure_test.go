package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// A check that stored fewer runs than the whole intervals of the window counts as short by
// the difference, one that stored none by all of them; a window's edge holding one more
// run of a check than its length says is no loss.
func TestMissingRuns(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vigil.db")
	s, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
	to := from.Add(20*time.Second + time.Millisecond) // 20 whole intervals of 1 s, and an edge
	var runs []*store.RunRecord
	add := func(check string, at time.Time) {
		runs = append(runs, &store.RunRecord{Check: check, Kind: "http", Started: at, Outcome: "pass", Attempts: 1, Reasons: []string{}})
	}
	for i := range 21 { // c0: 21 runs, the last in the window's last millisecond
		add("c0", from.Add(time.Duration(i)*time.Second))
	}
	for i := range 20 { // c1: 20, at the window's far end of each second
		add("c1", from.Add(time.Duration(i)*time.Second+999*time.Millisecond))
	}
	for i := range 20 { // c2: 17 (three lost)
		if i%6 != 5 {
			add("c2", from.Add(time.Duration(i)*time.Second+500*time.Millisecond))
		}
	}
	add("c3", from.Add(-time.Second)) // before the window: c3 stored none of its 20
	add("c3", to)                     // and after it
	if err := s.SaveRuns(ctx, runs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		checks int
		want   int
	}{{4, 3 + 20}, {5, 3 + 20 + 20}, {3, 3}} { // told of fewer checks than it found: no negative count
		got, err := missingRuns(path, from, to, c.checks, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%d checks: %d runs missing, want %d", c.checks, got, c.want)
		}
	}
	n, err := countRuns(path, from, to)
	if err != nil || n != 21+20+17 {
		t.Fatalf("countRuns: %d, %v; want %d", n, err, 21+20+17)
	}
}
