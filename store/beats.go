package store

// Beats: what jobs post to heartbeat checks, kept where every agent sharing the store reads
// them, so that a beat posted to any agent of a location counts, and a restart loses none.

import (
	"context"
	"database/sql"
	"errors"
	"maps"
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

// BeatSpan is a time beats for a check were taken without a break: [From, Until].
type BeatSpan struct{ From, Until time.Time }

// BeatsTaking is when a check's beats have been taken, told in the caller's clock.
type BeatsTaking struct {
	// Since is when the current time without a break began: zero when no agent takes them
	// now.
	Since time.Time
	// Before are earlier times without a break, newest first: the one that ended last, when
	// no agent takes them now, and the last one before that, at least as long as the
	// check's window when it ended. A job whose last beat came a window before one of them
	// ended missed a beat while an agent was there to take it, whatever came after.
	Before []BeatSpan
}

// BeatsTaken is when, at now, the beats of check have been taken (see BeatsTaking), by the
// store's clock (the database's on PostgreSQL, so that agents' clocks do not decide it;
// now on SQLite), told in the caller's. A check's beats are taken while an agent whose
// config has it is alive: each heartbeat of such an agent vouches for them until it would
// be silent (Member.BeatChecks); a clean stop, or a reload that takes the check out of
// the config, ends that at once. Beats posted while no agent took them were lost, not
// missed by the job.
func (s *common) BeatsTaken(ctx context.Context, check string, now time.Time) (BeatsTaking, error) {
	clock, args := s.nowSQL(now)
	var since, until, prevSince, prevUntil, at int64
	err := s.db.QueryRowContext(ctx, `SELECT since_at, until_at, prev_since, prev_until, `+clock+` FROM beat_checks WHERE check_name = ?`,
		append(args, check)...).Scan(&since, &until, &prevSince, &prevUntil, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return BeatsTaking{}, nil // no agent has taken its beats yet
	}
	if err != nil {
		return BeatsTaking{}, err
	}
	told := func(t int64) time.Time { return fromNanos(t - at + nanos(now)) }
	var out BeatsTaking
	if at <= until {
		out.Since = told(since)
	} else {
		out.Before = append(out.Before, BeatSpan{told(since), told(until)})
	}
	if prevUntil != 0 {
		out.Before = append(out.Before, BeatSpan{told(prevSince), told(prevUntil)})
	}
	return out, nil
}

// stamp is a time as SQL, and its arguments: the database's clock, or a caller's time.
type stamp struct {
	q    string
	args []any
}

// takeBeats records in tx that agent, alive from at until until, takes the beats of
// checks (by name, with their windows), and no longer those of the checks it took before
// and does not now: a reload took them out of its config (removed), or it stopped (no
// checks, not removed; see leaveBeats). Checks are locked in name
// order, whoever writes, so agents beating at once never wait for each other in a circle.
func (s *common) takeBeats(ctx context.Context, tx *txn, agent string, checks map[string]time.Duration, at, until stamp, removed bool) error {
	rows, err := tx.QueryContext(ctx, `SELECT check_name FROM beat_takers WHERE agent = ?`, agent)
	if err != nil {
		return err
	}
	names := slices.Collect(maps.Keys(checks))
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		if _, ok := checks[name]; !ok {
			names = append(names, name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		window, ok := checks[name]
		if !ok {
			if err := s.leaveBeats(ctx, tx, name, agent, at, removed); err != nil {
				return err
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO beat_takers(check_name, agent, until_at) VALUES (?, ?, `+until.q+`)
			ON CONFLICT(check_name, agent) DO UPDATE SET until_at = excluded.until_at`, append([]any{name, agent}, until.args...)...); err != nil {
			return err
		}
		// A heartbeat after the last one's time ran out begins the time again; the time it
		// ends is kept as the one before if it lasted a window (a job's miss within it is
		// proven), else the one kept before stays.
		args := append(append(append([]any{name}, at.args...), until.args...), int64(window), int64(window))
		if _, err := tx.ExecContext(ctx, `INSERT INTO beat_checks(check_name, since_at, until_at) VALUES (?, `+at.q+`, `+until.q+`)
			ON CONFLICT(check_name) DO UPDATE SET
			prev_since = CASE WHEN excluded.since_at > beat_checks.until_at AND beat_checks.until_at - beat_checks.since_at >= ?
				THEN beat_checks.since_at ELSE beat_checks.prev_since END,
			prev_until = CASE WHEN excluded.since_at > beat_checks.until_at AND beat_checks.until_at - beat_checks.since_at >= ?
				THEN beat_checks.until_at ELSE beat_checks.prev_until END,
			since_at = CASE WHEN excluded.since_at > beat_checks.until_at THEN excluded.since_at ELSE beat_checks.since_at END,
			until_at = CASE WHEN excluded.until_at > beat_checks.until_at THEN excluded.until_at ELSE beat_checks.until_at END`,
			args...); err != nil {
			return err
		}
	}
	return nil
}

// leaveBeats records in tx that agent no longer takes check's beats, from at on. Another
// agent that still does keeps the time going. Otherwise a clean stop ends it at at (beats
// posted after are not the job's to miss, and a restart begins it again); a check taken
// out of the config (removed) is forgotten, so that put back it is judged from then, not
// from its first run long ago. A stopped agent's word is kept, ended, so that the config
// it comes back with, without the check, forgets it too.
func (s *common) leaveBeats(ctx context.Context, tx *txn, check, agent string, at stamp, removed bool) error {
	if removed {
		if _, err := tx.ExecContext(ctx, `DELETE FROM beat_takers WHERE check_name = ? AND agent = ?`, check, agent); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM beat_checks WHERE check_name = ?
			AND NOT EXISTS (SELECT 1 FROM beat_takers t WHERE t.check_name = ? AND t.until_at > `+at.q+`)`,
			append([]any{check, check}, at.args...)...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
	} else if _, err := tx.ExecContext(ctx, `UPDATE beat_takers SET until_at = `+at.q+` WHERE check_name = ? AND agent = ?`,
		append(append([]any{}, at.args...), check, agent)...); err != nil {
		return err
	}
	args := append(append(append([]any{}, at.args...), at.args...), check)
	_, err := tx.ExecContext(ctx, `UPDATE beat_checks SET until_at = COALESCE((SELECT MAX(t.until_at) FROM beat_takers t
			WHERE t.check_name = beat_checks.check_name AND t.until_at > `+at.q+`), `+at.q+`)
		WHERE check_name = ? AND until_at > `+at.q, append(args, at.args...)...)
	return err
}
