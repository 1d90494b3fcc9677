package store

// The outbox: notifications written with the change that causes them, then claimed by one
// agent at a time, for a lease, and delivered at least once.

import (
	"context"
	"database/sql"
	"errors"
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
	// ClaimedBy is the agent delivering a pending entry, until LeaseUntil; after it any
	// agent may claim the entry again.
	ClaimedBy  string
	LeaseUntil time.Time
	// Queued is when the entry was queued, by the store's clock (the database's on
	// PostgreSQL, see nowSQL) told in the clock of the caller that claimed it: how long it
	// has waited is now - Queued by that caller's clock, whatever the queuing agent's clock
	// said (CreatedAt). Set by ClaimOutbox only.
	Queued time.Time
	// Interrupted: an earlier claim on the entry ended without a recorded attempt (the
	// agent holding it was killed or stopped mid-send, or lost its lease), so that attempt
	// may have reached the receiver. Set by ClaimOutbox only.
	Interrupted bool
}

// ErrLostClaim is returned for an attempt recorded by an agent whose claim on the entry
// ran out and was taken by another agent, or whose entry is no longer pending.
var ErrLostClaim = errors.New("the claim on the notification was lost: its lease ran out and another agent claimed it")

// enqueue writes entries in tx, each due at once and queued then: at the database's clock
// on PostgreSQL (an entry stamped by the clock of an agent a minute ahead waited a minute
// for the others), at its CreatedAt on SQLite.
func (s *common) enqueue(ctx context.Context, tx *txn, entries []*OutboxEntry) error {
	for _, e := range entries {
		due, dueArgs := s.nowSQL(e.CreatedAt)
		status := e.Status
		if status == "" {
			status = OutboxPending
		}
		var id int64
		args := append(append(append([]any{e.Notifier, e.Event, e.Key, e.Incident, e.Payload, nanos(e.CreatedAt)}, dueArgs...), dueArgs...),
			status, nanos(e.DoneAt), e.LastError)
		err := tx.QueryRowContext(ctx, `INSERT INTO outbox(notifier, event, idem_key, incident, payload, created_at, next_attempt_at, queued_at, status, done_at, last_error)
			VALUES (?,?,?,?,?,?,`+due+`,`+due+`,?,?,?) ON CONFLICT(notifier, idem_key) DO NOTHING RETURNING id`, args...).Scan(&id)
		switch {
		case errors.Is(err, sql.ErrNoRows): // already written: the notifier hears of the event once
		case err != nil:
			return err
		default:
			e.ID, e.Status = id, status
		}
	}
	return nil
}

// Enqueue adds entries outside any other change (action results, manual sends).
func (s *common) Enqueue(ctx context.Context, entries []*OutboxEntry) error {
	return s.noted("queueing notifications", s.tx(ctx, func(tx *txn) error { return s.enqueue(ctx, tx, entries) }))
}

const outboxColumns = `id, notifier, event, idem_key, incident, payload, created_at, next_attempt_at, attempts, status, last_error, done_at,
	claimed_by, lease_until`

func scanOutbox(sc scanner) (*OutboxEntry, error) {
	var e OutboxEntry
	var created, next, done, lease int64
	if err := sc.Scan(&e.ID, &e.Notifier, &e.Event, &e.Key, &e.Incident, &e.Payload, &created, &next, &e.Attempts,
		&e.Status, &e.LastError, &done, &e.ClaimedBy, &lease); err != nil {
		return nil, err
	}
	e.CreatedAt, e.NextAttempt, e.DoneAt, e.LeaseUntil = fromNanos(created), fromNanos(next), fromNanos(done), fromNanos(lease)
	return &e, nil
}

func (s *common) queryOutbox(ctx context.Context, q string, args ...any) ([]*OutboxEntry, error) {
	return queryOutbox(ctx, s.db, q, args...)
}

