package store

// What the status page reads: the events timeline (incidents opening, reminding and
// closing, verdicts, rollbacks and halts, silences), and one query per page view — the
// deploys with their evidence, the events and the active silences for the overview; a
// check's latency columns, failures, recent runs, deploys and events for its page —
// whatever the number of checks. The uptime bars come from the agent's memory, seeded
// once at start by RunBuckets (boards.go).

import (
	"context"
	"database/sql"
	"encoding/json"
	"sort"
	"time"
)

// eventsMigration creates the events timeline.
const eventsMigration = `CREATE TABLE events (
		id INTEGER PRIMARY KEY,
		at INTEGER NOT NULL,
		kind TEXT NOT NULL,
		check_name TEXT NOT NULL DEFAULT '',
		service TEXT NOT NULL DEFAULT '',
		deploy_id TEXT NOT NULL DEFAULT '',
		incident TEXT NOT NULL DEFAULT '',
		summary TEXT NOT NULL DEFAULT '',
		run_id INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX events_at ON events(at);
	CREATE INDEX events_check ON events(check_name, at);
	CREATE INDEX events_deploy ON events(deploy_id);`

// Event is one entry of the events timeline. Kind is the agent's word for what happened
// (check_failed, deploy_failed, rollback, silence_added, ...); the store only keeps it.
type Event struct {
	ID       int64
	At       time.Time
	Kind     string
	Check    string
	Service  string
	DeployID string
	Incident string
	Summary  string
	RunID    int64
}

// AddEvent appends an event to the timeline.
func (s *common) AddEvent(ctx context.Context, e *Event) error {
	// RETURNING, not LastInsertId: PostgreSQL's driver has none. In a transaction: SQLite
	// checks whether its write-ahead log is due to be written into the database file only
	// when a statement runs to its end, and a statement whose one returned row is read
	// never does; alone, such inserts grew the log without bound (57 MB for 3,000 events,
	// TestEventsKeepTheLogBounded) until some other write came.
	return s.tx(ctx, func(tx *txn) error {
		return tx.QueryRowContext(ctx, `INSERT INTO events(at, kind, check_name, service, deploy_id, incident, summary, run_id)
			VALUES (?,?,?,?,?,?,?,?) RETURNING id`, nanos(e.At), e.Kind, e.Check, e.Service, e.DeployID, e.Incident, e.Summary, e.RunID).Scan(&e.ID)
	})
}

// PurgeEvents deletes events older than before (store.retention, as runs), in batches as
// Purge does, each a range of the events_at index.
func (s *common) PurgeEvents(ctx context.Context, before time.Time) (int64, error) {
	return s.inBatches(ctx, purgeEventsQuery, nanos(before))
}

// DeployEntry is a deploy as a timeline shows it: its verdict, its links, the run that
// made it fail, and what happened because of it (rollbacks, halts).
type DeployEntry struct {
	Deploy
	Links []Link
	// FailedRun is the deploy's first run that did not pass (a failed one before any
	// other); nil when every run passed.
	FailedRun *RunBrief
	// Events are the timeline's events of this deploy, oldest first.
	Events []*Event
}

// RunBrief is a run as a list shows it.
type RunBrief struct {
	ID       int64
	Check    string
	Started  time.Time
	Duration time.Duration
	Outcome  string
	DeployID string
	Reasons  []string
	Attempts int
	// Screenshot names the run's PNG artifact, "" when it has none.
	Screenshot string
}

// Overview is what the status page's overview reads from the store.
type Overview struct {
	// Deploys are the newest of each service, newest first.
	Deploys []*DeployEntry
	// Events are the newest events, newest first.
	Events   []*Event
	Silences []*Silence
}

