package store

// Postgres: the store several agents share, through pgx's connection pool. The queries are
// the shared ones (common.go), numbered for PostgreSQL; runs, the one write of the hot
// path, are written in batches with COPY.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// Postgres is a store in a PostgreSQL database that several agents may share.
type Postgres struct {
	*common
	pool *pgxpool.Pool
}

// PoolOptions size the connection pool; zero values keep pgx's defaults (or the DSN's
// pool_* parameters).
type PoolOptions struct {
	MaxConns        int32
	MinConns        int32
	MaxConnLifetime time.Duration
	MaxConnIdleTime time.Duration
	// ConnectTimeout bounds each connection attempt; 0 is 10s.
	ConnectTimeout time.Duration
}

// minHealthCheck is the shortest period of the pool's check of its idle connections.
const minHealthCheck = 250 * time.Millisecond

// migrationLock is the advisory lock migrations hold: agents starting at once migrate one
// after the other, and the later ones find nothing left to do.
const migrationLock = 0x76696731 // "vig1"

// OpenPostgres connects to the database named by dsn (a postgres:// URL or key=value
// string), checks that it answers, and migrates it. An unreachable database is an error
// now, naming where it looked; once open, a database that goes away makes each call fail
// until it is back (the pool reconnects), and the agent retries what must not be lost.
func OpenPostgres(ctx context.Context, dsn string, o PoolOptions) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: store.dsn is not a PostgreSQL connection string (postgres://user@host:5432/database or host=... dbname=...): %w", err)
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	if o.MinConns > 0 {
		cfg.MinConns = o.MinConns
	}
	if o.MaxConnLifetime > 0 {
		cfg.MaxConnLifetime = o.MaxConnLifetime
	}
	if o.MaxConnIdleTime > 0 {
		cfg.MaxConnIdleTime = o.MaxConnIdleTime
	}
	// pgx closes idle and expired connections only at its health check, every minute by
	// default: an idle time of 1s kept connections for a minute, past a firewall's or a
	// proxy's idle cutoff the key is set to stay under. Check often enough to keep to them.
	for _, d := range []time.Duration{cfg.MaxConnIdleTime, cfg.MaxConnLifetime} {
		if d > 0 {
			cfg.HealthCheckPeriod = min(cfg.HealthCheckPeriod, max(d/2, minHealthCheck))
		}
	}
	switch {
	case o.ConnectTimeout > 0:
		cfg.ConnConfig.ConnectTimeout = o.ConnectTimeout
	case cfg.ConnConfig.ConnectTimeout == 0:
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	where := fmt.Sprintf("%s:%d (database %q, user %q)", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, cfg.ConnConfig.User)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: PostgreSQL at %s: %w", where, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, cfg.ConnConfig.ConnectTimeout+time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: cannot reach PostgreSQL at %s: %w; check store.dsn, and that the server runs and takes connections from this host", where, unwrapConnect(err))
	}
	p := &Postgres{pool: pool, common: newCommon(stdlib.OpenDBFromPool(pool), dialect{
		forUpdate: " FOR UPDATE", skipLocked: " FOR UPDATE SKIP LOCKED", insertOrder: "id",
		now: "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000000 AS BIGINT)",
		lock: func(ctx context.Context, tx *txn, key string) error {
			_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext(?))`, key)
			return err
		},
	}, true)}
	if err := p.migrate(ctx); err != nil {
		p.Close()
		return nil, fmt.Errorf("store: PostgreSQL at %s: %w", where, err)
	}
	return p, nil
}

// unwrapConnect keeps the reason of a failed connection (refused, timed out, a password
// refused) and drops pgx's repetitions of the address the message already names.
func unwrapConnect(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return op
	}
	return err
}

// Close closes the pool.
func (p *Postgres) Close() error {
	err := p.common.Close()
	p.pool.Close()
	return err
}

func (p *Postgres) migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("waiting for the migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)`); err != nil {
			return fmt.Errorf("migrating: %w", err)
		}
		var v int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
			return fmt.Errorf("reading schema version: %w", err)
		}
		if v > len(migrations) {
			return newerSchema(v)
		}
		for i := v; i < len(migrations); i++ {
			q, ok := postgresMigrations[i+1]
			if !ok {
				q = postgresSQL(migrations[i])
			}
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_version(version) VALUES ($1)`, i+1); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		return nil
	})
}

var runCopyColumns = strings.Split("id,check_name,kind,started_at,duration_ns,outcome,attempts,deploy_id,reasons,vars,transcript,trace_id,halt,location", ",")

// SaveRuns stores runs in one transaction and sets their IDs: their IDs drawn in one
// query, the rows and their evidence sent with COPY. A batch of a thousand runs costs a
// few round trips, not a thousand statements.
func (p *Postgres) SaveRuns(ctx context.Context, runs []*RunRecord) error {
	if len(runs) == 0 {
		return nil
	}
	return p.noted("saving runs", pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT nextval('runs_id_seq') FROM generate_series(1, $1)`, len(runs))
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		var arts [][]any
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"runs"}, runCopyColumns, pgx.CopyFromSlice(len(runs), func(i int) ([]any, error) {
			r := runs[i]
			var deploy any
			if r.DeployID != "" {
				deploy = r.DeployID
			}
			seen := map[string]bool{}
			for j := len(r.Artifacts) - 1; j >= 0; j-- { // the last of a name wins, as an upsert would have it
				a := r.Artifacts[j]
				if a.Data != nil && !seen[a.Name] {
					seen[a.Name] = true
					arts = append(arts, []any{ids[i], a.Name, a.ContentType, a.Data})
				}
			}
			return []any{ids[i], r.Check, r.Kind, nanos(r.Started), int64(r.Duration), r.Outcome, int64(r.Attempts), deploy,
				mustJSON(r.Reasons), mustJSON(r.Vars), mustJSON(r.Transcript), r.TraceID, r.Halt, r.Location}, nil
		}))
		if err != nil {
			return fmt.Errorf("saving %d runs: %w", len(runs), err)
		}
		if len(arts) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"artifacts"}, []string{"run_id", "name", "content_type", "data"}, pgx.CopyFromRows(arts)); err != nil {
				return fmt.Errorf("saving the evidence of %d runs: %w", len(runs), err)
			}
		}
		for i, r := range runs {
			r.ID = ids[i]
		}
		return nil
	}))
}

// Size is how many bytes the database takes on disk.
func (p *Postgres) Size(ctx context.Context) (int64, error) {
	var n int64
	if err := p.pool.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&n); err != nil {
		return 0, fmt.Errorf("reading the store's size: %w", err)
	}
	return n, nil
}
