package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
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

// A board is saved in parts of BoardPart, and read back whole: a larger board's parts
// replaced by a smaller one's, a board saved whole in its row (before parts) read as it
// was, a save whose encoding fails leaving the board before it, and an agent forgotten or
// purged taking its parts with it.
func TestBoardParts(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d driver) {
		ctx := context.Background()
		s := d.fresh(t)
		db := s.self().db
		parts := func(agent string) (n int) {
			t.Helper()
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM board_parts WHERE agent = ?`, agent).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		big := make([]byte, 5*BoardPart/2)
		for i := range big {
			big[i] = byte(i * 7 / 3)
		}
		for _, c := range []struct {
			data  []byte
			parts int
		}{{big, 3}, {[]byte("small"), 1}, {big[:BoardPart], 1}, {[]byte{}, 0}} {
			if err := s.SaveBoard(ctx, &Board{Agent: "a1", Location: "eu", SavedAt: t0, LastRun: 7, Data: c.data}); err != nil {
				t.Fatal(err)
			}
			b, err := s.SavedBoard(ctx, "a1")
			if err != nil || b == nil || !bytes.Equal(b.Data, c.data) || b.LastRun != 7 {
				t.Fatalf("a board of %d bytes read back as %+v, %v", len(c.data), b, err)
			}
			if n := parts("a1"); n != c.parts {
				t.Errorf("a board of %d bytes in %d parts, want %d", len(c.data), n, c.parts)
			}
		}
		// Saved whole in its row, as before parts, over a board in parts: read back as it
		// was, without the parts.
		if err := s.SaveBoard(ctx, &Board{Agent: "a1", Location: "eu", SavedAt: t0, LastRun: 7, Data: big}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `UPDATE boards SET data = ? WHERE agent = ?`, []byte("whole"), "a1"); err != nil {
			t.Fatal(err)
		}
		if b, err := s.SavedBoard(ctx, "a1"); err != nil || string(b.Data) != "whole" {
			t.Fatalf("a board saved whole: %+v, %v", b, err)
		}
		// A part at a time, the buffer reused; then an encoding that fails half-way.
		buf := make([]byte, 3)
		parts3 := func(fail error) func(put func([]byte) error) error {
			return func(put func([]byte) error) error {
				for i := byte(1); i <= 3; i++ {
					if err := put(append(buf[:0], 'a'+i, 'b'+i)); err != nil {
						return err
					}
					if i == 2 && fail != nil {
						return fail
					}
				}
				return nil
			}
		}
		if err := s.SaveBoardParts(ctx, &Board{Agent: "a1", Location: "eu", SavedAt: t0, LastRun: 9}, parts3(nil)); err != nil {
			t.Fatal(err)
		}
		if b, err := s.SavedBoard(ctx, "a1"); err != nil || string(b.Data) != "bccdde" || b.LastRun != 9 {
			t.Fatalf("a board saved a part at a time: %q, %v", b.Data, err)
		}
		if err := s.SaveBoardParts(ctx, &Board{Agent: "a1", Location: "us", LastRun: 11}, parts3(errors.New("the encoding failed"))); err == nil {
			t.Fatal("a save whose encoding failed succeeded")
		}
		if b, _ := s.SavedBoard(ctx, "a1"); string(b.Data) != "bccdde" || b.LastRun != 9 || b.Location != "eu" {
			t.Errorf("a failed save changed the board: %+v", b)
		}
		if err := s.SaveBoard(ctx, &Board{Agent: "a2", Location: "eu", SavedAt: t0, Data: big}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Heartbeat(ctx, &Member{Name: "a2", Instance: "i", Location: "eu", Started: t0, Heartbeat: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := s.ForgetMember(ctx, "a2"); err != nil {
			t.Fatal(err)
		}
		if n := parts("a2"); n != 0 {
			t.Errorf("a forgotten agent's board kept %d parts", n)
		}
		if _, err := s.Purge(ctx, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if b, _ := s.SavedBoard(ctx, "a1"); b != nil || parts("a1") != 0 {
			t.Errorf("a purged board: %+v, %d parts", b, parts("a1"))
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

// The board's history is read on a connection with a small page cache (what SQLite sizes
// the query's sort from too), set back as it was when the read ends, even one cancelled;
// a connection that could not be set back is not used again.
func TestBoardHistoryReadsWithASmallCache(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "vigil.db"))
	s.db.DB.SetMaxOpenConns(1) // the read's connection is the one looked at after it
	var runs []*RunRecord
	for i := range 300 {
		runs = append(runs, &RunRecord{Check: "api", Kind: "http", Started: t0.Add(time.Duration(i) * time.Second), Outcome: "pass", Location: "eu"})
	}
	if err := s.SaveRuns(ctx, runs); err != nil {
		t.Fatal(err)
	}
	cacheSize := func() (n int64) {
		t.Helper()
		if err := s.db.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := s.db.DB.ExecContext(ctx, `PRAGMA cache_size = -3000`); err != nil {
		t.Fatal(err)
	}
	orig := s.d.bulkRead
	if orig == nil {
		t.Fatal("SQLite reads the board's history with no setting for a bulk read")
	}
	var during int64
	failRestore := false
	s.d.bulkRead = func(ctx context.Context, c *sql.Conn) (func() error, error) {
		restore, err := orig(ctx, c)
		if err == nil {
			err = c.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&during)
		}
		if failRestore {
			return func() error { return errors.New("could not") }, err
		}
		return restore, err
	}

	n := 0
	count := func(r BucketRow) { n += r.Runs }
	if err := s.RunBuckets(ctx, "eu", t0, t0.Add(time.Hour), 5*time.Minute, count); err != nil || n != 300 {
		t.Fatalf("RunBuckets: %d runs, %v", n, err)
	}
	if during != -scanCacheKiB || cacheSize() != -3000 {
		t.Errorf("cache_size during the read %d, after it %d; want %d, -3000", during, cacheSize(), -scanCacheKiB)
	}

	during, n = 0, 0
	if err := s.RunBucketsByID(ctx, "eu", 100, 200, t0, t0.Add(time.Hour), 5*time.Minute, count); err != nil || n != 100 {
		t.Fatalf("RunBucketsByID: %d runs, %v", n, err)
	}
	if during != -scanCacheKiB || cacheSize() != -3000 {
		t.Errorf("by id: cache_size during the read %d, after it %d; want %d, -3000", during, cacheSize(), -scanCacheKiB)
	}

	cctx, cancel := context.WithCancel(ctx)
	err := s.RunBuckets(cctx, "eu", t0, t0.Add(time.Hour), time.Second, func(BucketRow) { cancel() })
	// (database/sql closes the rows when it sees the cancel: the last may be read first)
	if err != nil && !errors.Is(err, context.Canceled) || cacheSize() != -3000 {
		t.Errorf("a cancelled read: %v, cache_size after it %d; want context.Canceled or none, -3000", err, cacheSize())
	}

	failRestore = true
	if err := s.RunBuckets(ctx, "eu", t0, t0.Add(time.Hour), 5*time.Minute, func(BucketRow) {}); err != nil {
		t.Fatal(err)
	}
	if got := cacheSize(); got == -scanCacheKiB || got == -3000 {
		t.Errorf("a connection not set back went back to the pool: cache_size %d", got)
	}
}
