package store

// Beats: what jobs post to heartbeat checks, kept where every agent sharing the store reads
// them, so that a beat posted to any agent of a location counts, and a restart loses none.

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"
)

// Beat is one heartbeat a job posted.
type Beat struct {
	At      time.Time
	Version string
	Status  string // "ok" or "fail"
	Message string
	// Agent is the agent that received it.
	Agent string
}

// BeatsKept bounds the beats kept per check, newest first: enough to count a window's
// beats for jobs that beat every few seconds, and no more, whatever a client posts.
const BeatsKept = 256

// SaveBeat keeps a beat of check, and no more than the newest BeatsKept of its beats.
func (s *common) SaveBeat(ctx context.Context, check string, b *Beat) error {
	return s.noted("saving beats", s.tx(ctx, func(tx *txn) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO beats(check_name, received_at, version, status, message, agent) VALUES (?,?,?,?,?,?)`,
			check, nanos(b.At), b.Version, b.Status, b.Message, b.Agent); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM beats WHERE check_name = ? AND id NOT IN
			(SELECT id FROM beats WHERE check_name = ? ORDER BY received_at DESC, id DESC LIMIT ?)`, check, check, BeatsKept)
		return err
	}))
}

// Beats returns check's beats received at or after since, oldest first, and its last beat
// (nil: none kept).
func (s *common) Beats(ctx context.Context, check string, since time.Time) ([]*Beat, *Beat, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT received_at, version, status, message, agent FROM beats
		WHERE check_name = ? ORDER BY received_at DESC, id DESC LIMIT ?`, check, BeatsKept)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var recent []*Beat
	var last *Beat
	for rows.Next() {
		var b Beat
		var at int64
		if err := rows.Scan(&at, &b.Version, &b.Status, &b.Message, &b.Agent); err != nil {
			return nil, nil, err
		}
		b.At = fromNanos(at)
		if last == nil {
			last = &b
		}
		if b.At.Before(since) {
			break
		}
		recent = append(recent, &b)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	slices.Reverse(recent)
	return recent, last, nil
}

// BeatsTaken is how long beats for check have been taken without a break, by the store's
// clock (the database's on PostgreSQL, so that agents' clocks do not decide it; now on
// SQLite): since the store's agents last began to take them after a gap (see Heartbeat),
// or since the check's beats were first asked about, whichever is later, so that a check
// added to the config is not blamed for the time before it. Zero when no agent counts as
// alive now. A missed beat is the job's only over that time: one posted while no agent
// was there was lost.
func (s *common) BeatsTaken(ctx context.Context, check string, now time.Time) (time.Duration, error) {
	clock, args := s.nowSQL(now)
	read := func() (taken time.Duration, found bool, err error) {
		var serving, until sql.NullInt64
		var since, at int64
		err = s.db.QueryRowContext(ctx, `SELECT s.since_at, s.until_at, c.since_at, `+clock+` FROM beat_checks c
			LEFT JOIN beat_service s ON s.store = '' WHERE c.check_name = ?`, append(args, check)...).Scan(&serving, &until, &since, &at)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return 0, false, nil
		case err != nil || !serving.Valid || at > until.Int64:
			return 0, err == nil, err
		}
		return time.Duration(at - max(serving.Int64, since)), true, nil
	}
	taken, found, err := read()
	if err != nil || found {
		return max(taken, 0), err
	}
	// The check's first read: written once, the earliest kept whichever agent writes first.
	if _, err := s.db.ExecContext(ctx, `INSERT INTO beat_checks(check_name, since_at) VALUES (?, `+clock+`)
		ON CONFLICT(check_name) DO NOTHING`, append([]any{check}, args...)...); err != nil {
		return 0, err
	}
	taken, _, err = read()
	return max(taken, 0), err
}
