package store

// Incidents of scheduled monitoring. Each location keeps its own run of passes and
// failures of a check (CheckLocation); the check's incident, one for every location,
// opens and closes on what the locations say together. A change of the incident is decided
// in one transaction that holds it, with the notifications it sends.

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Incident is the alert state of one check under scheduled monitoring, or of a subject of
// membership ("agent:NAME", "location:NAME": names no check can have).
type Incident struct {
	Check    string
	Open     bool
	Seq      int // incremented each time an incident opens
	OpenedAt time.Time
	Summary  string
	// Reminders counts reminders sent for the open incident; NotifiedAt is when it was last
	// announced (opened or reminded).
	Reminders  int
	NotifiedAt time.Time
	// Muted names the silence or maintenance window that muted the incident's opening
	// notice while the incident has been announced to no one; empty once it has been (or
	// when nothing muted it). A failing run after the mute ends announces it.
	Muted string
}

// CheckLocation is one location's run of results of a check: failures in a row until it
// counts as failing there (failure_threshold), passes in a row until it no longer does
// (success_threshold).
type CheckLocation struct {
	Check     string
	Location  string
	Failing   bool
	Failures  int
	Successes int
	// Since is when the location started failing; Summary says why.
	Since     time.Time
	Summary   string
	UpdatedAt time.Time
	// Recent are the outcomes of the location's last runs of the check, oldest first, one
	// letter a run: 'f' failed (or errored), 'p' passed; at most the check's
	// failure_window of them, and none without one.
	Recent string
	// Agent keeps the streak. Where several agents share a location, each running the
	// check, the first to run it keeps its streak there and the others stand by; one of
	// them takes the streak over, as it stands, once its keeper is no longer alive.
	Agent string
}

// ErrKept is the answer to a write of a location's streak that another agent keeps and is
// alive: the writer stands by.
var ErrKept = errors.New("another agent of this location keeps the check's streak")

const incidentColumns = `check_name, open, seq, opened_at, summary, reminders, notified_at, muted`

func scanIncident(sc scanner) (*Incident, error) {
	var in Incident
	var open int
	var opened, notified int64
	if err := sc.Scan(&in.Check, &open, &in.Seq, &opened, &in.Summary, &in.Reminders, &notified, &in.Muted); err != nil {
		return nil, err
	}
	in.Open, in.OpenedAt, in.NotifiedAt = open == 1, fromNanos(opened), fromNanos(notified)
	return &in, nil
}

// Incidents returns every incident, by check (or membership subject).
func (s *common) Incidents(ctx context.Context) (map[string]*Incident, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+incidentColumns+` FROM incidents`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]*Incident{}
	for rows.Next() {
		in, err := scanIncident(rows)
		if err != nil {
			return nil, err
		}
		out[in.Check] = in
	}
	return out, rows.Err()
}

const checkLocationColumns = `check_name, location, failing, failures, successes, since, summary, updated_at, agent, recent`

func scanCheckLocation(sc scanner) (*CheckLocation, error) {
	var cl CheckLocation
	var failing int
	var since, updated int64
	if err := sc.Scan(&cl.Check, &cl.Location, &failing, &cl.Failures, &cl.Successes, &since, &cl.Summary, &updated, &cl.Agent, &cl.Recent); err != nil {
		return nil, err
	}
	cl.Failing, cl.Since, cl.UpdatedAt = failing == 1, fromNanos(since), fromNanos(updated)
	return &cl, nil
}

func queryCheckLocations(ctx context.Context, q querier, query string, args ...any) ([]*CheckLocation, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*CheckLocation
	for rows.Next() {
		cl, err := scanCheckLocation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, cl)
	}
	return out, rows.Err()
}

// CheckLocations returns one location's state of every check it ran, by check.
func (s *common) CheckLocations(ctx context.Context, location string) (map[string]*CheckLocation, error) {
	return s.checkLocationsByCheck(ctx, `WHERE location = ?`, location)
}

// checkLocationsByCheck returns the streaks where says, by check.
func (s *common) checkLocationsByCheck(ctx context.Context, where string, args ...any) (map[string]*CheckLocation, error) {
	list, err := queryCheckLocations(ctx, s.db, `SELECT `+checkLocationColumns+` FROM check_locations `+where, args...)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*CheckLocation, len(list))
	for _, cl := range list {
		out[cl.Check] = cl
	}
	return out, nil
}

// CheckLocation returns one location's state of a check, or nil when it has none.
func (s *common) CheckLocation(ctx context.Context, check, location string) (*CheckLocation, error) {
	cl, err := scanCheckLocation(s.db.QueryRowContext(ctx, `SELECT `+checkLocationColumns+` FROM check_locations WHERE check_name = ? AND location = ?`, check, location))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return cl, err
}

// KeptByOthers returns the streaks of a location that agents other than agent keep, by
// check: what an agent standing by reads to take a streak over as it stands.
func (s *common) KeptByOthers(ctx context.Context, location, agent string) (map[string]*CheckLocation, error) {
	return s.checkLocationsByCheck(ctx, `WHERE location = ? AND agent <> ?`, location, agent)
}

