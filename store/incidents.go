package store

// Check incidents: scheduled monitoring's open/closed state per check, written with the
// notifications a change sends.

import (
	"context"
	"database/sql"
	"time"
)

// Incident is the alert state of one check under scheduled monitoring.
type Incident struct {
	Check     string
	Open      bool
	Seq       int // incremented each time an incident opens
	Failures  int // failing runs in a row
	Successes int // passing runs in a row
	OpenedAt  time.Time
	Summary   string
	// Reminders counts reminders sent for the open incident; NotifiedAt is when it was last
	// announced (opened or reminded).
	Reminders  int
	NotifiedAt time.Time
}

// Incidents returns every check's incident state.
func (s *SQLite) Incidents(ctx context.Context) (map[string]*Incident, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT check_name, open, seq, failures, successes, opened_at, summary, reminders, notified_at FROM incidents`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]*Incident{}
	for rows.Next() {
		var in Incident
		var open int
		var opened, notified int64
		if err := rows.Scan(&in.Check, &open, &in.Seq, &in.Failures, &in.Successes, &opened, &in.Summary, &in.Reminders, &notified); err != nil {
			return nil, err
		}
		in.Open, in.OpenedAt, in.NotifiedAt = open == 1, fromNanos(opened), fromNanos(notified)
		out[in.Check] = &in
	}
	return out, rows.Err()
}

// SaveIncident stores a check's incident state and enqueues what the change sends, in one
// transaction.
func (s *SQLite) SaveIncident(ctx context.Context, in *Incident, outbox []*OutboxEntry) error {
	return s.noted("saving incidents", s.tx(ctx, func(tx *sql.Tx) error {
		open := 0
		if in.Open {
			open = 1
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO incidents(check_name, open, seq, failures, successes, opened_at, summary, reminders, notified_at)
			VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(check_name) DO UPDATE SET open = excluded.open, seq = excluded.seq,
			failures = excluded.failures, successes = excluded.successes, opened_at = excluded.opened_at, summary = excluded.summary,
			reminders = excluded.reminders, notified_at = excluded.notified_at`,
			in.Check, open, in.Seq, in.Failures, in.Successes, nanos(in.OpenedAt), in.Summary, in.Reminders, nanos(in.NotifiedAt))
		if err != nil {
			return err
		}
		return enqueue(ctx, tx, outbox)
	}))
}
