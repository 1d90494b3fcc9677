package store

// Boards: an agent's uptime board (the status page's buckets of runs, kept in the agent's
// memory) as it stopped, with the newest run stored then. An agent restarted under the
// same name reads it back and then only the runs stored after that run, rather than the
// last week's runs.

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"time"
)

// Board is an agent's saved uptime board.
type Board struct {
	Agent, Location string
	SavedAt         time.Time
	// LastRun is the id of the newest run stored when it was saved: the board holds the
	// runs up to it, and the runs after it are to be read.
	LastRun int64
	Data    []byte // the agent's encoding
}

// BoardPart is the most of a saved board one row holds: a database copies a value it is
// given, once or twice, so a board of ten thousand checks (12 MB) saved as one value
// took up to 28 MB more while it was saved.
const BoardPart = 1 << 20

// SaveBoard keeps b as its agent's board, replacing the one before (in parts of
// BoardPart, see SaveBoardParts).
func (s *common) SaveBoard(ctx context.Context, b *Board) error {
	return s.SaveBoardParts(ctx, b, func(put func([]byte) error) error {
		for data := b.Data; len(data) > 0; {
			part := data[:min(len(data), BoardPart)]
			if err := put(part); err != nil {
				return err
			}
			data = data[len(part):]
		}
		return nil
	})
}

// SaveBoardParts keeps b as its agent's board, replacing the one before, in one
// transaction: its data (b.Data is not used) is what write puts, a part at a time, each
// a row of its own (put is done with the part when it returns: its buffer can be reused).
// An error from write rolls the save back. So a board can be encoded straight into the
// store, rather than whole first.
func (s *common) SaveBoardParts(ctx context.Context, b *Board, write func(put func(part []byte) error) error) error {
	return s.tx(ctx, func(tx *txn) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO boards(agent, location, saved_at, last_run, data) VALUES (?,?,?,?,?)
		ON CONFLICT(agent) DO UPDATE SET location = excluded.location, saved_at = excluded.saved_at,
			last_run = excluded.last_run, data = excluded.data`,
			b.Agent, b.Location, nanos(b.SavedAt), b.LastRun, []byte{}); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM board_parts WHERE agent = ?`, b.Agent); err != nil {
			return err
		}
		n := 0
		return write(func(part []byte) error {
			if len(part) == 0 {
				return nil
			}
			n++
			_, err := tx.ExecContext(ctx, `INSERT INTO board_parts(agent, part, data) VALUES (?,?,?)`, b.Agent, n, part)
			return err
		})
	})
}

// SavedBoard returns agent's board; nil when it has none. Its data is its parts, in
// order, or the row's own when that is not empty: a board saved whole, by a vigil from
// before parts (still running beside a newer one as they are upgraded), and the parts a
// newer one left are not this board's.
func (s *common) SavedBoard(ctx context.Context, agent string) (*Board, error) {
	var b *Board
	err := s.tx(ctx, func(tx *txn) error {
		b = &Board{Agent: agent}
		var at, size int64
		err := tx.QueryRowContext(ctx, `SELECT location, saved_at, last_run, data,
			(SELECT COALESCE(SUM(LENGTH(data)), 0) FROM board_parts WHERE agent = boards.agent) FROM boards WHERE agent = ?`, agent).
			Scan(&b.Location, &at, &b.LastRun, &b.Data, &size)
		if errors.Is(err, sql.ErrNoRows) {
			b = nil
			return nil
		}
		if err != nil {
			return err
		}
		b.SavedAt = fromNanos(at)
		if size == 0 || len(b.Data) > 0 { // whole in its row: saved by a vigil before parts
			return nil
		}
		b.Data = make([]byte, 0, size)
		rows, err := tx.QueryContext(ctx, `SELECT data FROM board_parts WHERE agent = ? ORDER BY part`, agent)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var part sql.RawBytes
			if err := rows.Scan(&part); err != nil {
				return err
			}
			b.Data = append(b.Data, part...)
		}
		return rows.Err()
	})
	return b, err
}

// BucketRow is the runs of one check with one outcome in one time bucket.
type BucketRow struct {
	Check   string
	Bucket  int64 // started_at / width, from the Unix epoch
	Outcome string
	Runs    int
	Sum     time.Duration
	Max     time.Duration
}

// RunBuckets streams the runs in location that started in [from, to), counted by check,
// bucket (started_at / width) and outcome, to fn: what the agent's uptime bars start from
// (an agent's own location's runs, as it counts its own from then on).
func (s *common) RunBuckets(ctx context.Context, location string, from, to time.Time, width time.Duration, fn func(BucketRow)) error {
	return s.runBuckets(ctx, `SELECT check_name, started_at / ? AS b, outcome, COUNT(*), SUM(duration_ns), MAX(duration_ns)
		FROM runs WHERE started_at >= ? AND started_at < ? AND location = ? GROUP BY check_name, b, outcome`,
		fn, int64(width), nanos(from), nanos(to), location)
}

// runBuckets streams the rows of a bucket query to fn, on a connection of its own with
// the dialect's setting for a bulk read (SQLite: a small page cache) while it reads.
func (s *common) runBuckets(ctx context.Context, query string, fn func(BucketRow), args ...any) error {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if s.d.bulkRead != nil {
		restore, err := s.d.bulkRead(ctx, c)
		if err != nil {
			return err
		}
		defer func() {
			if restore() != nil { // not back to the pool with the bulk read's setting
				_ = c.Raw(func(any) error { return sqldriver.ErrBadConn })
			}
		}()
	}
	rows, err := c.QueryContext(ctx, s.db.q(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r BucketRow
		var sum, mx int64
		if err := rows.Scan(&r.Check, &r.Bucket, &r.Outcome, &r.Runs, &sum, &mx); err != nil {
			return err
		}
		r.Sum, r.Max = time.Duration(sum), time.Duration(mx)
		fn(r)
	}
	return rows.Err()
}

// LastRunID is the id of the newest run stored; 0 when none is.
func (s *common) LastRunID(ctx context.Context) (int64, error) {
	var id sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT MAX(id) FROM runs`).Scan(&id)
	return id.Int64, err
}

// RunBucketsByID is RunBuckets over the runs with ids in (after, upTo] (a step along the
// runs' primary key, whatever their times) that started in [from, to).
func (s *common) RunBucketsByID(ctx context.Context, location string, after, upTo int64, from, to time.Time, width time.Duration, fn func(BucketRow)) error {
	return s.runBuckets(ctx, runBucketsByIDQuery, fn, int64(width), after, upTo, nanos(from), nanos(to), location)
}

// runBucketsByIDQuery: +started_at makes the time a filter, not the index to walk (SQLite
// would otherwise walk the week's runs by time to find the few written since).
const runBucketsByIDQuery = `SELECT check_name, started_at / ? AS b, outcome, COUNT(*), SUM(duration_ns), MAX(duration_ns)
	FROM runs WHERE id > ? AND id <= ? AND +started_at >= ? AND +started_at < ? AND location = ? GROUP BY check_name, b, outcome`