func queryOutbox(ctx context.Context, db querier, q string, args ...any) ([]*OutboxEntry, error) {
	rows, err := db.QueryContext(ctx, q, args...)
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

// nowSQL is the SQL for the time leases and due times are stamped and judged by, and its
// arguments: the database's clock on PostgreSQL, so that no agent's clock, however far
// off, can cut another's lease short or stretch its own, nor send a retry before the
// receiver's Retry-After is over or a minute after; the caller's now on SQLite.
func (s *common) nowSQL(now time.Time) (string, []any) {
	if s.d.now != "" {
		return s.d.now, nil
	}
	return "?", []any{nanos(now)}
}

// ClaimOutbox claims for agent up to limit pending entries due at now that no agent holds
// (or whose holder's lease ran out), leases them for lease, and returns them in the order
// they were written. Leases and next attempts are judged by the database's clock on
// PostgreSQL (see nowSQL), by now on SQLite. An entry waits while an
// earlier entry of the same notifier and incident is still pending, so a thread's replies
// never overtake the message that opens it. On PostgreSQL the rows are picked FOR UPDATE
// SKIP LOCKED: agents claiming at once each get other entries, and never wait for each other.
func (s *common) ClaimOutbox(ctx context.Context, agent string, now time.Time, lease time.Duration, limit int, skip []string) ([]*OutboxEntry, error) {
	var out []*OutboxEntry
	clock, clockArgs := s.nowSQL(now)
	err := s.tx(ctx, func(tx *txn) error {
		args := append(append([]any{OutboxPending}, clockArgs...), clockArgs...)
		for _, n := range skip {
			args = append(args, n)
		}
		args = append(args, OutboxPending, limit)
		// claimed_by is cleared by RecordAttempt only: set on a claimable entry, it names an
		// agent whose claim ended without a result.
		rows, err := tx.QueryContext(ctx, `SELECT id, claimed_by FROM outbox o WHERE status = ? AND next_attempt_at <= `+clock+` AND lease_until <= `+clock+notIn("o.notifier", len(skip))+`
			AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.notifier = o.notifier AND p.incident = o.incident
				AND p.status = ? AND p.id < o.id)
			ORDER BY id LIMIT ?`+s.d.skipLocked, args...)
		if err != nil {
			return err
		}
		var ids []any
		cut := map[int64]bool{}
		for rows.Next() {
			var id int64
			var by string
			if err := rows.Scan(&id, &by); err != nil {
				rows.Close()
				return err
			}
			ids, cut[id] = append(ids, id), by != ""
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(ids) == 0 {
			return err
		}
		args = append(append(append([]any{agent}, clockArgs...), int64(lease)), ids...)
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET claimed_by = ?, lease_until = `+clock+` + ? WHERE id IN (`+inClause(len(ids))+`)`, args...); err != nil {
			return err
		}
		out, err = queryOutbox(ctx, tx, `SELECT `+outboxColumns+` FROM outbox WHERE id IN (`+inClause(len(ids))+`) ORDER BY id`, ids...)
		if err != nil {
			return err
		}
		for _, e := range out {
			e.Interrupted = cut[e.ID]
		}
		return s.queuedAt(ctx, tx, out, clock, clockArgs, now)
	})
	return out, s.noted("claiming notifications", err)
}

// queuedAt sets entries' Queued: how long before the store's clock (clock) each was
// queued, taken from the caller's now. An entry with no queued_at (0) was written by a
// vigil older than migration 19, still running beside a newer one in a rolling upgrade: it
// was queued when it was created, as migration 19 takes the entries before it (read as
// queued in 1970, it was past the hour a receiver's pacing is free in, and dead-lettered).
func (s *common) queuedAt(ctx context.Context, tx *txn, entries []*OutboxEntry, clock string, clockArgs []any, now time.Time) error {
	ids := make([]any, len(entries))
	byID := make(map[int64]*OutboxEntry, len(entries))
	for i, e := range entries {
		ids[i], byID[e.ID] = e.ID, e
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, `+clock+` - CASE WHEN queued_at = 0 THEN created_at ELSE queued_at END FROM outbox WHERE id IN (`+inClause(len(ids))+`)`, append(clockArgs, ids...)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, age int64
		if err := rows.Scan(&id, &age); err != nil {
			return err
		}
		if e := byID[id]; e != nil {
			e.Queued = now.Add(-time.Duration(age))
		}
	}
	return rows.Err()
}

// RenewClaim extends agent's lease on a pending entry to lease from now (by the clock of
// nowSQL); false when the entry is no longer the agent's to deliver (its lease ran out
// and another agent claimed it, or it is done).
func (s *common) RenewClaim(ctx context.Context, id int64, agent string, now time.Time, lease time.Duration) (bool, error) {
	clock, args := s.nowSQL(now)
	res, err := s.db.ExecContext(ctx, `UPDATE outbox SET lease_until = `+clock+` + ? WHERE id = ? AND claimed_by = ? AND status = ?`,
		append(args, int64(lease), id, agent, OutboxPending)...)
	if err != nil {
		return false, s.noted("claiming notifications", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, s.noted("claiming notifications", nil)
}

// ReleaseClaims gives back the entries agent holds: what an agent does as it starts, for
// the claims it held before a restart (they would wait out their leases otherwise). Their
// lease ends; claimed_by stays, so the next claim knows the attempt was cut
// (OutboxEntry.Interrupted).
func (s *common) ReleaseClaims(ctx context.Context, agent string) (int64, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE outbox SET lease_until = 0 WHERE claimed_by = ? AND status = ? AND lease_until <> 0`, agent, OutboxPending)
	if err != nil {
		return 0, s.noted("claiming notifications", err)
	}
	n, _ := res.RowsAffected()
	return n, s.noted("claiming notifications", nil)
}

// NextDue returns when, by the clock that says it is now, the earliest pending entry can
// be claimed: its next attempt, or the end of another agent's lease on it (zero when none
// is pending). Both are the database's clock's on PostgreSQL (see nowSQL), and are told in
// the caller's: an agent whose clock is off waits for their real end, neither past it nor
// polling until it. An
// entry behind an earlier pending one of its notifier and incident (a thread's reply
// behind its opener, which ClaimOutbox skips it for) is left out: it cannot be claimed
// before that one is done, which is no sooner than that one's own time here. Its own next
// attempt, long past, would wake the caller at once to claim nothing, again and again, for
// as long as the opener is retried or another agent holds it.
func (s *common) NextDue(ctx context.Context, now time.Time, skip []string) (time.Time, error) {
	var n sql.NullInt64
	due, args := "MIN(CASE WHEN lease_until > next_attempt_at THEN lease_until ELSE next_attempt_at END)", []any{}
	if s.d.now != "" {
		due, args = due+" - "+s.d.now+" + ?", []any{nanos(now)}
	}
	args = append(args, OutboxPending)
	for _, notifier := range skip {
		args = append(args, notifier)
	}
	args = append(args, OutboxPending)
	err := s.db.QueryRowContext(ctx, `SELECT `+due+`
		FROM outbox o WHERE status = ?`+notIn("o.notifier", len(skip))+`
			AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.notifier = o.notifier AND p.incident = o.incident
				AND p.status = ? AND p.id < o.id)`, args...).Scan(&n)
	if err != nil || !n.Valid {
		return time.Time{}, err
	}
	return fromNanos(n.Int64), nil
}

// The outbox's reads that an index serves (TestOutboxReadsUseIndexes): a state's newest
// entries (outbox_listed), an incident's notifiers (outbox_heard).
const (
	outboxByStateQuery   = `SELECT ` + outboxColumns + ` FROM outbox WHERE status = ? ORDER BY id DESC LIMIT ?`
	incidentHeardByQuery = `SELECT DISTINCT notifier FROM outbox WHERE incident = ? ORDER BY notifier`
)

// Outbox lists entries, newest first, optionally only those with a status.
func (s *common) Outbox(ctx context.Context, status string, limit int) ([]*OutboxEntry, error) {
	if status == "" {
		return s.queryOutbox(ctx, `SELECT `+outboxColumns+` FROM outbox ORDER BY id DESC LIMIT ?`, limit)
	}
	return s.queryOutbox(ctx, outboxByStateQuery, status, limit)
}

// IncidentNotifiers lists the notifiers an incident's events were written for, so its
// closing news reaches whoever heard of its opening.
func (s *common) IncidentNotifiers(ctx context.Context, incident string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, incidentHeardByQuery, incident)
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
func (s *common) OutboxByKey(ctx context.Context, key string) ([]*OutboxEntry, error) {
	return s.queryOutbox(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE idem_key = ? ORDER BY id`, key)
}

// OutboxAttempt records the result of one delivery attempt.
type OutboxAttempt struct {
	ID int64
	// Agent is the agent that claimed the entry and made the attempt.
	Agent    string
	Status   string // pending (tried again after Wait), delivered, dead, dry_run, silenced, skipped
	Attempts int
	// Wait is how long a pending entry waits for its next attempt: from the database's
	// clock on PostgreSQL (see nowSQL), so that a receiver's Retry-After or a backoff is
	// kept whatever the clock of the agent that claims it next; from At on SQLite.
	Wait      time.Duration
	LastError string
	At        time.Time // when the attempt was made, by the caller's clock
}

// RecordAttempt stores a delivery attempt's result and gives the claim back. It returns
// ErrLostClaim, and writes nothing, when the entry is no longer a.Agent's.
func (s *common) RecordAttempt(ctx context.Context, a OutboxAttempt) error {
	next, args := "0", []any{a.Status, a.Attempts}
	done := int64(0)
	if a.Status == OutboxPending {
		clock, clockArgs := s.nowSQL(a.At)
		next, args = clock+" + ?", append(append(args, clockArgs...), int64(a.Wait))
	} else {
		done = nanos(a.At)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = `+next+`, last_error = ?, done_at = ?,
		claimed_by = '', lease_until = 0 WHERE id = ? AND claimed_by = ? AND status = ?`,
		append(args, a.LastError, done, a.ID, a.Agent, OutboxPending)...)
	if err = s.noted("recording deliveries", err); err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLostClaim
	}
	return nil
}

// ErrSuperseded is Retry's answer for an entry whose incident a later all-clear of its
// notifier (deploy_passed, check_recovered) was delivered or skipped after: sent now, it
// would arrive out of order (an incident's opening page after its all-clear, opening it
// again for good; or after the all-clear skipped because this page was lost, opening it
// for good too).
var ErrSuperseded = errors.New("the same incident's all-clear to the same notifier was delivered, or skipped")

// allClears are the events that close an incident (configs.EventDeployPassed,
// configs.EventCheckRecovered). Only they make an earlier dead entry of the incident too
// late to send: a rollback's result or a reminder delivered after a lost page leaves the
// incident open, and the page still owed.
var allClears = []any{"deploy_passed", "check_recovered"}

// Retry puts a dead entry back in the queue, due now (by the clock of nowSQL): ErrNotFound when there is no dead
// entry of that id, ErrSuperseded when a later all-clear of its notifier and incident was
// delivered or skipped.
func (s *common) Retry(ctx context.Context, id int64, now time.Time) error {
	clock, clockArgs := s.nowSQL(now)
	args := append(append(append([]any{OutboxPending}, clockArgs...), id, OutboxDead, OutboxDelivered, OutboxSkipped), allClears...)
	res, err := s.db.ExecContext(ctx, `UPDATE outbox SET status = ?, next_attempt_at = `+clock+`, done_at = 0 WHERE id = ? AND status = ?
		AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.notifier = outbox.notifier AND p.incident = outbox.incident AND p.incident <> ''
			AND p.id > outbox.id AND p.status IN (?, ?) AND p.event IN (`+inClause(len(allClears))+`))`, args...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var dead int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE id = ? AND status = ?`, id, OutboxDead).Scan(&dead); err == nil && dead == 1 {
			return ErrSuperseded
		}
		return ErrNotFound
	}
	return nil
}

// notIn is " AND column NOT IN (?, ...)" for n values, "" for none.
func notIn(column string, n int) string {
	if n == 0 {
		return ""
	}
	return " AND " + column + " NOT IN (" + inClause(n) + ")"
}
