package store

// Retention: how big the store is, and purging by age and by size.

import (
	"context"
	"fmt"
	"time"
)

// The age purge deletes in batches, each its own transaction. A batch should hold the
// write lock for about purgeTurn: the runs written meanwhile wait that long at most, where
// runs differ in size a hundredfold (a screenshot, or none). It starts at purgeRows rows,
// and each next batch has twice as many while the last took under half of purgeTurn, half
// as many once it took more (nextBatch), between purgeRowsMin and purgeRowsMax. Fewer, larger
// batches cost less: a batch of the oldest runs holds a run of every check, and writes a
// page of the per-check index for each (BenchmarkPurge).
const (
	purgeTurn    = 100 * time.Millisecond
	purgeRows    = 1000
	purgeRowsMin = 10
	purgeRowsMax = 50_000
)

// The age purge's batches (TestPurgeBatchesReadRanges). Runs go oldest first, a range of
// the runs_time index; the outbox's finished entries too, a range of outbox_created (in id
// order, with no index by time, each batch and the last one short of it read every entry:
// 100-250 ms on SQLite, 50 ms on PostgreSQL, of a write transaction, for 100,000 entries).
// Its outer test is the inner one again: on PostgreSQL an entry retried (dead to pending)
// since the inner SELECT read it is then kept, as the one statement kept it.
const (
	purgeRunsQuery   = `DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE started_at < ? ORDER BY started_at LIMIT ?)`
	purgeOutboxQuery = `DELETE FROM outbox WHERE status != 'pending' AND created_at < ? AND id IN
		(SELECT id FROM outbox WHERE status != 'pending' AND created_at < ? ORDER BY created_at LIMIT ?)`
	purgeEventsQuery = `DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ? ORDER BY at LIMIT ?)`
	// purgeOutboxToSizeQuery deletes the oldest finished entries, for PurgeToSize.
	purgeOutboxToSizeQuery = `DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status != 'pending' ORDER BY created_at LIMIT 100)`
)

