// Package store keeps vigil's history: runs with their evidence, deploys and verdicts, the
// notification outbox, alert state and silences. SQLite (pure Go, modernc.org/sqlite) is
// the embedded default. A verdict and the notifications it causes are written in one
// transaction, so a crash can lose neither one without the other.
//
// store imports no other vigil package: it has its own record types, and the agent converts.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("not found")

// SQLite is the embedded store.
type SQLite struct {
	db *sql.DB

	mu      sync.Mutex
	failing map[string]*writeFailure // by what was being written
}

// writeFailure is a kind of write that fails, until one succeeds again.
type writeFailure struct {
	since time.Time
	times int
	err   error
}

// Deploy statuses.
const (
	StatusVerifying    = "verifying"
	StatusPassed       = "passed"
	StatusFailed       = "failed"
	StatusInconclusive = "inconclusive"
	StatusSuperseded   = "superseded"
)

// Outbox entry statuses.
const (
	OutboxPending   = "pending"
	OutboxDelivered = "delivered"
	OutboxDead      = "dead"
	OutboxDryRun    = "dry_run"
	OutboxSilenced  = "silenced"
)

// Open opens (creating when needed) the database at path and migrates it. ":memory:" is a
// private in-memory database.
func Open(ctx context.Context, path string) (*SQLite, error) {
	dsn := "file::memory:"
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("store: creating the folder of %s: %w", path, err)
		}
		if err := notEmptied(path); err != nil {
			return nil, err
		}
		dsn = "file:" + path
	}
	// auto_vacuum must come before journal_mode: it only takes on a database that has no
	// tables yet, and it lets PurgeToSize give freed pages back to the file system. An
	// older database keeps reusing its freed pages instead. journal_size_limit truncates
	// the WAL after each checkpoint, so it cannot keep the size of its largest burst.
	dsn += "?_pragma=auto_vacuum(INCREMENTAL)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)" +
		"&_pragma=foreign_keys(ON)&_pragma=journal_size_limit(8388608)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	if path == ":memory:" {
		db.SetMaxOpenConns(1) // each connection would be its own empty database
	} else {
		db.SetMaxOpenConns(4)
	}
	s := &SQLite{db: db, failing: map[string]*writeFailure{}}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	return s, nil
}

// notEmptied refuses a database file that exists with 0 bytes: SQLite would take it for a
// new database and vigil would start with no history, no pending verdicts and no outbox,
// silently. (A new store has its header written as it opens; only its write-ahead log may
// hold the rest.)
func notEmptied(path string) error {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() > 0 || !fi.Mode().IsRegular() {
		return nil
	}
	if wal, err := os.Stat(path + "-wal"); err == nil && wal.Size() > 0 {
		return nil
	}
	return fmt.Errorf("store: %s is 0 bytes: it is not a new store but one that lost its contents (truncated, or a failed copy or restore); "+
		"restore it from a backup, or move it away to start with an empty store", path)
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

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

func (s *SQLite) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// noted records how a write of one kind went and returns its error: Health reports the
// kinds whose last write failed. A write abandoned because its context ended says nothing
// about the store.
func (s *SQLite) noted(what string, err error) error {
	if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch f := s.failing[what]; {
	case err == nil:
		delete(s.failing, what)
	case f == nil:
		s.failing[what] = &writeFailure{since: time.Now(), times: 1, err: err}
	default:
		f.times++
		f.err = err
	}
	return err
}

// probes are writes that exercise each kind of write's tables, for Health to try again in
// a transaction it rolls back.
var probes = map[string][]string{
	"saving runs":         {`INSERT INTO runs(check_name, kind, started_at, duration_ns, outcome) VALUES ('~probe', 'probe', 0, 0, 'pass')`},
	"registering deploys": {`INSERT INTO deploys(id, service, version, created_at, status) VALUES ('~probe', '~probe', '', 0, 'verifying')`},
	"recording verdicts": {`INSERT INTO deploys(id, service, version, created_at, status) VALUES ('~probe', '~probe', '', 0, 'failed')`,
		`INSERT INTO outbox(notifier, event, idem_key, payload, created_at, next_attempt_at, status) VALUES ('~probe', '', '~probe', '', 0, 0, 'pending')`},
	"queueing notifications": {`INSERT INTO outbox(notifier, event, idem_key, payload, created_at, next_attempt_at, status) VALUES ('~probe', '', '~probe', '', 0, 0, 'pending')`},
	"recording deliveries":   {`INSERT INTO outbox(notifier, event, idem_key, payload, created_at, next_attempt_at, status) VALUES ('~probe', '', '~probe', '', 0, 0, 'delivered')`},
	"saving incidents":       {`INSERT INTO incidents(check_name, open, seq, failures, successes, opened_at) VALUES ('~probe', 0, 0, 0, 0, 0)`},
}

// Health says which kinds of writes fail now (readiness): a store can take the probe's
// test write and still fail every save of a run, on a corrupt table or a full disk. A kind
// that failed is tried again here, so readiness comes back when the store does, not only
// at that kind's next real write (a check that runs hourly): a committed test write proves
// there is space, and its own statements, rolled back, prove its tables take writes.
func (s *SQLite) Health(ctx context.Context) error {
	s.mu.Lock()
	var kinds []string
	for k := range s.failing {
		kinds = append(kinds, k)
	}
	s.mu.Unlock()
	if len(kinds) == 0 {
		return nil
	}
	if s.Writable(ctx) == nil {
		for _, k := range kinds {
			if s.probe(ctx, k) == nil {
				s.noted(k, nil)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failing) == 0 {
		return nil
	}
	kinds = kinds[:0]
	for k := range s.failing {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	msgs := make([]string, 0, len(kinds))
	for _, k := range kinds {
		f := s.failing[k]
		msgs = append(msgs, fmt.Sprintf("%s fails (%d times since %s): %v", k, f.times, f.since.UTC().Format(time.RFC3339), f.err))
	}
	return errors.New(strings.Join(msgs, "; "))
}

// probe runs a kind's probe statements in a transaction and rolls it back.
func (s *SQLite) probe(ctx context.Context, kind string) error {
	stmts, ok := probes[kind]
	if !ok {
		return fmt.Errorf("no probe for %s", kind)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// Writable checks that a write succeeds (readiness).
func (s *SQLite) Writable(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES ('ready', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
		time.Now().UTC().Format(time.RFC3339Nano))
	return err
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "null"
	}
	return string(b)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// inClause returns "?, ?, ?" for n values.
func inClause(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
