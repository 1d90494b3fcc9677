package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Run is one stored check run.
type Run struct {
	ID         int64
	Check      string
	Kind       string
	Started    time.Time
	Duration   time.Duration
	Outcome    string
	Attempts   int
	DeployID   string
	Reasons    []string
	Vars       map[string]any
	Transcript []string
	TraceID    string
	Halt       string
	Location   string
	// Artifacts are saved with the run; loaded runs carry names and types, not data.
	Artifacts []*Artifact
}

// Artifact is evidence kept with a run.
type Artifact struct {
	Name        string
	ContentType string
	Data        []byte
}

// SaveRuns stores runs in one transaction and sets their IDs.
func (s *SQLite) SaveRuns(ctx context.Context, runs []*Run) error {
	if len(runs) == 0 {
		return nil
	}
	return s.noted("saving runs", s.tx(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO runs(check_name, kind, started_at, duration_ns, outcome, attempts,
			deploy_id, reasons, vars, transcript, trace_id, halt, location) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, r := range runs {
			res, err := ins.ExecContext(ctx, r.Check, r.Kind, nanos(r.Started), int64(r.Duration), r.Outcome, r.Attempts,
				nullable(r.DeployID), mustJSON(r.Reasons), mustJSON(r.Vars), mustJSON(r.Transcript), r.TraceID, r.Halt, r.Location)
			if err != nil {
				return fmt.Errorf("saving run of %s: %w", r.Check, err)
			}
			if r.ID, err = res.LastInsertId(); err != nil {
				return err
			}
			for _, a := range r.Artifacts {
				if a.Data == nil {
					continue
				}
				if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO artifacts(run_id, name, content_type, data) VALUES (?,?,?,?)`,
					r.ID, a.Name, a.ContentType, a.Data); err != nil {
					return fmt.Errorf("saving artifact %s of %s: %w", a.Name, r.Check, err)
				}
			}
		}
		return nil
	}))
}

const runColumns = `id, check_name, kind, started_at, duration_ns, outcome, attempts, COALESCE(deploy_id, ''),
	reasons, vars, transcript, trace_id, halt, location`

func scanRun(sc interface{ Scan(...any) error }) (*Run, error) {
	var r Run
	var started, dur int64
	var reasons, vars, transcript string
	if err := sc.Scan(&r.ID, &r.Check, &r.Kind, &started, &dur, &r.Outcome, &r.Attempts, &r.DeployID,
		&reasons, &vars, &transcript, &r.TraceID, &r.Halt, &r.Location); err != nil {
		return nil, err
	}
	r.Started, r.Duration = fromNanos(started), time.Duration(dur)
	_ = json.Unmarshal([]byte(reasons), &r.Reasons)
	_ = json.Unmarshal([]byte(vars), &r.Vars)
	_ = json.Unmarshal([]byte(transcript), &r.Transcript)
	return &r, nil
}

func (s *SQLite) queryRuns(ctx context.Context, q string, args ...any) ([]*Run, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, s.attachArtifactNames(ctx, out)
}

func (s *SQLite) attachArtifactNames(ctx context.Context, runs []*Run) error {
	if len(runs) == 0 {
		return nil
	}
	byID := map[int64]*Run{}
	ids := make([]any, 0, len(runs))
	for _, r := range runs {
		byID[r.ID] = r
		ids = append(ids, r.ID)
	}
	for start := 0; start < len(ids); start += 500 {
		end := min(start+500, len(ids))
		rows, err := s.db.QueryContext(ctx, `SELECT run_id, name, content_type FROM artifacts WHERE run_id IN (`+inClause(end-start)+`) ORDER BY name`, ids[start:end]...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			a := &Artifact{}
			if err := rows.Scan(&id, &a.Name, &a.ContentType); err != nil {
				rows.Close()
				return err
			}
			byID[id].Artifacts = append(byID[id].Artifacts, a)
		}
		rows.Close()
	}
	return nil
}

// Run returns one run.
func (s *SQLite) Run(ctx context.Context, id int64) (*Run, error) {
	runs, err := s.queryRuns(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, ErrNotFound
	}
	return runs[0], nil
}

// ArtifactData returns one artifact of a run.
func (s *SQLite) ArtifactData(ctx context.Context, runID int64, name string) (*Artifact, error) {
	a := &Artifact{Name: name}
	err := s.db.QueryRowContext(ctx, `SELECT content_type, data FROM artifacts WHERE run_id = ? AND name = ?`, runID, name).
		Scan(&a.ContentType, &a.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return a, err
}

// RecentRuns returns up to limit runs of check that started before before, newest first.
// Runs of deploy verifications count too: they are what the service looked like then.
func (s *SQLite) RecentRuns(ctx context.Context, check string, before time.Time, limit int) ([]*Run, error) {
	return s.queryRuns(ctx, `SELECT `+runColumns+` FROM runs WHERE check_name = ? AND started_at < ?
		ORDER BY started_at DESC LIMIT ?`, check, nanos(before), limit)
}

// DeployRuns returns the runs of a deploy's verification, oldest first.
func (s *SQLite) DeployRuns(ctx context.Context, deployID string) ([]*Run, error) {
	return s.queryRuns(ctx, `SELECT `+runColumns+` FROM runs WHERE deploy_id = ? ORDER BY started_at`, deployID)
}

// LatestRuns returns the newest run of every check.
func (s *SQLite) LatestRuns(ctx context.Context) ([]*Run, error) {
	return s.queryRuns(ctx, `SELECT `+runColumns+` FROM runs WHERE id IN (SELECT MAX(id) FROM runs GROUP BY check_name)`)
}

// RunPoint is one sample of a check's latency history.
type RunPoint struct {
	Started  time.Time
	Duration time.Duration
	Outcome  string
	ID       int64
}

// History returns a check's runs since a time, oldest first, up to limit (the newest ones).
func (s *SQLite) History(ctx context.Context, check string, since time.Time, limit int) ([]RunPoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, started_at, duration_ns, outcome FROM
		(SELECT id, started_at, duration_ns, outcome FROM runs WHERE check_name = ? AND started_at >= ? ORDER BY started_at DESC LIMIT ?)
		ORDER BY started_at`, check, nanos(since), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RunPoint
	for rows.Next() {
		var p RunPoint
		var st, d int64
		if err := rows.Scan(&p.ID, &st, &d, &p.Outcome); err != nil {
			return nil, err
		}
		p.Started, p.Duration = fromNanos(st), time.Duration(d)
		out = append(out, p)
	}
	return out, rows.Err()
}

// RecentFailures returns the newest runs that did not pass, with artifact names.
func (s *SQLite) RecentFailures(ctx context.Context, limit int) ([]*Run, error) {
	return s.queryRuns(ctx, `SELECT `+runColumns+` FROM runs WHERE outcome != 'pass' ORDER BY started_at DESC LIMIT ?`, limit)
}

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

// Size is how many bytes the database's data takes: the pages in use, the WAL's included.
func (s *SQLite) Size(ctx context.Context) (int64, error) {
	var pages, free, size int64
	for _, q := range []struct {
		pragma string
		dst    *int64
	}{{"page_count", &pages}, {"freelist_count", &free}, {"page_size", &size}} {
		if err := s.db.QueryRowContext(ctx, "PRAGMA "+q.pragma).Scan(q.dst); err != nil {
			return 0, fmt.Errorf("reading the store's size: %w", err)
		}
	}
	return (pages - free) * size, nil
}

// PurgeToSize deletes the oldest runs with their evidence, then the oldest finished outbox
// entries, until the data takes at most nine tenths of max bytes (room for the next burst
// before the next purge); it does nothing while the data fits in limit. Deploys, incidents
// and pending notifications are never deleted. It returns the rows deleted and the size.
func (s *SQLite) PurgeToSize(ctx context.Context, limit int64) (int64, int64, error) {
	size, err := s.Size(ctx)
	if err != nil || size <= limit {
		return 0, size, err
	}
	var deleted int64
	target := limit - limit/10
	runs, err := s.CountRuns(ctx)
	if err != nil {
		return 0, size, err
	}
	for size > target {
		// About the share of the runs that is over, half at a time: runs differ in size.
		batch := min(max(runs*(size-target)/size/2, 1), 1000)
		res, err := s.db.ExecContext(ctx, `DELETE FROM runs WHERE id IN (SELECT id FROM runs ORDER BY started_at LIMIT ?)`, batch)
		if err != nil {
			return deleted, size, fmt.Errorf("purging the oldest runs: %w", err)
		}
		n, _ := res.RowsAffected()
		runs -= n
		if n == 0 {
			res, err = s.db.ExecContext(ctx, `DELETE FROM outbox WHERE id IN
				(SELECT id FROM outbox WHERE status != 'pending' ORDER BY created_at LIMIT 100)`)
			if err != nil {
				return deleted, size, fmt.Errorf("purging the oldest notifications: %w", err)
			}
			if n, _ = res.RowsAffected(); n == 0 {
				break // nothing left that may go
			}
		}
		deleted += n
		if size, err = s.Size(ctx); err != nil {
			return deleted, size, err
		}
	}
	// Give the freed pages back to the file system (databases created with auto_vacuum).
	if _, err := s.db.ExecContext(ctx, `PRAGMA incremental_vacuum`); err != nil {
		return deleted, size, fmt.Errorf("vacuuming after the purge: %w", err)
	}
	return deleted, size, nil
}

// Purge deletes runs and finished outbox entries older than before, and expired silences.
func (s *SQLite) Purge(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM runs WHERE started_at < ?`,
			`DELETE FROM outbox WHERE status != 'pending' AND created_at < ?`,
			`DELETE FROM silences WHERE ends_at < ?`,
			`DELETE FROM alert_state WHERE updated_at < ?`,
		} {
			res, err := tx.ExecContext(ctx, q, nanos(before))
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			total += n
		}
		return nil
	})
	return total, err
}

// CountRuns is how many runs the store holds.
func (s *SQLite) CountRuns(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs`).Scan(&n)
	return n, err
}
