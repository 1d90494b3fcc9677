package store

// Deploys and their verdicts: registration supersedes the one verifying; every location
// verifying a deploy reports its own verdict, and the deploy's verdict is decided once,
// from those reports, with its notifications, in one transaction that holds the deploy.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// StatusCancelled is a deploy whose verification was called off on request (its rollout
// aborted): it has no verdict, and sent none.
const StatusCancelled = "cancelled"

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
	// Baseline is each check's baseline variables in Location, fixed when the deploy was
	// registered there.
	Baseline map[string]map[string]any
	// Location is where the deploy was registered; Locations are the locations expected
	// to verify it (sorted).
	Location  string
	Locations []string
	// RequestKey is the key the deploy was registered under (the caller's Idempotency-Key;
	// "" for none): CreateDeploy registers one deploy of a service per key.
	RequestKey string
	// RollbackOf is the failed deploy this one rolled back ("" when it is not a rollback).
	RollbackOf string
	// Source matters only to the registration, and is not stored: the source of deploys
	// that registers this one (a webhook), known by the prefix of the request keys it
	// registers them under ("" for none). Such a deploy does not supersede a deploy of its
	// source verifying another Environment: the service's checks test one set of URLs and
	// would judge each on the other's answers. CreateDeploy refuses it instead, with a
	// *SourceConflictError, deciding it under the lock that supersedes.
	Source string
}

// RegisteredError is CreateDeploy's answer when the deploy's request key has registered a
// deploy of its service already (a registration sent again after its answer was lost):
// Deploy is that deploy, as it stands; nothing was written.
type RegisteredError struct{ Deploy *Deploy }

func (e *RegisteredError) Error() string {
	return fmt.Sprintf("deploy %s of %s was registered under this request key already", e.Deploy.ID, e.Deploy.Service)
}

// SourceConflictError is CreateDeploy's answer when the deploy would supersede Verifying,
// a deploy of its Source verifying another environment: nothing was written.
type SourceConflictError struct{ Verifying *Deploy }

func (e *SourceConflictError) Error() string {
	v := e.Verifying
	return fmt.Sprintf("deploy %s of %s, of environment %q and of the same source, is verifying: a deploy of another environment would supersede it",
		v.ID, v.Service, v.Environment)
}

// Superseder gives the notifications that tell of old's supersede: old as it stands after,
// superseded by the deploy being registered. CreateDeploy writes them in the transaction
// that supersedes old, so they are written exactly when it is superseded.
type Superseder func(old *Deploy) []*OutboxEntry

