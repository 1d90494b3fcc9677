package store

import (
	"context"
	"database/sql"
	"time"
)

// OutboxEntry is one notification to one notifier, delivered at least once.
type OutboxEntry struct {
	ID          int64
	Notifier    string
	Event       string
	Key         string // idempotency key: unique per notifier
	Incident    string
	Payload     []byte
	CreatedAt   time.Time
	NextAttempt time.Time
	Attempts    int
	Status      string
	LastError   string
	DoneAt      time.Time
}

func enqueue(ctx context.Context, tx *sql.Tx, entries []*OutboxEntry) error {
	for _, e := range entries {
		status := e.Status
		if status == "" {
			status = OutboxPending
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO outbox(notifier, event, idem_key, incident, payload, created_at, next_attempt_at, status, done_at, last_error)
			VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(notifier, idem_key) DO NOTHING`,
			e.Notifier, e.Event, e.Key, e.Incident, e.Payload, nanos(e.CreatedAt), nanos(e.CreatedAt), status, nanos(e.DoneAt), e.LastError)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			if id, err := res.LastInsertId(); err == nil {
				e.ID = id
			}
			e.Status = status
		}
	}
	return nil
}

// Enqueue adds entries outside any other change (action results, manual sends).
func (s *SQLite) Enqueue(ctx context.Context, entries []*OutboxEntry) error {
	return s.noted("queueing notifications", s.tx(ctx, func(tx *sql.Tx) error { return enqueue(ctx, tx, entries) }))
}

const outboxColumns = `id, notifier, event, idem_key, incident, payload, created_at, next_attempt_at, attempts, status, last_error, done_at`

func scanOutbox(sc interface{ Scan(...any) error }) (*OutboxEntry, error) {
	var e OutboxEntry
	var created, next, done int64
	if err := sc.Scan(&e.ID, &e.Notifier, &e.Event, &e.Key, &e.Incident, &e.Payload, &created, &next, &e.Attempts,
		&e.Status, &e.LastError, &done); err != nil {
		return nil, err
	}
	e.CreatedAt, e.NextAttempt, e.DoneAt = fromNanos(created), fromNanos(next), fromNanos(done)
	return &e, nil
}

func (s *SQLite) queryOutbox(ctx context.Context, q string, args ...any) ([]*OutboxEntry, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*OutboxEntry
	for rows.Next() {
		e, err := scanOutbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// DueOutbox returns pending entries whose next attempt is due, in the order they were
// written. An entry waits while an earlier entry of the same notifier and incident is
// still pending, so a thread's replies never overtake the message that opens it.
func (s *SQLite) DueOutbox(ctx context.Context, now time.Time, limit int) ([]*OutboxEntry, error) {
	return s.queryOutbox(ctx, `SELECT `+outboxColumns+` FROM outbox o WHERE status = ? AND next_attempt_at <= ?
		AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.notifier = o.notifier AND p.incident = o.incident
			AND p.status = ? AND p.id < o.id)
		ORDER BY id LIMIT ?`, OutboxPending, nanos(now), OutboxPending, limit)
}

// NextDue returns when the earliest pending entry is due (zero when none is pending).
func (s *SQLite) NextDue(ctx context.Context) (time.Time, error) {
	var n sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT MIN(next_attempt_at) FROM outbox WHERE status = ?`, OutboxPending).Scan(&n)
	if err != nil || !n.Valid {
		return time.Time{}, err
	}
	return fromNanos(n.Int64), nil
}

// Outbox lists entries, newest first, optionally only those with a status.
func (s *SQLite) Outbox(ctx context.Context, status string, limit int) ([]*OutboxEntry, error) {
	if status == "" {
		return s.queryOutbox(ctx, `SELECT `+outboxColumns+` FROM outbox ORDER BY id DESC LIMIT ?`, limit)
	}
	return s.queryOutbox(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE status = ? ORDER BY id DESC LIMIT ?`, status, limit)
}

// IncidentNotifiers lists the notifiers an incident's events were written for, so its
// closing news reaches whoever heard of its opening.
func (s *SQLite) IncidentNotifiers(ctx context.Context, incident string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT notifier FROM outbox WHERE incident = ? ORDER BY notifier`, incident)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// OutboxByKey returns every entry with the idempotency key, of any notifier and status,
// in the order they were written: what a test counts to prove a notification was written
// once and is no longer pending.
func (s *SQLite) OutboxByKey(ctx context.Context, key string) ([]*OutboxEntry, error) {
	return s.queryOutbox(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE idem_key = ? ORDER BY id`, key)
}

// OutboxCounts counts entries by status.
func (s *SQLite) OutboxCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT status, COUNT(*) FROM outbox GROUP BY status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// OutboxAttempt records the result of one delivery attempt.
type OutboxAttempt struct {
	ID        int64
	Status    string // pending (retry at Next), delivered, dead, dry_run, silenced
	Attempts  int
	Next      time.Time
	LastError string
	At        time.Time
}

// RecordAttempt stores a delivery attempt's result.
func (s *SQLite) RecordAttempt(ctx context.Context, a OutboxAttempt) error {
	done := int64(0)
	if a.Status != OutboxPending {
		done = nanos(a.At)
	}
	_, err := s.db.ExecContext(ctx, `UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, done_at = ? WHERE id = ?`,
		a.Status, a.Attempts, nanos(a.Next), a.LastError, done, a.ID)
	return s.noted("recording deliveries", err)
}

// Retry puts a dead entry back in the queue, due now.
func (s *SQLite) Retry(ctx context.Context, id int64, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE outbox SET status = ?, next_attempt_at = ?, done_at = 0 WHERE id = ? AND status = ?`,
		OutboxPending, nanos(now), id, OutboxDead)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
