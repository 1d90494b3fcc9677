package store

// Deploys and their verdicts: registration supersedes the one verifying; a decision is
// written once, with its notifications, in one transaction.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"
)

// Deploy is a deploy and its verdict.
type Deploy struct {
	ID           string
	Service      string
	Version      string
	Environment  string
	Commit       string
	CreatedAt    time.Time
	Status       string
	Reason       string
	DecidedAt    time.Time
	SupersededBy string
	Halt         string
	// Baseline is each check's baseline variables, fixed when the deploy was registered.
	Baseline map[string]map[string]any
}

// CreateDeploy records a new deploy and marks any deploy of the same service still
// verifying as superseded by it. It returns the IDs it superseded.
func (s *SQLite) CreateDeploy(ctx context.Context, d *Deploy) ([]string, error) {
	var superseded []string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM deploys WHERE service = ? AND status = ?`, d.Service, StatusVerifying)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			superseded = append(superseded, id)
		}
		rows.Close()
		if len(superseded) > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE deploys SET status = ?, superseded_by = ?, decided_at = ?,
				reason = 'superseded by deploy ' || ? WHERE service = ? AND status = ?`,
				StatusSuperseded, d.ID, nanos(d.CreatedAt), d.ID, d.Service, StatusVerifying); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO deploys(id, service, version, environment, commit_sha, created_at, status, baseline)
			VALUES (?,?,?,?,?,?,?,?)`, d.ID, d.Service, d.Version, d.Environment, d.Commit, nanos(d.CreatedAt), d.Status, mustJSON(d.Baseline))
		return err
	})
	return superseded, s.noted("registering deploys", err)
}

const deployColumns = `id, service, version, environment, commit_sha, created_at, status, reason, decided_at, superseded_by, halt, baseline`

func scanDeploy(sc interface{ Scan(...any) error }) (*Deploy, error) {
	var d Deploy
	var created, decided int64
	var baseline string
	if err := sc.Scan(&d.ID, &d.Service, &d.Version, &d.Environment, &d.Commit, &created, &d.Status, &d.Reason,
		&decided, &d.SupersededBy, &d.Halt, &baseline); err != nil {
		return nil, err
	}
	d.CreatedAt, d.DecidedAt = fromNanos(created), fromNanos(decided)
	_ = json.Unmarshal([]byte(baseline), &d.Baseline)
	return &d, nil
}

// Deploy returns one deploy.
func (s *SQLite) Deploy(ctx context.Context, id string) (*Deploy, error) {
	d, err := scanDeploy(s.db.QueryRowContext(ctx, `SELECT `+deployColumns+` FROM deploys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return d, err
}

// Deploys returns the newest deploys, optionally only those with a status.
func (s *SQLite) Deploys(ctx context.Context, status string, limit int) ([]*Deploy, error) {
	if status == "" {
		return s.queryDeploys(ctx, ``, limit)
	}
	return s.queryDeploys(ctx, `WHERE status = ?`, limit, status)
}

// ServiceDeploys returns a service's newest deploys.
func (s *SQLite) ServiceDeploys(ctx context.Context, service string, limit int) ([]*Deploy, error) {
	return s.queryDeploys(ctx, `WHERE service = ?`, limit, service)
}

func (s *SQLite) queryDeploys(ctx context.Context, where string, limit int, args ...any) ([]*Deploy, error) {
	q := `SELECT ` + deployColumns + ` FROM deploys ` + where + ` ORDER BY created_at DESC, rowid DESC LIMIT ?`
	rows, err := s.db.QueryContext(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Deploy
	for rows.Next() {
		d, err := scanDeploy(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Decision is a verdict and what it sends.
type Decision struct {
	DeployID string
	Status   string
	Reason   string
	Halt     string
	At       time.Time
	Outbox   []*OutboxEntry
}

// DecideDeploy records a verdict and enqueues its notifications in one transaction. It
// only decides a deploy still verifying: it reports false (and writes nothing) for one
// already decided or superseded. An outbox entry whose notifier and key already exist is
// skipped, so an event reaches each notifier at most once.
func (s *SQLite) DecideDeploy(ctx context.Context, dec *Decision) (bool, error) {
	decided := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE deploys SET status = ?, reason = ?, halt = ?, decided_at = ? WHERE id = ? AND status = ?`,
			dec.Status, dec.Reason, dec.Halt, nanos(dec.At), dec.DeployID, StatusVerifying)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		decided = true
		return enqueue(ctx, tx, dec.Outbox)
	})
	return decided, s.noted("recording verdicts", err)
}