// Purge deletes what is older than before: runs with their evidence, finished outbox
// entries, expired silences, alert state, agents not heard from since then with their
// boards, and beats but each check's last. Runs and the outbox can be millions of rows (a
// retention lowered from a week to a day, at a thousand runs a second): they go in
// batches, each its own short transaction (inBatches), so that the runs written meanwhile
// wait for a batch, not for the purge. It stops between batches once ctx ends, and
// returns what it deleted until then; what is left goes at the next purge.
func (s *common) Purge(ctx context.Context, before time.Time) (int64, error) {
	b := nanos(before)
	total, err := s.inBatches(ctx, purgeRunsQuery, b)
	if err != nil {
		return total, fmt.Errorf("purging runs past retention: %w", err)
	}
	n, err := s.inBatches(ctx, purgeOutboxQuery, b, b)
	total += n
	if err != nil {
		return total, fmt.Errorf("purging finished notifications past retention: %w", err)
	}
	// The rest are small: a row per silence, incident and notifier, agent, and at most
	// BeatsKept beats per heartbeat check.
	err = s.tx(ctx, func(tx *txn) error {
		for _, q := range []string{
			`DELETE FROM silences WHERE ends_at < ?`,
			`DELETE FROM alert_state WHERE updated_at < ?`,
			`DELETE FROM agents WHERE heartbeat_at < ?`,
			// an agent's board from before: its runs are gone (each new pod's name its own)
			`DELETE FROM boards WHERE saved_at < ?`,
			// a check's last beat stays: a weekly job's window may be longer than retention
			`DELETE FROM beats WHERE received_at < ? AND id NOT IN (SELECT MAX(id) FROM beats GROUP BY check_name)`,
		} {
			res, err := tx.ExecContext(ctx, q, b)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			total += n
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM board_parts WHERE agent NOT IN (SELECT agent FROM boards)`)
		return err
	})
	if err != nil {
		return total, fmt.Errorf("purging silences, agents and beats past retention: %w", err)
	}
	return total, nil
}

// inBatches runs del, a DELETE of at most as many rows as its last argument (added here),
// until a run of it deletes fewer, each run its own transaction and this process's turn
// to write. A writer that asked for its turn meanwhile (the batch of runs, a page to
// send) is next: turns go in the order they were asked for (conn.lockWrites). It stops
// once ctx ends, and returns the rows deleted.
func (s *common) inBatches(ctx context.Context, del string, args ...any) (int64, error) {
	rows := purgeRows
	if s.purgeBatch > 0 {
		rows = s.purgeBatch
	}
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return total, err
		}
		began := time.Now()
		res, err := tx.ExecContext(ctx, del, append(args, rows)...)
		if err == nil {
			err = tx.Commit()
		}
		if err != nil {
			_ = tx.Rollback()
			return total, err
		}
		n, _ := res.RowsAffected()
		total += n
		if n < int64(rows) {
			return total, nil
		}
		if s.purgeBatch == 0 {
			rows = nextBatch(rows, time.Since(began))
		}
	}
}

// nextBatch is the rows of the batch after one of rows that held the write lock for took.
func nextBatch(rows int, took time.Duration) int {
	switch {
	case took < purgeTurn/2:
		return min(rows*2, purgeRowsMax)
	case took > purgeTurn:
		return max(rows/2, purgeRowsMin)
	}
	return rows
}

// Size is how many bytes the database's data takes: the pages in use, the WAL's included.
func (s *SQLite) Size(ctx context.Context) (int64, error) {
	var pages, free, size int64
	for _, q := range []struct {
		pragma string
		dst    *int64
	}{{"page_count", &pages}, {"freelist_count", &free}, {"page_size", &size}} {
		if err := s.db.QueryRowContext(ctx, "PRAGMA "+q.pragma).Scan(q.dst); err != nil {
			return 0, fmt.Errorf("reading the store's size: %w", err)
		}
	}
	return (pages - free) * size, nil
}

// PurgeToSize deletes the oldest runs with their evidence, then the oldest finished outbox
// entries, until the data takes at most nine tenths of max bytes (room for the next burst
// before the next purge); it does nothing while the data fits in limit. Deploys, incidents
// and pending notifications are never deleted. It returns the rows deleted and the size.
func (s *SQLite) PurgeToSize(ctx context.Context, limit int64) (int64, int64, error) {
	size, err := s.Size(ctx)
	if err != nil || size <= limit {
		return 0, size, err
	}
	var deleted int64
	target := limit - limit/10
	runs, err := s.CountRuns(ctx)
	if err != nil {
		return 0, size, err
	}
	for size > target {
		// About the share of the runs that is over, half at a time: runs differ in size.
		batch := min(max(runs*(size-target)/size/2, 1), 1000)
		res, err := s.db.ExecContext(ctx, `DELETE FROM runs WHERE id IN (SELECT id FROM runs ORDER BY started_at LIMIT ?)`, batch)
		if err != nil {
			return deleted, size, fmt.Errorf("purging the oldest runs: %w", err)
		}
		n, _ := res.RowsAffected()
		runs -= n
		if n == 0 {
			res, err = s.db.ExecContext(ctx, purgeOutboxToSizeQuery)
			if err != nil {
				return deleted, size, fmt.Errorf("purging the oldest notifications: %w", err)
			}
			if n, _ = res.RowsAffected(); n == 0 {
				break // nothing left that may go
			}
		}
		deleted += n
		if size, err = s.Size(ctx); err != nil {
			return deleted, size, err
		}
	}
	// Give the freed pages back to the file system (databases created with auto_vacuum).
	if _, err := s.db.ExecContext(ctx, `PRAGMA incremental_vacuum`); err != nil {
		return deleted, size, fmt.Errorf("vacuuming after the purge: %w", err)
	}
	return deleted, size, nil
}
