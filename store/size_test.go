package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPurgeToSize: past max_size the oldest runs go, with their evidence, until the data
// fits in nine tenths of it; the newest stay, and the file shrinks.
func TestPurgeToSize(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vigil.db")
	s := open(t, path)
	evidence := bytes.Repeat([]byte("evidence "), 100<<10/9)
	var ids []int64
	for i := range 60 {
		r := &RunRecord{Check: "big", Kind: "http", Started: t0.Add(time.Duration(i) * time.Second), Outcome: "fail", Attempts: 1,
			Artifacts: []*Artifact{{Name: "response-body.txt", ContentType: "text/plain", Data: evidence}}}
		if err := s.SaveRuns(ctx, []*RunRecord{r}); err != nil {
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
	if _, err := s.RunByID(ctx, ids[len(ids)-1]); err != nil {
		t.Errorf("the newest run was purged: %v", err)
	}
	if _, err := s.RunByID(ctx, ids[0]); err == nil {
		t.Errorf("the oldest run survived")
	}
	if _, err := s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() > max {
		t.Errorf("the file is %d bytes after the purge: freed pages were not given back (%v)", fi.Size(), err)
	}
	t.Logf("reliability: max_size %.1f MB: %.1f MB of runs purged to %.1f MB (%d oldest runs deleted, the newest kept); file %.1f MB after",
		float64(max)/1e6, float64(before)/1e6, float64(after)/1e6, n, float64(fi.Size())/1e6)
}

// A database file of 0 bytes is not a new store: it is a store that lost its contents
// (truncated, a failed copy). Opening it must fail and say so, not start empty.
func TestEmptyFileIsAnError(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "vigil.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), path)
	if err == nil {
		s.Close()
		t.Fatal("a 0-byte database file opened as a new, empty store")
	}
	t.Logf("reliability: opening a 0-byte database file: %v", strings.Replace(err.Error(), path, "vigil.db", 1))
	if !strings.Contains(err.Error(), "0 bytes") || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q should name the file and say it is empty", err)
	}
	if fi, _ := os.Stat(path); fi.Size() != 0 {
		t.Errorf("Open wrote %d bytes into the file it refused", fi.Size())
	}
	// A path that does not exist is a new store.
	s = open(t, filepath.Join(t.TempDir(), "new.db"))
	if _, err := s.Size(context.Background()); err != nil {
		t.Error(err)
	}
}

// Health names the kinds of writes that fail now, and forgets one once it succeeds again,
// or once a probe of it does: here the store is fine, so the probe clears the failures
// noted by hand (a store that really fails keeps them: TestReadyzWhileSavesFail).
func TestHealthFollowsWrites(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		st := drv.fresh(t)
		s := st.self()
		ctx := context.Background()
		if err := st.Health(ctx); err != nil {
			t.Fatal(err)
		}
		_ = s.noted("saving runs", errors.New("disk full"))
		_ = s.noted("recording verdicts", context.Canceled) // abandoned, not failed
		s.mu.Lock()
		n := len(s.failing)
		s.mu.Unlock()
		if n != 1 {
			t.Fatalf("%d kinds failing; want 1 (a cancelled write says nothing about the store)", n)
		}
		for kind := range probes {
			if err := s.probe(ctx, kind); err != nil {
				t.Errorf("the probe of %s fails on a healthy store: %v", kind, err)
			}
		}
		if err := st.Health(ctx); err != nil {
			t.Errorf("a healthy store whose probes pass: %v", err)
		}
		if err := st.SaveRuns(ctx, []*RunRecord{{Check: "a", Kind: "http", Started: t0, Outcome: "pass"}}); err != nil {
			t.Fatal(err)
		}
		if runs, _ := st.RecentRuns(ctx, "~probe", time.Now(), 10); len(runs) != 0 {
			t.Errorf("a probe left a run behind: %v", runs)
		}
	})
}

// A database file deleted or replaced while the store is open is unhealthy: every write
// goes to the old, unlinked file, which the next start no longer finds.
func TestHealthSeesTheFileGoing(t *testing.T) {
	for _, change := range []string{"deleted", "replaced"} {
		t.Run(change, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vigil.db")
			s, err := Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Health(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if change == "replaced" {
				if err := os.WriteFile(path, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Health(context.Background()); err == nil || !strings.Contains(err.Error(), "was "+change+" while the agent runs") {
				t.Errorf("Health after the file was %s: %v", change, err)
			}
		})
	}
}
