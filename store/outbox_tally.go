package store

// The outbox's count by state, kept as the outbox changes (migration 18's triggers) rather
// than counted: counting a week's hundred thousand entries took PostgreSQL 60-160 ms at
// every read of the API's outbox page, however few were pending.

import "context"

// tallyFoldAt is how many rows of changes OutboxCounts lets gather before it folds them
// into a row per state.
const tallyFoldAt = 256

const outboxCountsQuery = `SELECT status, SUM(n), COUNT(*) FROM outbox_tally GROUP BY status`

// OutboxCounts counts entries by status: the sum of the changes the outbox's triggers
// wrote, each in the transaction of its change, so a count reads what is committed, as a
// COUNT(*) would, whichever agents write at once.
func (s *common) OutboxCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, outboxCountsQuery)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	changes := 0
	for rows.Next() {
		var st string
		var n, c int
		if err := rows.Scan(&st, &n, &c); err != nil {
			return nil, err
		}
		changes += c
		if n != 0 {
			out[st] = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if changes > tallyFoldAt {
		// A count that could not fold is right all the same: the next read folds.
		_ = s.foldTally(ctx)
	}
	return out, nil
}

// foldTally replaces the outbox's rows of changes with a row per state. It sums the rows
// its own DELETE took, and only those: a change committed meanwhile, by another agent, is
// left for the next fold, and one another agent's fold took is summed by that fold.
func (s *common) foldTally(ctx context.Context) error {
	return s.tx(ctx, func(tx *txn) error {
		rows, err := tx.QueryContext(ctx, `DELETE FROM outbox_tally RETURNING status, n`)
		if err != nil {
			return err
		}
		sums := map[string]int64{}
		for rows.Next() {
			var st string
			var n int64
			if err := rows.Scan(&st, &n); err != nil {
				rows.Close()
				return err
			}
			sums[st] += n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for st, n := range sums {
			if n == 0 {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO outbox_tally(status, n) VALUES (?, ?)`, st, n); err != nil {
				return err
			}
		}
		return nil
	})
}
