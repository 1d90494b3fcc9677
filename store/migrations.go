package store

// Migrations: the schema, one step at a time, each applied once. They are written for
// SQLite; PostgreSQL runs the same steps with its names for the same types (postgresSQL).
//
// On PostgreSQL the agents of the previous release run on over a schema the first agent of
// a new one migrated, until a rolling upgrade replaces them: a step adds (tables, columns
// with a default, triggers) and renames or drops nothing they use, and a new column's
// default is what their rows, which never name it, are read as (queued_at 0: queuedAt).
// TestRollingUpgradeFromThePreviousRelease (cmd/vigil) runs a release before the newest
// steps beside this one; with a new step, point its previousRelease at the commit before.

import (
	"context"
	"fmt"
	"strings"
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
	// 5: several agents sharing a store. agents: who runs, where, and when each was last
	// heard from. deploy_locations: each location's verdict on a deploy, which the deploy's
	// verdict combines; deploys.locations are the locations expected to verify it and
	// deploys.location is where it was registered. outbox claims: the agent delivering an
	// entry, until when. check_locations: each location's run of passes and failures of a
	// check under scheduled monitoring (the failures in a row that used to be the
	// incident's), which the check's incident combines.
	`CREATE TABLE agents (
		name TEXT PRIMARY KEY,
		instance TEXT NOT NULL,
		location TEXT NOT NULL,
		version TEXT NOT NULL DEFAULT '',
		url TEXT NOT NULL DEFAULT '',
		services TEXT NOT NULL DEFAULT '[]',
		started_at INTEGER NOT NULL,
		heartbeat_at INTEGER NOT NULL,
		stopped_at INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE deploy_locations (
		deploy_id TEXT NOT NULL REFERENCES deploys(id) ON DELETE CASCADE,
		location TEXT NOT NULL,
		agent TEXT NOT NULL,
		status TEXT NOT NULL,
		reason TEXT NOT NULL DEFAULT '',
		halt TEXT NOT NULL DEFAULT '',
		evidence BLOB NOT NULL,
		reported_at INTEGER NOT NULL,
		PRIMARY KEY (deploy_id, location)
	);
	ALTER TABLE deploys ADD COLUMN location TEXT NOT NULL DEFAULT '';
	ALTER TABLE deploys ADD COLUMN locations TEXT NOT NULL DEFAULT '[]';
	ALTER TABLE outbox ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
	ALTER TABLE outbox ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
	CREATE TABLE check_locations (
		check_name TEXT NOT NULL,
		location TEXT NOT NULL,
		failing INTEGER NOT NULL,
		failures INTEGER NOT NULL,
		successes INTEGER NOT NULL,
		since INTEGER NOT NULL,
		summary TEXT NOT NULL DEFAULT '',
		updated_at INTEGER NOT NULL,
		PRIMARY KEY (check_name, location)
	);
	ALTER TABLE incidents DROP COLUMN failures;
	ALTER TABLE incidents DROP COLUMN successes;`,
	// 6: several agents in one location. check_locations.agent: the agent keeping the
	// location's streak of the check ('' for a streak written before: the next writer
	// keeps it).
	`ALTER TABLE check_locations ADD COLUMN agent TEXT NOT NULL DEFAULT '';`,
	// 7: the beats heartbeat checks read (beats.go), kept where every agent sharing the
	// store reads them and a restart loses none.
	`CREATE TABLE beats (
		id INTEGER PRIMARY KEY,
		check_name TEXT NOT NULL,
		received_at INTEGER NOT NULL,
		version TEXT NOT NULL DEFAULT '',
		status TEXT NOT NULL,
		message TEXT NOT NULL DEFAULT '',
		agent TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX beats_by_check ON beats(check_name, received_at);`,
	// 8: several agents in one location each report on a deploy: deploy_locations is keyed
	// by agent too, and the location's verdict folds its agents' reports (agent/quorum.go).
	`CREATE TABLE deploy_reports (
		deploy_id TEXT NOT NULL REFERENCES deploys(id) ON DELETE CASCADE,
		location TEXT NOT NULL,
		agent TEXT NOT NULL,
		status TEXT NOT NULL,
		reason TEXT NOT NULL DEFAULT '',
		halt TEXT NOT NULL DEFAULT '',
		evidence BLOB NOT NULL,
		reported_at INTEGER NOT NULL,
		PRIMARY KEY (deploy_id, location, agent)
	);
	INSERT INTO deploy_reports(deploy_id, location, agent, status, reason, halt, evidence, reported_at)
		SELECT deploy_id, location, agent, status, reason, halt, evidence, reported_at FROM deploy_locations;
	DROP TABLE deploy_locations;
	ALTER TABLE deploy_reports RENAME TO deploy_locations;`,
	// 9: each agent's uptime board as it stopped, and the newest run it held then, so a
	// restart reads the runs written since rather than the week (boards.go).
	`CREATE TABLE boards (
		agent TEXT PRIMARY KEY,
		location TEXT NOT NULL,
		saved_at INTEGER NOT NULL,
		last_run INTEGER NOT NULL,
		data BLOB NOT NULL
	);`,
	// 10: a board in parts of a megabyte, a row each, after the row's own data: a board
	// of ten thousand checks and a week is 12 MB, and the database's copies of it as one
	// value took 12-28 MB more at every save (boards.go).
	`CREATE TABLE board_parts (
		agent TEXT NOT NULL,
		part INTEGER NOT NULL,
		data BLOB NOT NULL,
		PRIMARY KEY (agent, part)
	);`,
	// 11: the key a pipeline registers a deploy under (its Idempotency-Key), so that the
	// registration sent again after its answer was lost registers nothing new: one deploy of
	// a service per key, whichever agent sharing the store takes it.
	`ALTER TABLE deploys ADD COLUMN request_key TEXT NOT NULL DEFAULT '';
	CREATE UNIQUE INDEX deploys_request_key ON deploys(request_key, service) WHERE request_key != '';`,
	// 12: the failed deploy a deploy rolled back (its version is the one that failed deploy's
	// rollback went back to), so that a rollback that fails too is not rolled back again.
	`ALTER TABLE deploys ADD COLUMN rollback_of TEXT NOT NULL DEFAULT '';`,
	// 13: the outcomes of a location's last runs of a check, for failure_window.
	`ALTER TABLE check_locations ADD COLUMN recent TEXT NOT NULL DEFAULT '';`,
	// 14: the silence or maintenance window that muted a check incident's opening notice,
	// kept while the incident is announced to no one, so that it is sent once the mute ends.
	`ALTER TABLE incidents ADD COLUMN muted TEXT NOT NULL DEFAULT '';`,
	// 15: since when the agents sharing the store have taken heartbeat checks' beats without
	// a break (one row, which every agent's heartbeat extends), and since when each check's
	// beats were first expected: a missed beat is judged over the time an agent was there to
	// take it, not over one process's uptime (beats.go).
	`CREATE TABLE beat_service (
		store TEXT PRIMARY KEY,
		since_at INTEGER NOT NULL,
		until_at INTEGER NOT NULL
	);
	CREATE TABLE beat_checks (
		check_name TEXT PRIMARY KEY,
		since_at INTEGER NOT NULL
	);`,
	// 16: the outbox's reads by time, by state and by incident, which scanned every entry
	// (TestOutboxReadsUseIndexes): the oldest finished entries for the purges (created_at),
	// the newest of a state for the API's list (status, id: no sort), and the notifiers
	// that heard of an incident, asked as it closes (incident).
	`CREATE INDEX outbox_created ON outbox(created_at);
	CREATE INDEX outbox_listed ON outbox(status, id);
	CREATE INDEX outbox_heard ON outbox(incident, notifier);`,
	// 17: the beats of each heartbeat check are taken while an agent whose config has it is
	// alive (beats.go): each agent's word for each check (beat_takers) until it would be
	// silent, withdrawn at a clean stop or when a reload takes the check out; the check's
	// time without a break (beat_checks, from the store-wide one of migration 15, which only
	// agents of the version before still write), and the last one before it that lasted a
	// window, in which a job's miss was proven.
	`ALTER TABLE beat_checks ADD COLUMN until_at INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE beat_checks ADD COLUMN prev_since INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE beat_checks ADD COLUMN prev_until INTEGER NOT NULL DEFAULT 0;
	UPDATE beat_checks SET
		since_at = CASE WHEN (SELECT since_at FROM beat_service WHERE store = '') > since_at
			THEN (SELECT since_at FROM beat_service WHERE store = '') ELSE since_at END,
		until_at = COALESCE((SELECT until_at FROM beat_service WHERE store = ''), 0);
	CREATE TABLE beat_takers (
		check_name TEXT NOT NULL,
		agent TEXT NOT NULL,
		until_at INTEGER NOT NULL,
		PRIMARY KEY (check_name, agent)
	);`,
	// 18: the outbox's count of entries by state, kept as it changes (outbox_tally.go): each
	// change of the outbox adds its entries to the state they are in and takes them from the
	// one they left, as rows of its own transaction (never one counter row every writer
	// waits on); reading sums them, and folds them into a row per state now and then. The
	// triggers come before the count of what is there, so no write falls between the two
	// (PostgreSQL's form is in postgresMigrations).
	`CREATE TABLE outbox_tally (
		id INTEGER PRIMARY KEY,
		status TEXT NOT NULL,
		n INTEGER NOT NULL
	);
	CREATE TRIGGER outbox_tally_insert AFTER INSERT ON outbox BEGIN
		INSERT INTO outbox_tally(status, n) VALUES (NEW.status, 1);
	END;
	CREATE TRIGGER outbox_tally_update AFTER UPDATE OF status ON outbox WHEN OLD.status <> NEW.status BEGIN
		INSERT INTO outbox_tally(status, n) VALUES (OLD.status, -1), (NEW.status, 1);
	END;
	CREATE TRIGGER outbox_tally_delete AFTER DELETE ON outbox BEGIN
		INSERT INTO outbox_tally(status, n) VALUES (OLD.status, -1);
	END;
	INSERT INTO outbox_tally(status, n) SELECT status, COUNT(*) FROM outbox GROUP BY status;`,
	// 19: when each outbox entry was queued by the store's clock (the database's on
	// PostgreSQL, as next_attempt_at): the hour an entry may wait for its notifier, or be
	// paced by its receiver, is judged by it, not by the queuing agent's clock against the
	// sending one's. Entries queued before are taken as queued at created_at, and so are
	// those a vigil of before it writes after it, beside a newer one in a rolling upgrade
	// (queued_at 0: see queuedAt).
	`ALTER TABLE outbox ADD COLUMN queued_at INTEGER NOT NULL DEFAULT 0;
	UPDATE outbox SET queued_at = created_at;`,
}

