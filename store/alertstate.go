package store

// Alert state: what each notifier remembers about an incident (a Slack thread, whether
// PagerDuty was triggered), kept across restarts.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"
)

// AlertState returns a notifier's delivery state for an incident (empty when none).
func (s *common) AlertState(ctx context.Context, notifier, incident string) (map[string]string, error) {
	var raw string
	err := s.db.QueryRowContext(ctx, `SELECT state FROM alert_state WHERE notifier = ? AND incident = ?`, notifier, incident).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	_ = json.Unmarshal([]byte(raw), &out)
	return out, nil
}

// SaveAlertState stores a notifier's delivery state for an incident.
func (s *common) SaveAlertState(ctx context.Context, notifier, incident string, state map[string]string, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO alert_state(notifier, incident, state, updated_at) VALUES (?,?,?,?)
		ON CONFLICT(notifier, incident) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
		notifier, incident, mustJSON(state), nanos(now))
	return err
}
