// Package store keeps vigil's history: runs with their evidence, deploys and verdicts, the
// notification outbox, alert state, silences, and the agents sharing a store. SQLite (pure
// Go, modernc.org/sqlite) is the embedded default, for one agent; PostgreSQL (pgx) is the
// store several agents share. Both have the same tables, the same migrations and, but for
// a few statements, the same queries (common.go). A verdict and the notifications it
// causes are written in one transaction, so a crash can lose neither one without the other.
//
// store imports no other vigil package: it has its own record types, and the agent converts.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("not found")

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
	// OutboxSkipped is an entry its notifier had no message for (a follow-up of an incident
	// it did not post), with why in its last error: not sent, and never to be.
	OutboxSkipped = "skipped"
)

// common is the tables and queries SQLite and Postgres share, over database/sql. Queries
// are written with ? placeholders; conn numbers them for PostgreSQL.
type common struct {
	db *conn
	d  dialect

	mu      sync.Mutex
	failing map[string]*writeFailure // by what was being written

	// purgeBatch fixes the rows of each batch of an age purge (0: as long as purgeTurn).
	purgeBatch int
}

// dialect is what differs between the two databases in the shared queries.
type dialect struct {
	// forUpdate locks the rows a SELECT reads until the transaction ends (PostgreSQL);
	// SQLite's write transactions are serialised whole, so it needs none.
	forUpdate string
	// skipLocked picks rows no other transaction holds, and locks them (PostgreSQL's FOR
	// UPDATE SKIP LOCKED), so agents claiming work at once never wait for each other.
	skipLocked string
	// lock serialises the transactions that name the same key: PostgreSQL takes an
	// advisory lock for the rest of the transaction; SQLite's write transactions (BEGIN
	// IMMEDIATE) already run one at a time.
	lock func(ctx context.Context, tx *txn, key string) error
	// insertOrder breaks ties between deploys registered in the same nanosecond (a test's
	// fake clock): SQLite's rowid keeps the order they were written; PostgreSQL has none
	// and orders them by id, whose time part is the same and whose rest is random.
	insertOrder string
	// now is the database's clock as SQL, in nanoseconds since the epoch (PostgreSQL's
	// clock_timestamp()): what leases and heartbeats are stamped and judged by where agents
	// on several hosts share the store, so that no agent's clock decides them. "" on
	// SQLite, one host and one clock: the caller's time (a test's fake clock) is used.
	now string
	// bulkRead readies a connection for a read that passes a large part of the runs once
	// (the board's history at start), and returns what sets it back; nil: none needed.
	bulkRead func(ctx context.Context, c *sql.Conn) (restore func() error, err error)
}

func newCommon(db *sql.DB, d dialect, numbered bool) *common {
	c := &conn{DB: db}
	if numbered {
		c.rebind = numberPlaceholders
	}
	return &common{db: c, d: d, failing: map[string]*writeFailure{}}
}

// conn is a database whose queries use ? placeholders.
type conn struct {
	*sql.DB
	rebind func(string) string // nil: the driver takes ? as it is

	// writes lets this process's writes to an SQLite file in one at a time, in the order
	// they asked (nil for PostgreSQL, whose writers lock rows, not the database). SQLite
	// allows one writer, and its busy handler is not a queue: a waiting writer sleeps and
	// polls, so a writer that begins again as soon as it commits (the batch of runs, under
	// load) can keep a lone write out past the busy timeout. A buffered channel hands the
	// turn to the writer that has waited longest. Writers in other processes (the CLI on
	// the same file) still meet SQLite's own busy timeout.
	writes chan struct{}
	// wait bounds the wait for a turn, as SQLite's busy timeout bounds its own.
	wait time.Duration
	// waited is told how long each write waited for its turn, given up or not (nil: no one asks).
	waited atomic.Pointer[func(time.Duration)]
}

// busyTimeout is how long a write waits for the others: for its turn in this process, and
// then again for the SQLite file's lock if another process holds it.
const busyTimeout = 10 * time.Second

// lockWrites waits for this process's turn to write, if it keeps turns.
func (c *conn) lockWrites(ctx context.Context) error {
	if c.writes == nil {
		return nil
	}
	select {
	case c.writes <- struct{}{}:
		c.tell(0)
		return nil
	default:
	}
	began := time.Now()
	t := time.NewTimer(c.wait)
	defer t.Stop()
	var err error
	select {
	case c.writes <- struct{}{}:
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = fmt.Errorf("store: waited %s for this agent's other writes to finish (database is locked)", c.wait)
	}
	c.tell(time.Since(began))
	return err
}

func (c *conn) tell(d time.Duration) {
	if f := c.waited.Load(); f != nil {
		(*f)(d)
	}
}

func (c *conn) unlockWrites() {
	if c.writes != nil {
		<-c.writes
	}
}

// placeholders caches numbered queries: the same few dozen queries are rebound all day.
var placeholders sync.Map

// numberPlaceholders turns ? placeholders into PostgreSQL's $1, $2... The queries hold no
// ? inside string literals.
func numberPlaceholders(q string) string {
	if v, ok := placeholders.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	placeholders.Store(q, b.String())
	return b.String()
}

func (c *conn) q(query string) string {
	if c.rebind == nil {
		return query
	}
	return c.rebind(query)
}

// ExecContext runs a statement that writes (or a pragma), in this process's turn.
func (c *conn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := c.lockWrites(ctx); err != nil {
		return nil, err
	}
	defer c.unlockWrites()
	return c.DB.ExecContext(ctx, c.q(query), args...)
}

func (c *conn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return c.DB.QueryContext(ctx, c.q(query), args...)
}

func (c *conn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return c.DB.QueryRowContext(ctx, c.q(query), args...)
}

// BeginTx begins a transaction in this process's turn to write (SQLite's transactions all
// begin IMMEDIATE, writers); the turn passes on when it commits or rolls back.
func (c *conn) BeginTx(ctx context.Context, opts *sql.TxOptions) (*txn, error) {
	if err := c.lockWrites(ctx); err != nil {
		return nil, err
	}
	tx, err := c.DB.BeginTx(ctx, opts)
	if err != nil {
		c.unlockWrites()
		return nil, err
	}
	return &txn{Tx: tx, c: c}, nil
}

// txn is a transaction whose queries use ? placeholders.
type txn struct {
	*sql.Tx
	c    *conn
	done bool // committed or rolled back: its turn is passed on
}

// Commit commits the transaction and passes the turn to write on.
func (t *txn) Commit() error {
	err := t.Tx.Commit()
	t.end()
	return err
}

// Rollback rolls the transaction back and passes the turn to write on; rolling back one
// already ended is harmless, as with sql.Tx.
func (t *txn) Rollback() error {
	err := t.Tx.Rollback()
	t.end()
	return err
}

func (t *txn) end() {
	if !t.done {
		t.done = true
		t.c.unlockWrites()
	}
}

func (t *txn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(ctx, t.c.q(query), args...)
}

func (t *txn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(ctx, t.c.q(query), args...)
}

func (t *txn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, t.c.q(query), args...)
}

func (t *txn) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return t.Tx.PrepareContext(ctx, t.c.q(query))
}

// Close closes the database.
func (s *common) Close() error { return s.db.Close() }

func (s *common) tx(ctx context.Context, fn func(*txn) error) error {
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

// scanner is a row or rows.
type scanner interface{ Scan(...any) error }