// postgresMigrations are the migrations whose PostgreSQL form is not postgresSQL's, by
// number. 18: statement triggers, which see each statement's rows as tables, so that a
// purge of ten thousand entries adds a row per state, not one per entry; an update counts
// only states that changed (a claim or a lease renewal adds nothing).
var postgresMigrations = map[int]string{
	18: `CREATE TABLE outbox_tally (
		id BIGSERIAL PRIMARY KEY,
		status TEXT NOT NULL,
		n BIGINT NOT NULL
	);
	CREATE FUNCTION outbox_tally_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
		INSERT INTO outbox_tally(status, n) SELECT status, COUNT(*) FROM outbox_new GROUP BY status;
		RETURN NULL;
	END $$;
	CREATE FUNCTION outbox_tally_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
		INSERT INTO outbox_tally(status, n) SELECT status, SUM(n) FROM
			(SELECT status, 1 AS n FROM outbox_new UNION ALL SELECT status, -1 FROM outbox_old) AS changed
			GROUP BY status HAVING SUM(n) <> 0;
		RETURN NULL;
	END $$;
	CREATE FUNCTION outbox_tally_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
		INSERT INTO outbox_tally(status, n) SELECT status, -COUNT(*) FROM outbox_old GROUP BY status;
		RETURN NULL;
	END $$;
	CREATE TRIGGER outbox_tally_insert AFTER INSERT ON outbox REFERENCING NEW TABLE AS outbox_new
		FOR EACH STATEMENT EXECUTE FUNCTION outbox_tally_insert();
	CREATE TRIGGER outbox_tally_update AFTER UPDATE ON outbox REFERENCING OLD TABLE AS outbox_old NEW TABLE AS outbox_new
		FOR EACH STATEMENT EXECUTE FUNCTION outbox_tally_update();
	CREATE TRIGGER outbox_tally_delete AFTER DELETE ON outbox REFERENCING OLD TABLE AS outbox_old
		FOR EACH STATEMENT EXECUTE FUNCTION outbox_tally_delete();
	INSERT INTO outbox_tally(status, n) SELECT status, COUNT(*) FROM outbox GROUP BY status;`,
}

// postgresSQL is a migration in PostgreSQL's names for the same types: 64-bit integers
// (nanosecond times do not fit in 32 bits), BYTEA for blobs, a sequence for row ids.
func postgresSQL(q string) string {
	return strings.NewReplacer("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY", "INTEGER", "BIGINT", "BLOB", "BYTEA").Replace(q)
}

// newerSchema is the error for a database a newer vigil migrated.
func newerSchema(v int) error {
	return fmt.Errorf("the database is at schema version %d, newer than this vigil knows (%d): upgrade vigil or use another store.dsn", v, len(migrations))
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
		return newerSchema(v)
	}
	for i := v; i < len(migrations); i++ {
		err := s.tx(ctx, func(tx *txn) error {
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
