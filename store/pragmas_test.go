package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWALSettings holds what the store's comment and the README say of the write-ahead log:
// checkpointed every WALCheckpointPages pages, truncated to 16 MiB after, on every
// connection of the pool.
func TestWALSettings(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "vigil.db"))
	ctx := context.Background()
	conns := make([]interface{ Close() error }, 0, 4)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 4 { // every connection the pool may open, held at once
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var mode string
		var pages, limit int64
		if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&pages); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, "PRAGMA journal_size_limit").Scan(&limit); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || pages != WALCheckpointPages || limit != 16<<20 {
			t.Errorf("connection %d: journal_mode %s, wal_autocheckpoint %d, journal_size_limit %d; want wal, %d, %d",
				i, mode, pages, limit, WALCheckpointPages, 16<<20)
		}
	}
}

// The log is written into the database file as it grows past WALCheckpointPages, whatever
// wrote to it. SQLite looks at that only when a statement runs to its end, which an
// INSERT ... RETURNING whose row is read never does: events written that way alone grew
// the log to 57 MB for 3,000 events with nothing written into the file.
func TestEventsKeepTheLogBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.db")
	s := open(t, path)
	ctx := context.Background()
	now := time.Now()
	for i := range 3000 {
		if err := s.AddEvent(ctx, &Event{At: now.Add(-time.Duration(i) * time.Minute), Kind: "check_failed",
			Check: fmt.Sprintf("check-%04d", i%1000), Summary: "a check failed"}); err != nil {
			t.Fatal(err)
		}
	}
	wal, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// A log of WALCheckpointPages frames (a page and its 24-byte header each) and the last
	// commit's few pages; the file holds the rest.
	if limit := int64(WALCheckpointPages+64) * (4096 + 24); wal.Size() > limit || db.Size() <= 4096 {
		t.Errorf("after 3,000 events the log is %d bytes (at most %d: %d pages) and the database file %d",
			wal.Size(), limit, WALCheckpointPages, db.Size())
	}
}

// A path is a path, whatever it holds: the store is opened as a file: URI, where '#' would
// start a fragment SQLite drops (every store under "deploys #1/" and "deploys #2/" was then
// one file named "deploys ", outside both folders: two parallel subtests, "x" and "x#01",
// shared a database), '?' the parameters and '%' an escape.
func TestOpenAPathWithURICharacters(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var stores []*SQLite
	for _, name := range []string{"deploys #1", "deploys #2", "a?b=c", "50%25 done"} {
		path := filepath.Join(dir, name, "vigil.db")
		s := open(t, path)
		if err := s.Enqueue(ctx, []*OutboxEntry{{Notifier: "pd", Event: "check_failed", Key: name, Incident: name, Payload: []byte("{}"), CreatedAt: t0}}); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
			t.Errorf("%s: the database is not at its path: %v", name, err)
		}
		var fk int
		if err := s.db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
			t.Errorf("%s: foreign_keys %d %v; want the DSN's pragmas applied", name, fk, err)
		}
		stores = append(stores, s)
	}
	for i, s := range stores {
		if got, err := s.Outbox(ctx, "", 10); err != nil || len(got) != 1 {
			t.Errorf("store %d holds %d entries (%v); want its own one", i, len(got), err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 4 {
		t.Errorf("%d entries in the folder; want the 4 stores' folders and nothing beside them", len(entries))
	}
}
