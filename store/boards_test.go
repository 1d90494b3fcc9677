package store

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An agent's board is kept under its name, replaced by the next it saves; the runs after
// the one it was saved with are read by id, in the location and times asked.
func TestBoards(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d driver) {
		ctx := context.Background()
		s := d.fresh(t)
		if last, err := s.LastRunID(ctx); last != 0 || err != nil {
			t.Errorf("LastRunID of an empty store: %d, %v", last, err)
		}
		if b, err := s.SavedBoard(ctx, "a1"); b != nil || err != nil {
			t.Errorf("a board nobody saved: %+v, %v", b, err)
		}
		var runs []*RunRecord
		for i := range 40 { // ids 1..40, a minute apart; odd ones elsewhere
			loc := "eu"
			if i%2 == 1 {
				loc = "us"
			}
			runs = append(runs, &RunRecord{Check: "api", Kind: "http", Started: t0.Add(time.Duration(i) * time.Minute), Duration: time.Duration(i) * time.Millisecond, Outcome: "pass", Location: loc})
		}
		if err := s.SaveRuns(ctx, runs); err != nil {
			t.Fatal(err)
		}
		last, err := s.LastRunID(ctx)
		if err != nil || last != runs[39].ID {
			t.Fatalf("LastRunID: %d, %v; want %d", last, err, runs[39].ID)
		}
		for i, data := range [][]byte{[]byte("first"), bytes.Repeat([]byte{0, 0xff}, 100000)} {
			at := t0.Add(time.Duration(i) * time.Hour)
			if err := s.SaveBoard(ctx, &Board{Agent: "a1", Location: "eu", SavedAt: at, LastRun: int64(10 * (i + 1)), Data: data}); err != nil {
				t.Fatal(err)
			}
			b, err := s.SavedBoard(ctx, "a1")
			if err != nil || b == nil || !b.SavedAt.Equal(at) || b.LastRun != int64(10*(i+1)) || !bytes.Equal(b.Data, data) || b.Location != "eu" {
				t.Fatalf("board %d read back: %+v, %v", i, b, err)
			}
		}
		// The runs after the 10th to the 30th (minutes 10 to 29), in eu (even minutes),
		// started before minute 25: minutes 10, 12, ..., 24.
		var n int
		var maxD time.Duration
		err = s.RunBucketsByID(ctx, "eu", runs[9].ID, runs[29].ID, t0, t0.Add(25*time.Minute), 5*time.Minute, func(r BucketRow) {
			n += r.Runs
			maxD = max(maxD, r.Max)
		})
		if err != nil || n != 8 || maxD != 24*time.Millisecond {
			t.Errorf("RunBucketsByID counted %d runs, slowest %v, %v; want 8, 24ms", n, maxD, err)
		}
	})
}

// A restart reads the runs since the saved board along the primary key: SQLite must not
// walk the week's runs by time to find them.
func TestRunBucketsByIDReadsTheKeyRange(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var runs []*RunRecord
	for i := range 5000 {
		runs = append(runs, &RunRecord{Check: "api", Kind: "http", Started: t0.Add(time.Duration(i) * 2 * time.Minute), Outcome: "pass", Location: "eu"})
	}
	if err := s.SaveRuns(ctx, runs); err != nil {
		t.Fatal(err)
	}
	plan := queryPlan(t, s, runBucketsByIDQuery, 1, 1, 2, 0, 1, "eu")
	if !strings.Contains(strings.Join(plan, "\n"), "INTEGER PRIMARY KEY (rowid>? AND rowid<?)") {
		t.Errorf("the runs since a saved board are not read by id:\n%s", strings.Join(plan, "\n"))
	}
}
