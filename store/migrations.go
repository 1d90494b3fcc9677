package store

// Migrations: the schema, one step at a time, each applied once.

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order; each runs once, recorded in schema_version.
var migrations = []string{
	`CREATE TABLE runs (
		id INTEGER PRIMARY KEY,
		check_name TEXT NOT NULL,
		kind TEXT NOT NULL,
		started_at INTEGER NOT NULL,
		duration_ns INTEGER NOT NULL,
		outcome TEXT NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 1,
		deploy_id TEXT,
		reasons TEXT NOT NULL DEFAULT '[]',
		vars TEXT NOT NULL DEFAULT '{}',
		transcript TEXT NOT NULL DEFAULT '[]',
		trace_id TEXT NOT NULL DEFAULT '',
		halt TEXT NOT NULL DEFAULT '',
		location TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX runs_check_time ON runs(check_name, started_at);
	CREATE INDEX runs_deploy ON runs(deploy_id) WHERE deploy_id IS NOT NULL;
	CREATE INDEX runs_time ON runs(started_at);
	CREATE TABLE artifacts (
		run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		name TEXT NOT NULL,
		content_type TEXT NOT NULL,
		data BLOB NOT NULL,
		PRIMARY KEY (run_id, name)
	);
	CREATE TABLE deploys (
		id TEXT PRIMARY KEY,
		service TEXT NOT NULL,
		version TEXT NOT NULL,
		environment TEXT NOT NULL DEFAULT '',
		commit_sha TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		status TEXT NOT NULL,
		reason TEXT NOT NULL DEFAULT '',
		decided_at INTEGER NOT NULL DEFAULT 0,
		superseded_by TEXT NOT NULL DEFAULT '',
		halt TEXT NOT NULL DEFAULT '',
		baseline TEXT NOT NULL DEFAULT '{}'
	);
	CREATE INDEX deploys_service ON deploys(service, created_at);
	CREATE INDEX deploys_status ON deploys(status);
	CREATE TABLE outbox (
		id INTEGER PRIMARY KEY,
		notifier TEXT NOT NULL,
		event TEXT NOT NULL,
		idem_key TEXT NOT NULL,
		incident TEXT NOT NULL DEFAULT '',
		payload BLOB NOT NULL,
		created_at INTEGER NOT NULL,
		next_attempt_at INTEGER NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0,
		status TEXT NOT NULL,
		last_error TEXT NOT NULL DEFAULT '',
		done_at INTEGER NOT NULL DEFAULT 0,
		UNIQUE (notifier, idem_key)
	);
	CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
	CREATE INDEX outbox_incident ON outbox(notifier, incident, status);
	CREATE TABLE alert_state (
		notifier TEXT NOT NULL,
		incident TEXT NOT NULL,
		state TEXT NOT NULL,
		updated_at INTEGER NOT NULL,
		PRIMARY KEY (notifier, incident)
	);
	CREATE TABLE incidents (
		check_name TEXT PRIMARY KEY,
		open INTEGER NOT NULL,
		seq INTEGER NOT NULL,
		failures INTEGER NOT NULL,
		successes INTEGER NOT NULL,
		opened_at INTEGER NOT NULL,
		summary TEXT NOT NULL DEFAULT ''
	);
	CREATE TABLE silences (
		id TEXT PRIMARY KEY,
		check_name TEXT NOT NULL DEFAULT '',
		service TEXT NOT NULL DEFAULT '',
		starts_at INTEGER NOT NULL,
		ends_at INTEGER NOT NULL,
		reason TEXT NOT NULL,
		created_by TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL
	);
	CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
	// 2: reminders of open check incidents (repeat_interval).
	`ALTER TABLE incidents ADD COLUMN reminders INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE incidents ADD COLUMN notified_at INTEGER NOT NULL DEFAULT 0;`,
	// 3: the links a pipeline passes with a deploy (links.go).
	linksMigration,
	// 4: the events timeline of the status page (status.go).
	eventsMigration,
}

func (s *SQLite) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	if err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("the database is at schema version %d, newer than this vigil knows (%d): upgrade vigil or use another store.dsn", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_version(version) VALUES (?)`, i+1)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	return nil
}
