package store

// Boards: an agent's uptime board (the status page's buckets of runs, kept in the agent's
// memory) as it stopped, with the newest run stored then. An agent restarted under the
// same name reads it back and then only the runs stored after that run, rather than the
// last week's runs.

import (
	"context"
	"database/sql"
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

// SaveBoard keeps b as its agent's board, replacing the one before.
func (s *common) SaveBoard(ctx context.Context, b *Board) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO boards(agent, location, saved_at, last_run, data) VALUES (?,?,?,?,?)
		ON CONFLICT(agent) DO UPDATE SET location = excluded.location, saved_at = excluded.saved_at,
			last_run = excluded.last_run, data = excluded.data`,
		b.Agent, b.Location, nanos(b.SavedAt), b.LastRun, b.Data)
	return err
}

// SavedBoard returns agent's board; nil when it has none.
func (s *common) SavedBoard(ctx context.Context, agent string) (*Board, error) {
	b := &Board{Agent: agent}
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT location, saved_at, last_run, data FROM boards WHERE agent = ?`, agent).
		Scan(&b.Location, &at, &b.LastRun, &b.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	b.SavedAt = fromNanos(at)
	return b, err
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
