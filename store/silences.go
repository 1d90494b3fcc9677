package store

// Silences: services or checks muted for a while through the API.

import (
	"context"
	"time"
)

// Silence mutes notifications for a check or a service for a while.
type Silence struct {
	ID        string
	Check     string
	Service   string
	Starts    time.Time
	Ends      time.Time
	Reason    string
	CreatedBy string
	CreatedAt time.Time
}

// AddSilence stores a silence.
func (s *common) AddSilence(ctx context.Context, sl *Silence) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO silences(id, check_name, service, starts_at, ends_at, reason, created_by, created_at)
		VALUES (?,?,?,?,?,?,?,?)`, sl.ID, sl.Check, sl.Service, nanos(sl.Starts), nanos(sl.Ends), sl.Reason, sl.CreatedBy, nanos(sl.CreatedAt))
	return err
}

// Silences returns silences that have not ended by now.
func (s *common) Silences(ctx context.Context, now time.Time) ([]*Silence, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, check_name, service, starts_at, ends_at, reason, created_by, created_at
		FROM silences WHERE ends_at > ? ORDER BY starts_at`, nanos(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Silence
	for rows.Next() {
		var sl Silence
		var st, en, cr int64
		if err := rows.Scan(&sl.ID, &sl.Check, &sl.Service, &st, &en, &sl.Reason, &sl.CreatedBy, &cr); err != nil {
			return nil, err
		}
		sl.Starts, sl.Ends, sl.CreatedAt = fromNanos(st), fromNanos(en), fromNanos(cr)
		out = append(out, &sl)
	}
	return out, rows.Err()
}

// DeleteSilence ends a silence now.
func (s *common) DeleteSilence(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM silences WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
