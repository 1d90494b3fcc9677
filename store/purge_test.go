package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Purge in batches deletes what the one transaction did, table by table: runs with their
// evidence, finished notifications (never a pending one), ended silences, old alert state,
// silent agents with their boards, and beats but each check's last. Batches of two rows
// make every table that goes in batches take several.
func TestPurgeKeepsItsRules(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		s := drv.fresh(t)
		s.self().purgeBatch = 2
		before := t0.Add(time.Hour)
		old, young := t0, before.Add(time.Minute)
		for i := range 10 {
			at := old
			if i >= 7 {
				at = young
			}
			r := &RunRecord{Check: "api", Kind: "http", Started: at.Add(time.Duration(i) * time.Second), Outcome: "fail", Attempts: 1,
				Artifacts: []*Artifact{{Name: "body.txt", ContentType: "text/plain", Data: []byte("evidence")}}}
			if err := s.SaveRuns(ctx, []*RunRecord{r}); err != nil {
				t.Fatal(err)
			}
		}
		for i, e := range []struct {
			status string
			at     time.Time
		}{{OutboxDelivered, old}, {OutboxDead, old}, {OutboxDryRun, old}, {OutboxSilenced, old}, {OutboxSkipped, old},
			{OutboxPending, old}, {OutboxPending, old}, {OutboxDelivered, young}, {OutboxDead, young}} {
			if _, err := s.self().db.ExecContext(ctx, `INSERT INTO outbox(notifier, event, idem_key, payload, created_at, next_attempt_at, status)
				VALUES ('slack', 'incident_opened', ?, ?, ?, ?, ?)`, fmt.Sprint("k", i), []byte("{}"), nanos(e.at), nanos(e.at), e.status); err != nil {
				t.Fatal(err)
			}
		}
		for i, ends := range []time.Time{old, old.Add(time.Minute), young} {
			if err := s.AddSilence(ctx, &Silence{ID: fmt.Sprint("s", i), Check: "api", Starts: old, Ends: ends, Reason: "deploy", CreatedAt: old}); err != nil {
				t.Fatal(err)
			}
		}
		for i, at := range []time.Time{old, old, young} {
			if err := s.SaveAlertState(ctx, "slack", fmt.Sprint("i", i), map[string]string{"ts": "1"}, at); err != nil {
				t.Fatal(err)
			}
		}
		for name, at := range map[string]time.Time{"gone": old, "here": young} {
			if _, err := s.Heartbeat(ctx, &Member{Name: name, Instance: "i", Location: "eu", Started: old, Heartbeat: at}); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveBoard(ctx, &Board{Agent: name, Location: "eu", SavedAt: at, Data: []byte("board")}); err != nil {
				t.Fatal(err)
			}
		}
		for _, b := range []struct {
			check string
			at    time.Time
		}{{"weekly", old}, {"weekly", old.Add(time.Second)}, {"weekly", old.Add(2 * time.Second)},
			{"nightly", old}, {"nightly", old.Add(time.Second)}, {"nightly", young}, {"fresh", young}} {
			if err := s.SaveBeat(ctx, b.check, &Beat{At: b.at, Status: "ok"}); err != nil {
				t.Fatal(err)
			}
		}
		for i, at := range []time.Time{old, old, old, young, young} {
			if err := s.AddEvent(ctx, &Event{At: at.Add(time.Duration(i) * time.Second), Kind: "check_failed"}); err != nil {
				t.Fatal(err)
			}
		}

		// 7 runs, 5 finished notifications, 2 silences, 2 alert states, an agent, its
		// board, and 2 beats of each of weekly and nightly.
		if n, err := s.Purge(ctx, before); err != nil || n != 22 {
			t.Errorf("Purge deleted %d rows (%v); want 22", n, err)
		}
		if n, err := s.PurgeEvents(ctx, before); err != nil || n != 3 {
			t.Errorf("PurgeEvents deleted %d events (%v); want 3", n, err)
		}
		for q, want := range map[string]int{
			`SELECT COUNT(*) FROM runs WHERE started_at >= ?`:                 3,
			`SELECT COUNT(*) FROM runs`:                                       3,
			`SELECT COUNT(*) FROM artifacts a JOIN runs r ON r.id = a.run_id`: 3,
			`SELECT COUNT(*) FROM artifacts`:                                  3,
			`SELECT COUNT(*) FROM outbox WHERE created_at < ?`:                2, // the pending
			`SELECT COUNT(*) FROM outbox WHERE status = 'pending'`:            2,
			`SELECT COUNT(*) FROM outbox`:                                     4,
			`SELECT COUNT(*) FROM silences WHERE ends_at >= ?`:                1,
			`SELECT COUNT(*) FROM silences`:                                   1,
			`SELECT COUNT(*) FROM alert_state WHERE updated_at >= ?`:          1,
			`SELECT COUNT(*) FROM alert_state`:                                1,
			`SELECT COUNT(*) FROM agents WHERE name = 'here'`:                 1,
			`SELECT COUNT(*) FROM agents`:                                     1,
			`SELECT COUNT(*) FROM boards WHERE agent = 'here'`:                1,
			`SELECT COUNT(*) FROM boards`:                                     1,
			`SELECT COUNT(*) FROM board_parts WHERE agent = 'here'`:           1,
			`SELECT COUNT(*) FROM board_parts`:                                1,
			`SELECT COUNT(*) FROM beats WHERE check_name = 'weekly'`:          1, // its last, before
			`SELECT COUNT(*) FROM beats WHERE check_name = 'nightly'`:         1,
			`SELECT COUNT(*) FROM beats WHERE check_name = 'fresh'`:           1,
			`SELECT COUNT(*) FROM events WHERE at >= ?`:                       2,
			`SELECT COUNT(*) FROM events`:                                     2,
		} {
			var args []any
			if strings.Contains(q, "?") {
				args = append(args, nanos(before))
			}
			var got int
			if err := s.self().db.QueryRowContext(ctx, q, args...).Scan(&got); err != nil || got != want {
				t.Errorf("%s: %d (%v); want %d", q, got, err, want)
			}
		}
		if _, last, _ := s.Beats(ctx, "weekly", time.Time{}); last == nil || !last.At.Equal(old.Add(2*time.Second)) {
			t.Errorf("weekly's last beat after the purge: %+v; want the one of %v", last, old.Add(2*time.Second))
		}
	})
}

