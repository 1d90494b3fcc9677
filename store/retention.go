package store

// Retention: how big the store is, and purging by age and by size.

import (
	"context"
	"fmt"
)

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
			res, err = s.db.ExecContext(ctx, `DELETE FROM outbox WHERE id IN
				(SELECT id FROM outbox WHERE status != 'pending' ORDER BY created_at LIMIT 100)`)
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
