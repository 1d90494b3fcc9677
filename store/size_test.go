package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPurgeToSize: past max_size the oldest runs go, with their evidence, until the data
// fits in nine tenths of it; the newest stay, and the file shrinks.
func TestPurgeToSize(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vigil.db")
	s := open(t, path)
	evidence := bytes.Repeat([]byte("evidence "), 100<<10/9)
	var ids []int64
	for i := range 60 {
		r := &Run{Check: "big", Kind: "http", Started: t0.Add(time.Duration(i) * time.Second), Outcome: "fail", Attempts: 1,
			Artifacts: []*Artifact{{Name: "response-body.txt", ContentType: "text/plain", Data: evidence}}}
		if err := s.SaveRuns(ctx, []*Run{r}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	before, err := s.Size(ctx)
	if err != nil || before < 6e6 {
		t.Fatalf("60 runs of 100 KiB take %d bytes (%v)", before, err)
	}
	if n, _, _ := s.PurgeToSize(ctx, before+1); n != 0 {
		t.Errorf("a store under max_size lost %d rows", n)
	}
	const max = 3 << 20
	n, after, err := s.PurgeToSize(ctx, max)
	if err != nil {
		t.Fatal(err)
	}
	if after > max*9/10 || n == 0 {
		t.Errorf("purged %d rows; %d bytes left, want at most %d", n, after, max*9/10)
	}
	if _, err := s.Run(ctx, ids[len(ids)-1]); err != nil {
		t.Errorf("the newest run was purged: %v", err)
	}
	if _, err := s.Run(ctx, ids[0]); err == nil {
		t.Errorf("the oldest run survived")
	}
	if _, err := s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() > max {
		t.Errorf("the file is %d bytes after the purge: freed pages were not given back (%v)", fi.Size(), err)
	}
	t.Logf("%.1f MB of runs purged to %.1f MB (%d rows); file %.1f MB", float64(before)/1e6, float64(after)/1e6, n, float64(fi.Size())/1e6)
}