// keeperGone is true of a streak row whose keeper is cl.Agent (the writer), nobody (a
// streak written before agents kept them), or an agent no longer alive: stopped, or not
// heard from since the time bound to it.
const keeperGone = `(check_locations.agent = ? OR check_locations.agent = '' OR NOT EXISTS (SELECT 1 FROM agents m
	WHERE m.name = check_locations.agent AND m.stopped_at = 0 AND m.heartbeat_at >= ?))`

// saveCheckLocation writes cl as cl.Agent's. With a non-zero aliveSince (agents share the
// store) it writes over a streak another agent keeps only when that agent stopped or has
// not written a heartbeat since aliveSince, and answers ErrKept otherwise; with a zero one
// (one agent has the store) it writes whoever kept it.
func saveCheckLocation(ctx context.Context, tx *txn, cl *CheckLocation, aliveSince time.Time) error {
	failing := 0
	if cl.Failing {
		failing = 1
	}
	q := `INSERT INTO check_locations(` + checkLocationColumns + `) VALUES (?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(check_name, location) DO UPDATE SET failing = excluded.failing, failures = excluded.failures,
		successes = excluded.successes, since = excluded.since, summary = excluded.summary, updated_at = excluded.updated_at,
		agent = excluded.agent, recent = excluded.recent`
	args := []any{cl.Check, cl.Location, failing, cl.Failures, cl.Successes, nanos(cl.Since), cl.Summary, nanos(cl.UpdatedAt), cl.Agent, cl.Recent}
	if !aliveSince.IsZero() {
		q += ` WHERE ` + keeperGone
		args = append(args, cl.Agent, nanos(aliveSince))
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return ErrKept
	}
	return nil
}

// SaveCheckLocation stores a location's state of a check when it changes without changing
// whether the location fails (a failure short of failure_threshold): no incident to decide.
// See saveCheckLocation for aliveSince and ErrKept.
func (s *common) SaveCheckLocation(ctx context.Context, cl *CheckLocation, aliveSince time.Time) error {
	return s.noted("saving incidents", s.tx(ctx, func(tx *txn) error { return saveCheckLocation(ctx, tx, cl, aliveSince) }))
}

// IncidentUpdate is what changed for an incident's subject.
type IncidentUpdate struct {
	Subject string
	// Location is a location's new state of the check, stored first (nil: none).
	Location *CheckLocation
	// Left is a location that runs the check no more: its state goes, unless an agent
	// other than Agent keeps it there and is alive (it still runs the check).
	Left  string
	Agent string
	// AliveSince is when an agent last heard from counts as alive: a streak kept by
	// another agent alive is neither written (ErrKept) nor removed. Zero: one agent has
	// the store, and writes whoever kept the streak.
	AliveSince time.Time
}

// IncidentDecider decides an incident from its state and every location's state of its
// check: the incident as it must be stored, with the notifications the change sends, or
// nil to leave it as it is.
type IncidentDecider func(current *Incident, locations []*CheckLocation) (*Incident, []*OutboxEntry)

// UpdateIncident applies u and then, in the same transaction, holding the incident, asks
// decide for its new state, which it writes with its notifications. Every agent that sees
// a change calls it; the lock makes each change of the incident happen once. It returns
// the incident as it stands after.
func (s *common) UpdateIncident(ctx context.Context, u IncidentUpdate, decide IncidentDecider) (*Incident, error) {
	var out *Incident
	err := s.tx(ctx, func(tx *txn) error {
		if err := s.d.lock(ctx, tx, "incident:"+u.Subject); err != nil {
			return err
		}
		if u.Location != nil {
			if err := saveCheckLocation(ctx, tx, u.Location, u.AliveSince); err != nil {
				return err
			}
		}
		if u.Left != "" {
			q, args := `DELETE FROM check_locations WHERE check_name = ? AND location = ?`, []any{u.Subject, u.Left}
			if !u.AliveSince.IsZero() {
				q += ` AND ` + keeperGone
				args = append(args, u.Agent, nanos(u.AliveSince))
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
		cur, err := scanIncident(tx.QueryRowContext(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE check_name = ?`, u.Subject))
		if errors.Is(err, sql.ErrNoRows) {
			cur, err = &Incident{Check: u.Subject}, nil
		}
		if err != nil {
			return err
		}
		out = cur
		locs, err := queryCheckLocations(ctx, tx, `SELECT `+checkLocationColumns+` FROM check_locations WHERE check_name = ? ORDER BY location`, u.Subject)
		if err != nil {
			return err
		}
		next, outbox := decide(cur, locs)
		if next == nil {
			return nil
		}
		open := 0
		if next.Open {
			open = 1
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO incidents(`+incidentColumns+`) VALUES (?,?,?,?,?,?,?,?)
			ON CONFLICT(check_name) DO UPDATE SET open = excluded.open, seq = excluded.seq, opened_at = excluded.opened_at,
			summary = excluded.summary, reminders = excluded.reminders, notified_at = excluded.notified_at, muted = excluded.muted`,
			u.Subject, open, next.Seq, nanos(next.OpenedAt), next.Summary, next.Reminders, nanos(next.NotifiedAt), next.Muted); err != nil {
			return err
		}
		next.Check, out = u.Subject, next
		return s.enqueue(ctx, tx, outbox)
	})
	return out, s.noted("saving incidents", err)
}
