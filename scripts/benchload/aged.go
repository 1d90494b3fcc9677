package main

// An aged store: what the agent writes into after some time in production. In a store a
// minute old a check's entries in the per-check index (check_name, started_at) share pages
// with its neighbours'; once a check has more than a page of history, its newest page is its
// own, so every run writes a page of its own, and a thousand such pages are more than
// SQLite's default page cache. The "aged" scenario starts vigil and the floor each on a copy
// of one store that already holds `history` runs of every check, made once.

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// agedVars are a passing http run's variables as vigil stores them, so the old rows take
// the room real ones do.
const agedVars = `{"body_bytes":2,"body_truncated":false,"cert_expiry_days":-1,"cert_expiry_timestamp":0,"conn_reused":true,` +
	`"connect_ms":0,"content_length":2,"dns_ms":0,"duration_ms":1.234,"headers":{"Content-Length":"2","Content-Type":"text/plain",` +
	`"Date":"Wed, 02 Dec 2026 09:56:57 GMT"},"proto":"HTTP/1.1","redirects":0,"status":200,"tls_ms":0,"ttfb_ms":1.1,"url":"http://127.0.0.1:39075/"}`

// agedStore writes a store of vigil's schema holding sc.history runs of each of sc's checks
// (c0, c1, ... as both processes name them), one every sc.every, all before now, into dir,
// and returns its path.
func agedStore(dir string, sc scenario) (string, error) {
	path := filepath.Join(dir, sc.name+"-history.db")
	ctx := context.Background()
	st, err := store.Open(ctx, path) // the schema, migrated as the agent would
	if err != nil {
		return "", err
	}
	st.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return "", err
	}
	defer db.Close()
	n := sc.checks * sc.history
	first := time.Now().Add(-time.Duration(sc.history+60) * sc.every) // the newest a minute before now
	// In the order the agent writes them, a round of every check, then the next, in the
	// location an agent has when none is configured (local): the agent's own history.
	if _, err := db.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i < ?-1)
		INSERT INTO runs(check_name, kind, started_at, duration_ns, outcome, attempts, vars, location)
		SELECT 'c'||(i % ?), 'http', ? + (i / ?) * ? + (i % ?) * ?, 2000000, 'pass', 1, ?, 'local' FROM n`,
		n, sc.checks, first.UnixNano(), sc.checks, int64(sc.every), sc.checks, int64(sc.every)/int64(sc.checks), agedVars); err != nil {
		return "", fmt.Errorf("filling the aged store: %w", err)
	}
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return "", err
	}
	return path, db.Close()
}

// copyFile copies the aged store to where a round's process opens its store.
func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
