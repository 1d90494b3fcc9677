package store

// SQLite: the embedded store, one file beside the agent: the default, for one agent.

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// SQLite is the embedded store.
type SQLite struct {
	*common
	// path and file are the database file as opened: Health compares them with what the
	// path holds now.
	path string
	file os.FileInfo
}

// WALCheckpointPages is how many pages the write-ahead log holds before they are written
// into the database file (SQLite's wal_autocheckpoint).
const WALCheckpointPages = 4000

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
		dsn = "file:" + uriPath(path)
	}
	// The WAL is written into the file every WALCheckpointPages pages (SQLite's default is
	// 1,000): a checkpoint writes each page once however often it changed since the last,
	// and at a thousand runs a second each check's newest index page changes every second;
	// a run's write costs about a tenth less (BenchmarkSaveRuns). journal_size_limit then
	// truncates the WAL to 16 MiB after each checkpoint, so it cannot keep the size of its
	// largest burst.
	params := "_pragma=busy_timeout(" + strconv.FormatInt(busyTimeout.Milliseconds(), 10) + ")&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)" +
		"&_pragma=foreign_keys(ON)&_pragma=wal_autocheckpoint(" + strconv.Itoa(WALCheckpointPages) + ")" +
		"&_pragma=journal_size_limit(16777216)&_txlock=immediate"
	vacuum := "_pragma=auto_vacuum(INCREMENTAL)&" // before journal_mode, see incrementalVacuum
	if path == ":memory:" {
		params = vacuum + params // one connection, and no other process
	} else if err := incrementalVacuum(ctx, dsn+"?"+vacuum+params); err != nil {
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", dsn+"?"+params)
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	if path == ":memory:" {
		db.SetMaxOpenConns(1) // each connection would be its own empty database
	} else {
		db.SetMaxOpenConns(4)
	}
	s := &SQLite{common: newCommon(db, dialect{lock: func(context.Context, *txn, string) error { return nil }, insertOrder: "rowid", bulkRead: smallCache}, false)}
	s.db.writes, s.db.wait = make(chan struct{}, 1), busyTimeout
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	if path != ":memory:" {
		s.path = path
		s.file, _ = os.Stat(path)
	}
	return s, nil
}

// incrementalVacuum makes a new database one whose freed pages PurgeToSize can give back
// to the file system (auto_vacuum INCREMENTAL), on a connection of its own: the setting
// only takes on a database with no tables yet, before its journal mode is WAL, and it is
// kept in the file from then on. An older database keeps reusing its freed pages instead.
// Setting it takes the database's write lock, even to the value it has, so the pool's
// connections must not: each new one waited for any write in progress, another process's
// for up to the busy timeout, and a status page or an API read that needed a new
// connection waited with it (TestReadsDoNotWaitForALockedStore).
func incrementalVacuum(ctx context.Context, dsn string) error {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	var mode string
	return db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
}

// Health is the store's health, and its file's: a database file deleted or replaced while
// the agent runs (a cleanup job, a volume mounted over it) takes every write into the old,
// unlinked file, which the next start no longer finds, with its pending rollbacks.
func (s *SQLite) Health(ctx context.Context) error {
	if s.file != nil {
		now, err := os.Stat(s.path)
		if err != nil || !os.SameFile(now, s.file) {
			what := "replaced"
			if err != nil {
				what = "deleted"
			}
			return fmt.Errorf("the database file %s was %s while the agent runs: every write goes to the old file, which a restart does not find; "+
				"a restart starts a new store, without the history and anything pending (copy the old file back first from the process's open file, /proc/PID/fd)", s.path, what)
		}
	}
	return s.common.Health(ctx)
}

// scanCacheKiB is the page cache a connection reads the board's history with. That read
// passes each page of a week's runs once, so a cache does it no good, and SQLite sizes a
// sort's memory from the cache too (the query groups the runs): with the default 2,000
// KiB, reading a store of a million runs took 9 MB more memory than with 256 KiB and kept
// most of it (modernc's allocator gives a 4 KiB page with its header an 8 KiB slot, and
// keeps what it freed), which put an agent of 1,000 checks over 40 MiB as it started.
const scanCacheKiB = 256

// smallCache sets c's page cache to scanCacheKiB for a bulk read, and returns what sets
// it back to what it was (with a deadline of its own, the read's may have passed).
func smallCache(ctx context.Context, c *sql.Conn) (restore func() error, err error) {
	var was int64
	if err := c.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&was); err != nil {
		return nil, err
	}
	if _, err := c.ExecContext(ctx, "PRAGMA cache_size = -"+strconv.Itoa(scanCacheKiB)); err != nil {
		return nil, err
	}
	return func() error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, err := c.ExecContext(ctx, "PRAGMA cache_size = "+strconv.FormatInt(was, 10))
		return err
	}, nil
}

// ObserveWriteWaits has f told how long each of this process's writes waited for its turn
// (0 when none was under way), a wait given up at the bound or the caller's deadline
// included: the store's contention, before any write is refused.
func (s *SQLite) ObserveWriteWaits(f func(time.Duration)) { s.db.waited.Store(&f) }

// uriPath escapes what a file: URI reads otherwise in a path: '%' an escape, '?' the
// parameters, '#' a fragment SQLite drops ("deploys #1/vigil.db" opened "deploys ").
func uriPath(path string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
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