// CreateDeploy records a new deploy and marks any deploy of the same service still
// verifying as superseded by it, writing what supersede (nil: nothing) gives for each in
// the same transaction. It returns the IDs it superseded. A deploy whose RequestKey
// registered one of its service before is not recorded: the error is a *RegisteredError
// with that deploy; one with a Source that would supersede a deploy of its source verifying
// another environment is not recorded either: a *SourceConflictError.
func (s *common) CreateDeploy(ctx context.Context, d *Deploy, supersede Superseder) ([]string, error) {
	var superseded []string
	var registered *RegisteredError
	var conflict *SourceConflictError
	err := s.tx(ctx, func(tx *txn) error {
		superseded, registered, conflict = nil, nil, nil
		// Two agents registering deploys of one service at once must not both find the
		// same deploy verifying and leave two verifying, nor both register one key, nor
		// both find no deploy of their source verifying and supersede each other's.
		if err := s.d.lock(ctx, tx, "deploys:"+d.Service); err != nil {
			return err
		}
		old, err := s.verifying(ctx, tx, d.Service)
		if err != nil {
			return err
		}
		// Before the key: two environments' first registrations may come under one key
		// (a webhook's key names no environment), and the second is this conflict, not
		// the first sent again.
		if v := otherEnvironment(d, old); v != nil {
			conflict = &SourceConflictError{Verifying: v}
			return nil
		}
		if d.RequestKey != "" {
			prev, err := scanDeploy(tx.QueryRowContext(ctx, `SELECT `+deployColumns+` FROM deploys WHERE request_key = ? AND service = ?`,
				d.RequestKey, d.Service))
			switch {
			case err == nil:
				registered = &RegisteredError{Deploy: prev}
				return nil
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		for _, o := range old {
			done, err := s.markSuperseded(ctx, tx, o, d)
			if err != nil {
				return err
			}
			if !done {
				continue
			}
			superseded = append(superseded, o.ID)
			if supersede != nil {
				if err := s.enqueue(ctx, tx, supersede(o)); err != nil {
					return err
				}
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO deploys(id, service, version, environment, commit_sha, created_at, status, baseline,
			location, locations, request_key, rollback_of) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`, d.ID, d.Service, d.Version, d.Environment, d.Commit, nanos(d.CreatedAt), d.Status,
			mustJSON(d.Baseline), d.Location, mustJSON(d.Locations), d.RequestKey, d.RollbackOf)
		return err
	})
	if err = s.noted("registering deploys", err); err != nil {
		return nil, err
	}
	switch {
	case registered != nil:
		return nil, registered
	case conflict != nil:
		return nil, conflict
	}
	return superseded, nil
}

// otherEnvironment is the deploy among verifying that d, with a Source, may not supersede:
// one of d's source (its request key has the source's prefix) in another environment.
func otherEnvironment(d *Deploy, verifying []*Deploy) *Deploy {
	if d.Source == "" {
		return nil
	}
	for _, v := range verifying {
		if strings.HasPrefix(v.RequestKey, d.Source) && v.Environment != d.Environment {
			return v
		}
	}
	return nil
}

// verifying reads, in tx, the service's deploys still verifying, oldest first, and locks
// them (PostgreSQL; SQLite's write transactions run one at a time): a verdict being
// written for one finishes first, and that one, decided, is not read.
func (s *common) verifying(ctx context.Context, tx *txn, service string) ([]*Deploy, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+deployColumns+` FROM deploys WHERE service = ? AND status = ? ORDER BY created_at`+s.d.forUpdate,
		service, StatusVerifying)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Deploy
	for rows.Next() {
		o, err := scanDeploy(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// markSuperseded marks old, verifying, as superseded by d, and reports whether it was still
// verifying (a verdict, or another agent's registration, may have come first).
func (s *common) markSuperseded(ctx context.Context, tx *txn, old, d *Deploy) (bool, error) {
	reason := "superseded by deploy " + d.ID
	res, err := tx.ExecContext(ctx, `UPDATE deploys SET status = ?, superseded_by = ?, decided_at = ?, reason = ? WHERE id = ? AND status = ?`,
		StatusSuperseded, d.ID, nanos(d.CreatedAt), reason, old.ID, StatusVerifying)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	old.Status, old.SupersededBy, old.DecidedAt, old.Reason = StatusSuperseded, d.ID, d.CreatedAt, reason
	return true, nil
}

const deployColumns = `id, service, version, environment, commit_sha, created_at, status, reason, decided_at, superseded_by, halt, baseline,
	location, locations, rollback_of, request_key`

func scanDeploy(sc scanner) (*Deploy, error) {
	var d Deploy
	var created, decided int64
	var baseline, locations string
	if err := sc.Scan(&d.ID, &d.Service, &d.Version, &d.Environment, &d.Commit, &created, &d.Status, &d.Reason,
		&decided, &d.SupersededBy, &d.Halt, &baseline, &d.Location, &locations, &d.RollbackOf, &d.RequestKey); err != nil {
		return nil, err
	}
	d.CreatedAt, d.DecidedAt = fromNanos(created), fromNanos(decided)
	_ = json.Unmarshal([]byte(baseline), &d.Baseline)
	_ = json.Unmarshal([]byte(locations), &d.Locations)
	return &d, nil
}

// Deploy returns one deploy.
func (s *common) Deploy(ctx context.Context, id string) (*Deploy, error) {
	d, err := scanDeploy(s.db.QueryRowContext(ctx, `SELECT `+deployColumns+` FROM deploys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return d, err
}

// Deploys returns the newest deploys, optionally only those with a status.
func (s *common) Deploys(ctx context.Context, status string, limit int) ([]*Deploy, error) {
	if status == "" {
		return s.queryDeploys(ctx, ``, limit)
	}
	return s.queryDeploys(ctx, `WHERE status = ?`, limit, status)
}

// ServiceDeploys returns a service's newest deploys.
func (s *common) ServiceDeploys(ctx context.Context, service string, limit int) ([]*Deploy, error) {
	return s.queryDeploys(ctx, `WHERE service = ?`, limit, service)
}

func (s *common) queryDeploys(ctx context.Context, where string, limit int, args ...any) ([]*Deploy, error) {
	q := `SELECT ` + deployColumns + ` FROM deploys ` + where + ` ORDER BY created_at DESC, ` + s.d.insertOrder + ` DESC LIMIT ?`
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

// LocationReport is one agent's verdict on a deploy, for its location (a location with
// several agents has a report from each; agent/quorum.go folds them).
type LocationReport struct {
	DeployID string
	Location string
	Agent    string
	Status   string // passed, failed or inconclusive
	Reason   string
	Halt     string
	// Evidence is the reporting agent's record of the runs behind the verdict (the checks
	// that did not pass, with their links), for the notifications of whichever agent
	// decides the deploy.
	Evidence []byte
	At       time.Time
}

// DeployDecider decides a deploy that is still verifying, from every report its locations
// made so far: a decision, or nil to wait for more.
type DeployDecider func(d *Deploy, reports []*LocationReport) *Decision

// ReportLocation stores r (nil: nothing to report, only decide; an agent reports once for
// its location, and a second report of it is ignored) and then, in the same transaction, holding the
// deploy, asks decide for the verdict of a deploy still verifying. A decision is written
// with its notifications. Every agent verifying the deploy calls it; the lock makes one
// of them decide, from every report written before. It returns the deploy as it stands
// after, and whether this call decided it.
func (s *common) ReportLocation(ctx context.Context, deployID string, r *LocationReport, decide DeployDecider) (*Deploy, bool, error) {
	var d *Deploy
	decided := false
	err := s.tx(ctx, func(tx *txn) error {
		var err error
		d, err = scanDeploy(tx.QueryRowContext(ctx, `SELECT `+deployColumns+` FROM deploys WHERE id = ?`+s.d.forUpdate, deployID))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if r != nil {
			if _, err := tx.ExecContext(ctx, `INSERT INTO deploy_locations(deploy_id, location, agent, status, reason, halt, evidence, reported_at)
				VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(deploy_id, location, agent) DO NOTHING`,
				deployID, r.Location, r.Agent, r.Status, r.Reason, r.Halt, evidence(r.Evidence), nanos(r.At)); err != nil {
				return err
			}
		}
		if d.Status != StatusVerifying || decide == nil {
			return nil
		}
		reports, err := locationReports(ctx, tx, deployID)
		if err != nil {
			return err
		}
		dec := decide(d, reports)
		if dec == nil {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deploys SET status = ?, reason = ?, halt = ?, decided_at = ? WHERE id = ? AND status = ?`,
			dec.Status, dec.Reason, dec.Halt, nanos(dec.At), deployID, StatusVerifying); err != nil {
			return err
		}
		d.Status, d.Reason, d.Halt, d.DecidedAt = dec.Status, dec.Reason, dec.Halt, dec.At
		decided = true
		return s.enqueue(ctx, tx, dec.Outbox)
	})
	return d, decided, s.noted("recording verdicts", err)
}

func evidence(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// LocationReports returns the reports of a deploy's locations, in the order they came.
func (s *common) LocationReports(ctx context.Context, deployID string) ([]*LocationReport, error) {
	return locationReports(ctx, s.db, deployID)
}

// querier is the database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func locationReports(ctx context.Context, q querier, deployID string) ([]*LocationReport, error) {
	rows, err := q.QueryContext(ctx, `SELECT deploy_id, location, agent, status, reason, halt, evidence, reported_at FROM deploy_locations
		WHERE deploy_id = ? ORDER BY reported_at, location`, deployID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*LocationReport
	for rows.Next() {
		var r LocationReport
		var at int64
		if err := rows.Scan(&r.DeployID, &r.Location, &r.Agent, &r.Status, &r.Reason, &r.Halt, &r.Evidence, &at); err != nil {
			return nil, err
		}
		r.At = fromNanos(at)
		out = append(out, &r)
	}
	return out, rows.Err()
}

// DecideDeploy writes dec as the verdict of a deploy still verifying, without a location's
// report (a deploy decided as a whole: imports, tests). It returns false when the deploy
// was no longer verifying.
func (s *common) DecideDeploy(ctx context.Context, dec *Decision) (bool, error) {
	_, decided, err := s.ReportLocation(ctx, dec.DeployID, nil, func(*Deploy, []*LocationReport) *Decision { return dec })
	return decided, err
}
