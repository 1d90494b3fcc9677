package store

// Members: the agents sharing the store, each with its location and the time it was last
// heard from (its heartbeat).

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"
)

// Member is an agent that writes to the store.
type Member struct {
	// Name is stable across restarts (agent.name); Instance is one process's run of it.
	Name     string
	Instance string
	Location string
	Version  string
	// URL is how people reach the agent (its status page).
	URL string
	// Services are the services in its config: the deploys it verifies.
	Services  []string
	Started   time.Time
	Heartbeat time.Time
	// Stopped is when it shut down cleanly (zero while it runs, or when it died).
	Stopped time.Time
	// ReadAt is when Members read it by the clock Heartbeat was stamped with, the
	// database's, on PostgreSQL: ReadAt - Heartbeat is how long ago it beat, whatever the
	// reader's clock says. Zero on SQLite, where the reader's clock is the writer's.
	ReadAt time.Time
	// AliveFor is how long after this heartbeat the agent counts as alive without another
	// (configs.SilentAfter), and as taking the beats of BeatChecks (BeatsTaken). Written,
	// never read back.
	AliveFor time.Duration
	// BeatChecks are the heartbeat checks in its config, with their windows: the checks
	// whose beats it takes. Written, never read back.
	BeatChecks map[string]time.Duration
}

const memberColumns = `name, instance, location, version, url, services, started_at, heartbeat_at, stopped_at`

// Heartbeat records m as alive at m.Heartbeat or, when that is zero, now by the store's
// clock: the database's on PostgreSQL, so that agents on several hosts are judged by one
// clock and none is taken for silent because its own is behind. When the name was held by another instance
// it returns that instance: this agent's run before a restart, or, when it keeps
// happening, a second agent running under the same name. It also extends the time the
// beats of each of m.BeatChecks are taken without a break (BeatsTaken): a heartbeat that
// comes while the last one's AliveFor lasts, from this agent or another that has the
// check, continues it; one after starts it again. A check the agent took beats for and no
// longer has (a reload took it out) is no longer this agent's (see leaveBeats).
func (s *common) Heartbeat(ctx context.Context, m *Member) (string, error) {
	var previous string
	err := s.tx(ctx, func(tx *txn) error {
		err := tx.QueryRowContext(ctx, `SELECT instance FROM agents WHERE name = ?`+s.d.forUpdate, m.Name).Scan(&previous)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if previous == m.Instance {
			previous = ""
		}
		beat, beatArgs := "?", []any{nanos(m.Heartbeat)}
		switch {
		case !m.Heartbeat.IsZero():
		case s.d.now != "":
			beat, beatArgs = s.d.now, nil
		default:
			beatArgs = []any{nanos(time.Now())}
		}
		args := append([]any{m.Name, m.Instance, m.Location, m.Version, m.URL, mustJSON(m.Services), nanos(m.Started)}, beatArgs...)
		_, err = tx.ExecContext(ctx, `INSERT INTO agents(`+memberColumns+`) VALUES (?,?,?,?,?,?,?,`+beat+`,0)
			ON CONFLICT(name) DO UPDATE SET instance = excluded.instance, location = excluded.location, version = excluded.version,
			url = excluded.url, services = excluded.services, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, stopped_at = 0`,
			args...)
		if err != nil {
			return err
		}
		until, untilArgs := beat+` + CAST(? AS BIGINT)`, []any{int64(m.AliveFor)}
		if beatArgs != nil {
			until, untilArgs = "?", []any{beatArgs[0].(int64) + int64(m.AliveFor)}
		}
		return s.takeBeats(ctx, tx, m.Name, m.BeatChecks, stamp{beat, beatArgs}, stamp{until, untilArgs}, true)
	})
	return previous, s.noted("heartbeats", err)
}

// StopMember records that an agent shut down cleanly: it is stopped, not silent, and no
// longer takes beats; where no other agent takes a check's, the time they were taken
// without a break ends now, by the store's clock (see nowSQL), not when this agent's last
// heartbeat would have run out: beats posted after the stop were lost, not missed.
func (s *common) StopMember(ctx context.Context, name, instance string, at time.Time) error {
	return s.noted("heartbeats", s.tx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE agents SET stopped_at = ? WHERE name = ? AND instance = ?`, nanos(at), name, instance)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // another instance runs under the name now: the beats it takes are its own
		}
		clock, args := s.nowSQL(at)
		return s.takeBeats(ctx, tx, name, nil, stamp{clock, args}, stamp{}, false)
	}))
}

// ForgetMember removes an agent that will not come back, so that it is no longer reported
// as silent, and its saved uptime board.
func (s *common) ForgetMember(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM agents WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if _, err = tx.ExecContext(ctx, `DELETE FROM beat_takers WHERE agent = ?`, name); err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, `DELETE FROM boards WHERE agent = ?`, name); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM board_parts WHERE agent = ?`, name)
		return err
	})
}

// Members returns every agent, by location and name.
func (s *common) Members(ctx context.Context) ([]*Member, error) {
	readAt := "0"
	if s.d.now != "" {
		readAt = s.d.now
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+memberColumns+`, `+readAt+` FROM agents ORDER BY location, name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Member
	for rows.Next() {
		var m Member
		var services string
		var started, beat, stopped, read int64
		if err := rows.Scan(&m.Name, &m.Instance, &m.Location, &m.Version, &m.URL, &services, &started, &beat, &stopped, &read); err != nil {
			return nil, err
		}
		m.Started, m.Heartbeat, m.Stopped, m.ReadAt = fromNanos(started), fromNanos(beat), fromNanos(stopped), fromNanos(read)
		_ = json.Unmarshal([]byte(services), &m.Services)
		out = append(out, &m)
	}
	return out, rows.Err()
}
