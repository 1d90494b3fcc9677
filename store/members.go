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
	// (configs.SilentAfter), and as taking heartbeat checks' beats (BeatsTaken). Written,
	// never read back.
	AliveFor time.Duration
}

const memberColumns = `name, instance, location, version, url, services, started_at, heartbeat_at, stopped_at`

// Heartbeat records m as alive at m.Heartbeat or, when that is zero, now by the store's
// clock: the database's on PostgreSQL, so that agents on several hosts are judged by one
// clock and none is taken for silent because its own is behind. When the name was held by another instance
// it returns that instance: this agent's run before a restart, or, when it keeps
// happening, a second agent running under the same name. It also extends the time the
// store's agents take beats without a break (BeatsTaken): a heartbeat that comes while the
// last one's AliveFor lasts, from this agent or another, continues it; one after starts it
// again.
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
		_, err = tx.ExecContext(ctx, `INSERT INTO beat_service(store, since_at, until_at) VALUES ('', `+beat+`, `+until+`)
			ON CONFLICT(store) DO UPDATE SET
			since_at = CASE WHEN excluded.since_at > beat_service.until_at THEN excluded.since_at ELSE beat_service.since_at END,
			until_at = CASE WHEN excluded.until_at > beat_service.until_at THEN excluded.until_at ELSE beat_service.until_at END`,
			append(beatArgs, untilArgs...)...)
		return err
	})
	return previous, s.noted("heartbeats", err)
}

// StopMember records that an agent shut down cleanly: it is stopped, not silent.
func (s *common) StopMember(ctx context.Context, name, instance string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE agents SET stopped_at = ? WHERE name = ? AND instance = ?`, nanos(at), name, instance)
	return s.noted("heartbeats", err)
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