// Overview reads, in one query, the newest perService deploys of every service with
// their evidence and events, the newest events, and the silences not ended at now.
func (s *common) Overview(ctx context.Context, now time.Time, perService, events int) (*Overview, error) {
	// The newest deploys of each service come from the (service, created_at) index, a few
	// rows per service, rather than from numbering every deploy ever registered.
	rows, err := s.db.QueryContext(ctx, `WITH shown AS (
			SELECT d.id, d.service, d.version, d.environment, d.commit_sha, d.created_at, d.status, d.reason, d.decided_at,
				d.superseded_by, d.halt, d.links
			FROM (SELECT DISTINCT service FROM deploys) sv JOIN deploys d ON d.id IN
				(SELECT x.id FROM deploys x WHERE x.service = sv.service ORDER BY x.created_at DESC, x.id DESC LIMIT ?)),
		failed AS (SELECT d.*, (SELECT r.id FROM runs r WHERE r.deploy_id = d.id AND r.outcome != 'pass'
				ORDER BY CASE r.outcome WHEN 'fail' THEN 0 ELSE 1 END, r.started_at LIMIT 1) AS run_id FROM shown d)
		SELECT 'd', f.id, f.service, f.version, f.environment, f.commit_sha, f.status, f.reason, f.halt, f.superseded_by, f.links,
			COALESCE(r.check_name, ''), COALESCE(r.outcome, ''), COALESCE(r.reasons, '[]'),
			COALESCE((SELECT a.name FROM artifacts a WHERE a.run_id = r.id AND a.content_type = 'image/png' ORDER BY a.name LIMIT 1), ''),
			f.created_at, f.decided_at, COALESCE(r.id, 0), COALESCE(r.started_at, 0)
		FROM failed f LEFT JOIN runs r ON r.id = f.run_id
		UNION ALL
		SELECT 'a', e.kind, e.check_name, e.service, e.deploy_id, e.incident, e.summary, '', '', '', '', '', '', '', '', e.at, 0, e.run_id, e.id
		FROM events e WHERE e.deploy_id IN (SELECT id FROM shown)
		UNION ALL
		SELECT 'e', e.kind, e.check_name, e.service, e.deploy_id, e.incident, e.summary, '', '', '', '', '', '', '', '', e.at, 0, e.run_id, e.id
		FROM (SELECT * FROM events ORDER BY at DESC, id DESC LIMIT ?) e
		UNION ALL
		SELECT 's', s.id, s.check_name, s.service, s.reason, s.created_by, '', '', '', '', '', '', '', '', '', s.starts_at, s.ends_at, 0, s.created_at
		FROM silences s WHERE s.ends_at > ?`, perService, events, nanos(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := &Overview{}
	byID := map[string]*DeployEntry{}
	var actions []*Event
	for rows.Next() {
		var k string
		var t [14]string
		var i [4]int64
		if err := rows.Scan(&k, &t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6], &t[7], &t[8], &t[9], &t[10], &t[11], &t[12], &t[13],
			&i[0], &i[1], &i[2], &i[3]); err != nil {
			return nil, err
		}
		switch k {
		case "d":
			d := &DeployEntry{Deploy: Deploy{ID: t[0], Service: t[1], Version: t[2], Environment: t[3], Commit: t[4], Status: t[5],
				Reason: t[6], Halt: t[7], SupersededBy: t[8], CreatedAt: fromNanos(i[0]), DecidedAt: fromNanos(i[1])}, Links: parseLinks(t[9])}
			if i[2] != 0 {
				d.FailedRun = &RunBrief{ID: i[2], Check: t[10], Outcome: t[11], Started: fromNanos(i[3]), DeployID: d.ID, Screenshot: t[13]}
				_ = json.Unmarshal([]byte(t[12]), &d.FailedRun.Reasons)
			}
			byID[d.ID] = d
			out.Deploys = append(out.Deploys, d)
		case "a", "e":
			e := &Event{Kind: t[0], Check: t[1], Service: t[2], DeployID: t[3], Incident: t[4], Summary: t[5], At: fromNanos(i[0]), RunID: i[2], ID: i[3]}
			if k == "a" {
				actions = append(actions, e)
			} else {
				out.Events = append(out.Events, e)
			}
		case "s":
			out.Silences = append(out.Silences, &Silence{ID: t[0], Check: t[1], Service: t[2], Reason: t[3], CreatedBy: t[4],
				Starts: fromNanos(i[0]), Ends: fromNanos(i[1]), CreatedAt: fromNanos(i[3])})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sortEvents(actions, false)
	for _, e := range actions {
		if d := byID[e.DeployID]; d != nil {
			d.Events = append(d.Events, e)
		}
	}
	sortDeploys(out.Deploys)
	sortEvents(out.Events, true)
	sortSilences(out.Silences)
	return out, nil
}

// CheckQuery is what a check's page asks for.
type CheckQuery struct {
	Check    string
	Services []string
	// From and To bound the latency chart, cut into Columns columns of equal width.
	From, To time.Time
	Columns  int
	// Recent is how many of the newest runs to list, whatever their time; Failures caps the
	// runs that did not pass drawn on the chart (the newest ones); Events caps the events.
	Recent, Failures, Events int
}

// LatencyColumn is one column of a latency chart: the runs that started in it.
type LatencyColumn struct {
	Index         int // from 0 at From
	Runs, Passed  int
	Sum, Min, Max time.Duration
}

// CheckPage is what a check's page reads from the store.
type CheckPage struct {
	Columns []LatencyColumn // only columns with runs, by index
	// Failures are the runs in the range that did not pass, oldest first.
	Failures []*RunBrief
	// Recent are the newest runs, newest first.
	Recent []*RunBrief
	// Deploys are the services' deploys registered in the range, oldest first.
	Deploys []*DeployEntry
	// Events are the check's newest events, newest first.
	Events []*Event
	// Silences are those muting the check or one of its services at To.
	Silences []*Silence
}

// CheckPage reads, in one query, a check's latency columns, its failures in the range,
// its newest runs, its services' deploys in the range, its newest events and the silences
// that mute it at To.
func (s *common) CheckPage(ctx context.Context, q CheckQuery) (*CheckPage, error) {
	from, to := nanos(q.From), nanos(q.To)
	width := max((to-from)/int64(max(q.Columns, 1)), 1)
	services := q.Services
	if len(services) == 0 {
		services = []string{"\x00"} // matches no service; keeps the IN list valid
	}
	args := []any{from, width, q.Check, from, to,
		q.Check, from, to, q.Failures,
		q.Check, q.Recent,
		q.Check, q.Events}
	for _, sv := range services {
		args = append(args, sv)
	}
	args = append(args, from, to, to, q.Check)
	for _, sv := range services {
		args = append(args, sv)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT 'c', '', '', '', '', (started_at - ?) / ? AS col, COUNT(*),
			SUM(CASE WHEN outcome = 'pass' THEN 1 ELSE 0 END), SUM(duration_ns), MIN(duration_ns), MAX(duration_ns), 0
		FROM runs WHERE check_name = ? AND started_at >= ? AND started_at < ? GROUP BY col
		UNION ALL
		SELECT 'x', outcome, COALESCE(deploy_id, ''), '', '', id, started_at, duration_ns, attempts, 0, 0, 0
		FROM (SELECT * FROM runs WHERE check_name = ? AND started_at >= ? AND started_at < ? AND outcome != 'pass'
			ORDER BY started_at DESC LIMIT ?) x
		UNION ALL
		SELECT 'r', outcome, COALESCE(deploy_id, ''), reasons,
			COALESCE((SELECT a.name FROM artifacts a WHERE a.run_id = r.id AND a.content_type = 'image/png' ORDER BY a.name LIMIT 1), ''),
			id, started_at, duration_ns, attempts, 0, 0, 0
		FROM (SELECT * FROM runs WHERE check_name = ? ORDER BY started_at DESC, id DESC LIMIT ?) r
		UNION ALL
		SELECT 'e', kind, service, deploy_id, summary, id, at, run_id, 0, 0, 0, 0
		FROM (SELECT * FROM events WHERE check_name = ? ORDER BY at DESC, id DESC LIMIT ?) e
		UNION ALL
		SELECT 'd', id, service, version, status, 0, created_at, decided_at, 0, 0, 0, 0
		FROM deploys WHERE service IN (`+inClause(len(services))+`) AND created_at >= ? AND created_at < ?
		UNION ALL
		SELECT 's', id, check_name, service, reason, starts_at, ends_at, created_at, 0, 0, 0, 0
		FROM silences WHERE ends_at > ? AND (check_name = ? OR service IN (`+inClause(len(services))+`))`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := &CheckPage{}
	for rows.Next() {
		var k string
		var t [4]string
		var i [7]int64
		if err := rows.Scan(&k, &t[0], &t[1], &t[2], &t[3], &i[0], &i[1], &i[2], &i[3], &i[4], &i[5], &i[6]); err != nil {
			return nil, err
		}
		switch k {
		case "c":
			out.Columns = append(out.Columns, LatencyColumn{Index: int(i[0]), Runs: int(i[1]), Passed: int(i[2]),
				Sum: time.Duration(i[3]), Min: time.Duration(i[4]), Max: time.Duration(i[5])})
		case "x", "r":
			r := &RunBrief{ID: i[0], Check: q.Check, Outcome: t[0], DeployID: t[1], Started: fromNanos(i[1]),
				Duration: time.Duration(i[2]), Attempts: int(i[3]), Screenshot: t[3]}
			if k == "x" {
				out.Failures = append(out.Failures, r)
			} else {
				_ = json.Unmarshal([]byte(t[2]), &r.Reasons)
				out.Recent = append(out.Recent, r)
			}
		case "e":
			out.Events = append(out.Events, &Event{Kind: t[0], Check: q.Check, Service: t[1], DeployID: t[2], Summary: t[3],
				ID: i[0], At: fromNanos(i[1]), RunID: i[2]})
		case "d":
			out.Deploys = append(out.Deploys, &DeployEntry{Deploy: Deploy{ID: t[0], Service: t[1], Version: t[2], Status: t[3],
				CreatedAt: fromNanos(i[1]), DecidedAt: fromNanos(i[2])}})
		case "s":
			out.Silences = append(out.Silences, &Silence{ID: t[0], Check: t[1], Service: t[2], Reason: t[3],
				Starts: fromNanos(i[0]), Ends: fromNanos(i[1]), CreatedAt: fromNanos(i[2])})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sortColumns(out.Columns)
	sortRuns(out.Failures, false)
	sortRuns(out.Recent, true)
	sortEvents(out.Events, true)
	sortDeploys(out.Deploys)
	reverseDeploys(out.Deploys)
	sortSilences(out.Silences)
	return out, nil
}

// FirstRun is when the oldest stored run started (one step down the time index); ok is
// false when no run is stored.
func (s *common) FirstRun(ctx context.Context) (first time.Time, ok bool, err error) {
	var ns sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MIN(started_at) FROM runs`).Scan(&ns); err != nil || !ns.Valid {
		return first, false, err
	}
	return time.Unix(0, ns.Int64), true, nil
}

// DeployEvents returns a deploy's events, oldest first.
func (s *common) DeployEvents(ctx context.Context, deployID string) ([]*Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, kind, check_name, service, deploy_id, incident, summary, run_id
		FROM events WHERE deploy_id = ? ORDER BY at, id`, deployID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func scanEvent(sc interface{ Scan(...any) error }) (*Event, error) {
	var e Event
	var at int64
	if err := sc.Scan(&e.ID, &at, &e.Kind, &e.Check, &e.Service, &e.DeployID, &e.Incident, &e.Summary, &e.RunID); err != nil {
		return nil, err
	}
	e.At = fromNanos(at)
	return &e, nil
}

// The parts of a UNION ALL come back in no particular order: each list is sorted here.

func sortEvents(list []*Event, newestFirst bool) {
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if !a.At.Equal(b.At) {
			return a.At.Before(b.At) != newestFirst
		}
		return (a.ID < b.ID) != newestFirst
	})
}

func sortRuns(list []*RunBrief, newestFirst bool) {
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if !a.Started.Equal(b.Started) {
			return a.Started.Before(b.Started) != newestFirst
		}
		return (a.ID < b.ID) != newestFirst
	})
}

// sortDeploys puts deploys newest first, as the deploys list does.
func sortDeploys(list []*DeployEntry) {
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.After(b.CreatedAt)
		}
		return a.ID > b.ID
	})
}

func reverseDeploys(list []*DeployEntry) {
	for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
		list[i], list[j] = list[j], list[i]
	}
}

func sortColumns(list []LatencyColumn) {
	sort.Slice(list, func(i, j int) bool { return list[i].Index < list[j].Index })
}

func sortSilences(list []*Silence) {
	sort.SliceStable(list, func(i, j int) bool { return list[i].Ends.Before(list[j].Ends) })
}
