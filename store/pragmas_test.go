package store

import (
	"context"
	"path/filepath"
	"testing"
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
