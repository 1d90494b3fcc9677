package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
	"github.com/vigil-monitor/vigil/store"
)

// A crash leaves the store as it was at that instant: the board saved last while the agent
// ran and the runs committed after it. Copies of a running agent's store taken at random
// instants (VACUUM INTO: what a crash then leaves), each read back as a start after that
// crash reads it, count every run once: as reading the copy's week does. The agent saves
// its board every 150 ms while forty checks run every second, manual runs and deploy
// verification rounds are stored at once beside the batches, and the target fails and
// recovers (the runs that change an incident are stored at once too).
func TestBoardSavedWhileRunningCountsEachRunOnce(t *testing.T) {
	tg := newTarget(t)
	var cfg strings.Builder
	cfg.WriteString("checks:\n")
	for i := range 40 {
		fmt.Fprintf(&cfg, "  - {name: c%d, kind: http, every: 1s, timeout: 2s, retries: 0, failure_threshold: 1, request: {url: %q}, assert: [\"status == 200\"]}\n", i, tg.srv.URL+"/")
	}
	cfg.WriteString("services:\n  web:\n    checks: [c0, c1, c2, c3]\n    verify: {interval: 1s, count: 3}\n")
	dir := t.TempDir()
	logs := &vigiltest.Buffer{}
	l := launch(t, dir, cfg.String(), Options{BoardSaveInterval: 150 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	h := &harness{t: t, a: l.a, url: l.url, token: l.cfg.Agent.APIToken.Value(), logs: logs}
	defer func() {
		if err := l.stop(); err != nil {
			t.Errorf("agent.Run: %v", err)
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	}()
	select {
	case <-h.a.HistoryRead():
	case <-time.After(time.Minute):
		t.Fatal("the (empty) history was not read in a minute")
	}

	ctx, stop := context.WithCancel(t.Context())
	var busy sync.WaitGroup
	busy.Go(func() { // manual runs, stored at once
		for i := 0; ctx.Err() == nil; i++ {
			h.request("POST", fmt.Sprintf("/api/v1/checks/c%d/run", 4+i%4), "")
			time.Sleep(5 * time.Millisecond)
		}
	})
	busy.Go(func() { // the target fails and recovers: incidents open and close
		for i := 0; ctx.Err() == nil; i++ {
			tg.set([]string{"good", "broken"}[i%2])
			select {
			case <-ctx.Done():
			case <-time.After(700 * time.Millisecond):
			}
		}
	})
	for i := range 2 {
		h.deploy("web", fmt.Sprintf("v%d", i+2))
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(7, 3))
	var copies []string
	for i := range 6 {
		time.Sleep(time.Duration(400+rng.IntN(400)) * time.Millisecond)
		path := filepath.Join(dir, fmt.Sprintf("crash%d.db", i))
		if _, err := db.Exec(`VACUUM INTO ?`, path); err != nil {
			t.Fatal(err)
		}
		copies = append(copies, path)
	}
	stop()
	busy.Wait()

	now := time.Now().Add(time.Minute)
	after := 0 // copies with runs stored after their board
	for _, path := range copies {
		st, err := store.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		saved, err := st.SavedBoard(context.Background(), h.a.name)
		last, err2 := st.LastRunID(context.Background())
		if err != nil || err2 != nil || saved == nil {
			t.Fatalf("%s: no board saved while running: %v, %v", path, err, err2)
		}
		if last > saved.LastRun {
			after++
		}
		back, again := newBoard(now), newBoard(now)
		if used, err := back.restore(context.Background(), st, h.a.name, h.a.location, now, now); !used || err != nil {
			t.Fatalf("%s: restore used %v, %v", path, used, err)
		}
		if err := again.seed(context.Background(), st, h.a.location, now, now); err != nil {
			t.Fatal(err)
		}
		st.Close()
		total := 0
		for i := range 40 {
			c := fmt.Sprintf("c%d", i)
			got, _ := back.stats(c, now)
			want, _ := again.stats(c, now)
			total += int(want.Hour.total())
			// (runs, not their durations' sums: float32 sums in another order differ)
			same := got.Hour.runs == want.Hour.runs && got.Day.runs == want.Day.runs && got.Partial == [3]bool{}
			for b := range got.Bars {
				same = same && got.Bars[b].runs == want.Bars[b].runs
			}
			if !same {
				t.Errorf("%s, %s: read back after the crash %v, the week read %v", filepath.Base(path), c, got.Hour.runs, want.Hour.runs)
			}
		}
		t.Logf("%s: %d runs, %d stored after the board saved last", filepath.Base(path), total, last-saved.LastRun)
	}
	if after == 0 {
		t.Error("no copy held runs stored after its board: the test did not try what it is for")
	}
}

// slowStore writes runs as the store does, slowly: a run handed over while a batch is
// written waits long enough to be counted on the wrong side of a board saved then.
type slowStore struct {
	*store.SQLite
	delay time.Duration
}

func (s slowStore) SaveRuns(ctx context.Context, runs []*store.RunRecord) error {
	time.Sleep(s.delay)
	return s.SQLite.SaveRuns(ctx, runs)
}

// Every board the writer saves counts exactly the runs stored with an id up to the one it
// was saved with, while runs are handed to batches and stored at once from many goroutines
// and each batch is slow to write, and the board is slow to encode: the board and the runs after its id count each run
// once, wherever a crash cuts them.
func TestRunWriterSavesTheBoardInStepWithTheRuns(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	type save struct {
		data []byte
		last int64
	}
	var (
		bd    = wholeBoard()
		mu    sync.Mutex
		saves []save
	)
	// Other checks' week, so that encoding takes milliseconds, as a thousand checks' does.
	now := time.Now()
	for c := range 300 {
		for at := now.Add(-7 * 24 * time.Hour); at.Before(now); at = at.Add(5 * time.Minute) {
			bd.add(fmt.Sprintf("old%d", c), at, time.Millisecond, checks.Pass, now)
		}
	}
	keeper := boardKeeper{
		count: func(r *store.RunRecord) {
			bd.add(r.Check, r.Started, r.Duration, checks.Outcome(r.Outcome), time.Now())
		},
		save: func(ctx context.Context) (bool, int, error) { // as the agent's: the newest id, then the board
			last, err := st.LastRunID(ctx)
			if err != nil {
				return false, 0, err
			}
			data, ok := bd.encode()
			mu.Lock()
			saves = append(saves, save{data, last})
			mu.Unlock()
			return ok, len(data), nil
		},
		every: time.Nanosecond, // every batch
		now:   time.Now,
	}
	w := newRunWriter(slowStore{st, 3 * time.Millisecond}, slog.New(slog.DiscardHandler), keeper, func() int64 { return 1 << 40 }, nil)
	runCtx, stop := context.WithCancel(ctx)
	var writer, hands sync.WaitGroup
	writer.Go(func() { w.run(runCtx) })
	// Runs are handed over for two seconds and until five boards are saved: on a busy
	// machine under the race detector two seconds held four. The three minutes are a
	// guard against a hang, not a pace: two whole test suites at once under the race
	// detector on two cores saved a board every 15 s (4 in a minute; 1 s alone).
	soft := time.Now().Add(2 * time.Second)
	enough := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(saves) >= 5 && time.Now().After(soft)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for g := range 6 {
		hands.Go(func() {
			for i := 0; !enough() && time.Now().Before(deadline); i++ {
				r := &store.RunRecord{Check: fmt.Sprintf("c%d", (g+i)%5), Kind: "http", Started: time.Now(), Duration: time.Millisecond,
					Outcome: "pass", Location: "local"}
				switch {
				case g == 0: // verification rounds, manual runs
					if err := w.saveNow(ctx, r); err != nil {
						// A store busy past its timeout (a loaded machine): the run goes
						// to the next batch, and the boards below must count it once.
						t.Logf("a run saved at once was refused and kept: %v", err)
					}
				case g == 1 && i%50 == 0: // a deploy's baseline
					w.add(r)
					w.flush(ctx)
				default:
					w.add(r)
					time.Sleep(200 * time.Microsecond)
				}
			}
		})
	}
	hands.Wait()
	stop()
	writer.Wait()
	w.flush(ctx)

	if len(saves) < 5 {
		t.Fatalf("%d boards saved in three minutes of runs handed over", len(saves))
	}
	for i, s := range saves {
		counted := map[string]uint32{}
		buckets, err := decodedBuckets(s.data)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range buckets {
			if b.ring == weekRing && !strings.HasPrefix(b.check, "old") {
				counted[b.check] += b.runs.runs[0]
			}
		}
		stored := map[string]uint32{}
		err = st.RunBucketsByID(ctx, "local", 0, s.last, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), hourWidth, func(r store.BucketRow) {
			stored[r.Check] += uint32(r.Runs)
		})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(counted) != fmt.Sprint(stored) {
			t.Errorf("board %d of %d, saved with run %d: counts %v; the runs up to it %v", i+1, len(saves), s.last, counted, stored)
		}
	}
	t.Logf("%d boards saved", len(saves))
}

// refusingStore refuses the first SaveRuns of a single run, as a locked or full store
// does, and takes everything after it.
type refusingStore struct {
	*store.SQLite
	refused atomic.Bool
}

func (s *refusingStore) SaveRuns(ctx context.Context, runs []*store.RunRecord) error {
	if len(runs) == 1 && s.refused.CompareAndSwap(false, true) {
		for _, r := range runs {
			r.ID = 99 // as an insert rolled back may leave it
		}
		return errors.New("database is locked")
	}
	return s.SQLite.SaveRuns(ctx, runs)
}

// A run saved at once that the store refuses is not lost: it is stored with the next
// batch, counted on the board once, and the caller hears that it has no id yet.
func TestSaveNowKeepsARefusedRun(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	counted := 0
	keeper := boardKeeper{count: func(*store.RunRecord) { counted++ }, save: func(context.Context) (bool, int, error) { return false, 0, nil },
		every: time.Hour, now: time.Now}
	w := newRunWriter(&refusingStore{SQLite: st}, slog.New(slog.DiscardHandler), keeper, func() int64 { return 1 << 40 }, nil)
	r := &store.RunRecord{Check: "login", Kind: "http", Started: time.Now(), Duration: time.Millisecond, Outcome: "fail", Attempts: 1, DeployID: "d1"}
	err = w.saveNow(ctx, r)
	if err == nil || !strings.Contains(err.Error(), "kept for the next batch") || r.ID != 0 {
		t.Fatalf("saveNow on a refusing store: %v, id %d; want the refusal, kept, and no id", err, r.ID)
	}
	w.flush(ctx)
	runs, err := st.DeployRuns(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Check != "login" || r.ID == 0 || runs[0].ID != r.ID {
		t.Fatalf("stored after the next batch: %d runs, id %d; want the one run", len(runs), r.ID)
	}
	if counted != 1 {
		t.Fatalf("counted on the board %d times; want once", counted)
	}
}
