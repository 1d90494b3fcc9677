package store

// Runs: every run of every check, with its evidence (artifacts), and the reads the
// agent, the status page and baselines need.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RunRecord is one check run as stored (checks.Result is a run as it happens).
type RunRecord struct {
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
func (s *common) SaveRuns(ctx context.Context, runs []*RunRecord) error {
	if len(runs) == 0 {
		return nil
	}
	return s.noted("saving runs", s.tx(ctx, func(tx *txn) error {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO runs(check_name, kind, started_at, duration_ns, outcome, attempts,
			deploy_id, reasons, vars, transcript, trace_id, halt, location) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, r := range runs {
			res, err := ins.ExecContext(ctx, r.Check, r.Kind, nanos(r.Started), int64(r.Duration), r.Outcome, r.Attempts,
				nullable(r.DeployID), mustJSON(r.Reasons), mustJSON(r.Vars), mustJSON(r.Transcript), r.TraceID, r.Halt, r.Location)
			if err == nil {
				r.ID, err = res.LastInsertId() // the rowid: runs.id is the INTEGER PRIMARY KEY
			}
			if err != nil {
				return fmt.Errorf("saving run of %s: %w", r.Check, err)
			}
			for _, a := range r.Artifacts {
				if a.Data == nil {
					continue
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO artifacts(run_id, name, content_type, data) VALUES (?,?,?,?)
					ON CONFLICT(run_id, name) DO UPDATE SET content_type = excluded.content_type, data = excluded.data`,
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

func scanRun(sc scanner) (*RunRecord, error) {
	var r RunRecord
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

func (s *common) queryRuns(ctx context.Context, q string, args ...any) ([]*RunRecord, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*RunRecord
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

func (s *common) attachArtifactNames(ctx context.Context, runs []*RunRecord) error {
	if len(runs) == 0 {
		return nil
	}
	byID := map[int64]*RunRecord{}
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
func (s *common) RunByID(ctx context.Context, id int64) (*RunRecord, error) {
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
func (s *common) ArtifactData(ctx context.Context, runID int64, name string) (*Artifact, error) {
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
func (s *common) RecentRuns(ctx context.Context, check string, before time.Time, limit int) ([]*RunRecord, error) {
	return s.queryRuns(ctx, `SELECT `+runColumns+` FROM runs WHERE check_name = ? AND started_at < ?
		ORDER BY started_at DESC LIMIT ?`, check, nanos(before), limit)
}

// BaselineRuns returns up to limit runs of check in location that started from since
// (zero: any time) and before before, newest first: the runs a deploy's baseline in that
// location is made of (latencies differ from one location to another), since the check
// last changed what it measures (MeasuredSince).
func (s *common) BaselineRuns(ctx context.Context, check, location string, since, before time.Time, limit int) ([]*RunRecord, error) {
	return s.queryRuns(ctx, `SELECT `+runColumns+` FROM runs WHERE check_name = ? AND location = ? AND started_at >= ? AND started_at < ?
		ORDER BY started_at DESC LIMIT ?`, check, location, nanos(since), nanos(before), limit)
}

// DeployRuns returns the runs of a deploy's verification, oldest first.
func (s *common) DeployRuns(ctx context.Context, deployID string) ([]*RunRecord, error) {
	return s.queryRuns(ctx, `SELECT `+runColumns+` FROM runs WHERE deploy_id = ? ORDER BY started_at`, deployID)
}

// FirstPasses returns, for each of deployIDs that has passing runs, when each check's
// first passing run of its verification ended (in any location): what a deploy's startup
// time is read from.
func (s *common) FirstPasses(ctx context.Context, deployIDs []string) (map[string]map[string]time.Time, error) {
	out := map[string]map[string]time.Time{}
	if len(deployIDs) == 0 {
		return out, nil
	}
	args := make([]any, len(deployIDs))
	for i, id := range deployIDs {
		args[i] = id
	}
	rows, err := s.db.QueryContext(ctx, `SELECT deploy_id, check_name, MIN(started_at + duration_ns) FROM runs
		WHERE deploy_id IN (?`+strings.Repeat(", ?", len(deployIDs)-1)+`) AND outcome = 'pass' GROUP BY deploy_id, check_name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, check string
		var ended int64
		if err := rows.Scan(&id, &check, &ended); err != nil {
			return nil, err
		}
		if out[id] == nil {
			out[id] = map[string]time.Time{}
		}
		out[id][check] = fromNanos(ended)
	}
	return out, rows.Err()
}

// LatestRuns returns the newest run (by start) of every check in a location, among the
// check's latestLookback newest runs in any location. The agent reads it as it starts, so
// it must not read the whole history: names walks the per-check index from one check's name
// to the next (a loose index scan), and each check's newest runs are read from the end of
// its entries, latestLookback at most, since the location is not in the index: a check
// that other locations run and this one does not (or no longer, under this name) would
// otherwise have its every run read. Grouping the runs by check read every row, 5 s on a
// store of a million runs before the first check ran; this is a few thousand lookups. A
// check whose last runs were all elsewhere has no latest run here until it runs, which the
// agent does with every check as it starts.
func (s *common) LatestRuns(ctx context.Context, location string) ([]*RunRecord, error) {
	return s.queryRuns(ctx, latestRunsQuery, location)
}

// latestLookback is how many of a check's newest runs LatestRuns looks through for one in
// the location: enough for dozens of locations running a check as often as each other.
const latestLookback = 100

var latestRunsQuery = `WITH RECURSIVE names(n) AS (
		SELECT MIN(check_name) FROM runs
		UNION ALL
		SELECT (SELECT MIN(check_name) FROM runs WHERE check_name > names.n) FROM names WHERE names.n IS NOT NULL)
	SELECT ` + runColumns + ` FROM runs WHERE id IN (
		SELECT (SELECT l.id FROM (SELECT id, location, started_at FROM runs WHERE check_name = names.n
				ORDER BY started_at DESC, id DESC LIMIT ` + strconv.Itoa(latestLookback) + `) AS l
			WHERE l.location = ? ORDER BY l.started_at DESC, l.id DESC LIMIT 1)
		FROM names WHERE names.n IS NOT NULL)`

// RunPoint is one sample of a check's latency history.
type RunPoint struct {
	Started  time.Time
	Duration time.Duration
	Outcome  string
	ID       int64
}

// History returns a check's runs since a time, oldest first, up to limit (the newest ones).
func (s *common) History(ctx context.Context, check string, since time.Time, limit int) ([]RunPoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, started_at, duration_ns, outcome FROM
		(SELECT id, started_at, duration_ns, outcome FROM runs WHERE check_name = ? AND started_at >= ? ORDER BY started_at DESC LIMIT ?) AS h
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
func (s *common) RecentFailures(ctx context.Context, limit int) ([]*RunRecord, error) {
	return s.queryRuns(ctx, `SELECT `+runColumns+` FROM runs WHERE outcome != 'pass' ORDER BY started_at DESC LIMIT ?`, limit)
}

// CountRuns is how many runs the store holds.
func (s *common) CountRuns(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs`).Scan(&n)
	return n, err
}
