package agent

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// BenchmarkBoardRestart is what an agent restarted on a store with history reads before its
// status page's figures hold their windows: the runs of the week (week), or the board it
// saved as it stopped and the runs stored since (saved: none here, a restart straight
// after the stop), or the board it saved while running and the runs stored since, after a
// crash as late after that save as it can come (crash: 300,000 runs, five minutes of them,
// as boards are saved every five minutes). The store holds 1,000 runs of each of 1,000 checks, one a second each
// (a million runs, as benchload's aged store), in the agent's location. It reports the
// wall time per read (the week's is paced to half a core) and the CPU.
func BenchmarkBoardRestart(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "vigil.db")
	st, err := store.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		b.Fatal(err)
	}
	const checks, history = 1000, 1000
	now := time.Now()
	first := now.Add(-(history + 60) * time.Second)
	// A round of every check a second, spread over the second, as the agent writes them.
	if _, err := db.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i < ?-1)
		INSERT INTO runs(check_name, kind, started_at, duration_ns, outcome, attempts, location)
		SELECT 'c'||(i % ?), 'http', ? + (i / ?) * ? + (i % ?) * ?, 2000000, 'pass', 1, 'local' FROM n`,
		checks*history, checks, first.UnixNano(), checks, int64(time.Second), checks, int64(time.Second)/checks); err != nil {
		b.Fatal(err)
	}
	db.Close()
	seeded := newBoard(now)
	if err := seeded.seed(ctx, st, "local", now, now); err != nil {
		b.Fatal(err)
	}
	data, _ := seeded.encode()
	last, err := st.LastRunID(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.SaveBoard(ctx, &store.Board{Agent: "a1", Location: "local", SavedAt: now, LastRun: last, Data: data}); err != nil {
		b.Fatal(err)
	}
	// The board saved five minutes before the crash: the runs that started before then.
	const sinceSave = 300
	before := newBoard(now)
	if err := before.seed(ctx, st, "local", now, first.Add((history-sinceSave)*time.Second)); err != nil {
		b.Fatal(err)
	}
	beforeData, _ := before.encode()
	if err := st.SaveBoard(ctx, &store.Board{Agent: "a2", Location: "local", SavedAt: now, LastRun: checks * (history - sinceSave), Data: beforeData}); err != nil {
		b.Fatal(err)
	}
	restore := func(bd *board, agent string) error {
		used, err := bd.restore(ctx, st, agent, "local", now, now)
		if !used && err == nil {
			b.Fatal("the saved board was not used")
		}
		return err
	}
	read := map[string]func(bd *board) error{
		"week":  func(bd *board) error { return bd.seed(ctx, st, "local", now, now) },
		"saved": func(bd *board) error { return restore(bd, "a1") },
		"crash": func(bd *board) error { return restore(bd, "a2") },
	}
	for _, name := range []string{"week", "saved", "crash"} {
		b.Run(name, func(b *testing.B) {
			cpu := cpuTime()
			for range b.N {
				bd := newBoard(now)
				if err := read[name](bd); err != nil {
					b.Fatal(err)
				}
				if s, _ := bd.stats("c0", now); s.Hour.total() != history || s.Partial != [3]bool{} {
					b.Fatalf("c0's last hour: %d runs, partial %v", s.Hour.total(), s.Partial)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(len(data))/1024, "saved-KiB")
		})
	}
}