// oldRuns stores n runs of check before t0 plus an hour, each with a piece of evidence.
func oldRuns(t *testing.T, s *SQLite, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i += 500 {
		var runs []*RunRecord
		for j := i; j < min(i+500, n); j++ {
			runs = append(runs, &RunRecord{Check: fmt.Sprint("c", j%10), Kind: "http", Started: t0.Add(time.Duration(j) * time.Millisecond),
				Outcome: "fail", Attempts: 1, Artifacts: []*Artifact{{Name: "body.txt", ContentType: "text/plain", Data: []byte("evidence")}}})
		}
		if err := s.SaveRuns(ctx, runs); err != nil {
			t.Fatal(err)
		}
	}
}

// countOld is the runs left older than before.
func countOld(t *testing.T, s *SQLite, before time.Time) int {
	t.Helper()
	var n int
	if err := s.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM runs WHERE started_at < ?`, nanos(before)).Scan(&n); err != nil {
		t.Error(err)
	}
	return n
}

// waitingForTurn waits until a goroutine waits in lockWrites for its turn to write.
func waitingForTurn(t *testing.T) {
	buf := make([]byte, 1<<20)
	for range 10_000 {
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.HasPrefix(g, "goroutine ") && strings.Contains(g, " [select") && strings.Contains(g, "(*conn).lockWrites") {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Error("no write came to wait for its turn")
}

// A purge of many runs lets the runs written meanwhile in: a batch of runs that asks to
// write while the purge's first batch is under way is written right after that batch,
// with the purge's other batches still to come (one transaction made it wait for the
// whole purge).
func TestPurgeLetsRunsIn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "vigil.db"))
	s.purgeBatch = 100
	const old = 3000
	oldRuns(t, s, old)
	before := t0.Add(time.Hour)
	var turns atomic.Int32
	saved := make(chan error, 1)
	leftAtSave := -1
	s.ObserveWriteWaits(func(time.Duration) {
		switch turns.Add(1) {
		case 1: // the purge's first batch, in its turn: the run writer comes
			go func() {
				saved <- s.SaveRuns(ctx, []*RunRecord{{Check: "api", Kind: "http", Started: before.Add(time.Minute), Outcome: "pass", Attempts: 1}})
			}()
			waitingForTurn(t)
		case 2: // the next turn: the run writer's
			leftAtSave = countOld(t, s, before)
		}
	})
	n, err := s.Purge(ctx, before)
	if err != nil || n != old {
		t.Fatalf("purged %d rows (%v); want the %d runs", n, err, old)
	}
	if err := <-saved; err != nil {
		t.Fatal(err)
	}
	t.Logf("reliability: a run written during a purge of %d runs in batches of %d was written with %d old runs left (%d turns to write)",
		old, s.purgeBatch, leftAtSave, turns.Load())
	if leftAtSave != old-s.purgeBatch {
		t.Errorf("the run written during the purge waited until %d old runs were left; want it in after the first batch of %d, with %d left",
			leftAtSave, s.purgeBatch, old-s.purgeBatch)
	}
	if left := countOld(t, s, before); left != 0 {
		t.Errorf("%d old runs left after the purge", left)
	}
	if got, _ := s.CountRuns(ctx); got != 1 {
		t.Errorf("%d runs after the purge; want the one written during it", got)
	}
}

// An agent stopping stops its purge between batches: the batches done are kept, the rest
// left for the next purge, no run loses only part of itself (its evidence), and what the
// purge had not come to yet (silences, boards) is as it was.
func TestPurgeStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "vigil.db"))
	s.purgeBatch = 10
	const old = 100
	oldRuns(t, s, old)
	before := t0.Add(time.Hour)
	if err := s.AddSilence(context.Background(), &Silence{ID: "s", Check: "api", Starts: t0, Ends: t0, Reason: "deploy", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveBoard(context.Background(), &Board{Agent: "gone", Location: "eu", SavedAt: t0, Data: []byte("board")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var turns atomic.Int32
	s.ObserveWriteWaits(func(time.Duration) {
		if turns.Add(1) == 4 { // three batches done: the agent stops
			cancel()
		}
	})
	n, err := s.Purge(ctx, before)
	if !errors.Is(err, context.Canceled) || n != 30 {
		t.Errorf("a purge stopped at its fourth batch: %d rows deleted, %v; want the three batches' 30 and the context's error", n, err)
	}
	s.ObserveWriteWaits(func(time.Duration) {})
	var runs, evidence, orphans, silences, parts int
	for q, dst := range map[string]*int{
		`SELECT COUNT(*) FROM runs`:      &runs,
		`SELECT COUNT(*) FROM artifacts`: &evidence,
		`SELECT COUNT(*) FROM artifacts WHERE run_id NOT IN (SELECT id FROM runs)`: &orphans,
		`SELECT COUNT(*) FROM silences`:                                            &silences,
		`SELECT COUNT(*) FROM board_parts`:                                         &parts,
	} {
		if err := s.db.QueryRowContext(context.Background(), q).Scan(dst); err != nil {
			t.Fatal(err)
		}
	}
	if runs != old-int(n) || evidence != runs || orphans != 0 || silences != 1 || parts != 1 {
		t.Errorf("after the stopped purge: %d runs, %d pieces of evidence (%d of runs gone), %d silences, %d board parts; want %d, %d, 0, 1, 1",
			runs, evidence, orphans, silences, parts, old-30, old-30)
	}
	if m, err := s.Purge(context.Background(), before); err != nil || m != old-n+2 {
		t.Errorf("the next purge deleted %d rows (%v); want the %d runs left, the silence and the board", m, err, old-n)
	}
}

// Each batch of the age purge reads a range of an index, or the outbox from its lowest
// id, and sorts nothing: a batch that read or sorted the whole table would take longer
// the more there is to purge, each of the thousands of times.
func TestPurgeBatchesReadRanges(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "vigil.db"))
	oldRuns(t, s, 1000)
	for _, q := range []struct {
		query string
		args  []any
		read  string // the step of the inner SELECT
	}{
		{purgeRunsQuery, []any{1, 1}, "SEARCH runs USING COVERING INDEX runs_time (started_at<?)"},
		{purgeOutboxQuery, []any{1, 1, 1}, "SEARCH outbox USING INDEX outbox_created (created_at<?)"},
		{purgeEventsQuery, []any{1, 1}, "SEARCH events USING COVERING INDEX events_at (at<?)"},
	} {
		plan := queryPlan(t, s, q.query, q.args...)
		joined := strings.Join(plan, "\n")
		if !strings.Contains(joined, q.read) || strings.Contains(joined, "TEMP B-TREE") || !strings.HasPrefix(plan[0], "SEARCH") {
			t.Errorf("%s\nis read as:\n%s\nwant each row found by its id, and the batch by %q, unsorted", q.query, joined, q.read)
		}
	}
}

// BenchmarkPurge purges a store of runs past retention (b.N runs, each with half a
// kilobyte of variables; -benchtime=500000x), alone and while a run writer saves a hundred
// runs every 100 ms, as an agent of a thousand checks a minute would; it reports how long
// the writer waited at most for a batch of runs to be written, how many batches failed, and
// the largest the write-ahead log grew.
func BenchmarkPurge(b *testing.B) {
	b.Run("alone", func(b *testing.B) { benchPurge(b, false) })
	b.Run("writer", func(b *testing.B) { benchPurge(b, true) })
}

func benchPurge(b *testing.B, writing bool) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "vigil.db")
	s, err := Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.db.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i < ?-1)
		INSERT INTO runs(check_name, kind, started_at, duration_ns, outcome, vars)
		SELECT 'c'||(i%1000), 'http', ?+i*1000000, 2000000, 'pass', hex(zeroblob(256)) FROM n`, b.N, t0.UnixNano()); err != nil {
		b.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	before := t0.Add(time.Duration(b.N) * time.Millisecond)
	done := make(chan struct{})
	var slowest time.Duration
	var saves, failed int
	var wal int64
	writer := make(chan struct{})
	go func() {
		defer close(writer)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if fi, err := os.Stat(path + "-wal"); err == nil {
				wal = max(wal, fi.Size())
			}
			if !writing {
				continue
			}
			runs := make([]*RunRecord, 100)
			for j := range runs {
				runs[j] = &RunRecord{Check: fmt.Sprint("c", j), Kind: "http", Started: before.Add(time.Duration(i) * time.Second), Outcome: "pass", Attempts: 1}
			}
			began := time.Now()
			if err := s.SaveRuns(ctx, runs); err != nil {
				failed++
			}
			slowest = max(slowest, time.Since(began))
			saves++
		}
	}()
	b.ResetTimer()
	n, err := s.Purge(ctx, before)
	b.StopTimer()
	close(done)
	<-writer
	if err != nil || n != int64(b.N) {
		b.Fatalf("purged %d of %d runs: %v", n, b.N, err)
	}
	b.ReportMetric(float64(slowest.Milliseconds()), "slowest-save-ms")
	b.ReportMetric(float64(saves), "saves")
	b.ReportMetric(float64(failed), "failed-saves")
	b.ReportMetric(float64(wal)/1e6, "largest-wal-MB")
}

// A batch of the age purge grows while batches take under half of purgeTurn, and shrinks
// once one takes longer (a batch of runs with screenshots), within its bounds.
func TestPurgeBatchFollowsItsTime(t *testing.T) {
	for _, c := range []struct {
		rows int
		took time.Duration
		want int
	}{
		{1000, purgeTurn / 10, 2000},
		{1000, purgeTurn * 3 / 4, 1000},
		{1000, purgeTurn * 2, 500},
		{purgeRowsMax, 0, purgeRowsMax},
		{purgeRowsMin, time.Minute, purgeRowsMin},
		{purgeRowsMin + 1, time.Minute, purgeRowsMin},
	} {
		if got := nextBatch(c.rows, c.took); got != c.want {
			t.Errorf("after %d rows in %v: %d rows; want %d", c.rows, c.took, got, c.want)
		}
	}
}
