package agent

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/store"
)

// A board saved as the agent stopped, read back at the next start with the runs stored
// since (by anyone: another writer in the location, an agent elsewhere), says what a
// board that saw every run of the location happen says, and what reading the week again
// says, on random histories: stopped for up to a day, after up to two days of running.
func TestBoardSavedAndReadBack(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 11))
	outcomes := []checks.Outcome{checks.Pass, checks.Fail, checks.Error, checks.Inconclusive}
	for round := range 4 {
		st, err := store.Open(context.Background(), ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		t1 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(time.Hour)))) // the first start
		t2 := t1.Add(time.Duration(rng.Int64N(int64(48 * time.Hour))))                                       // the stop
		t3 := t2.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))                                       // the next start
		// live saw every run of the location as it happened.
		live := wholeBoard()
		var stored []*store.RunRecord
		run := func(from, to time.Time, n int, also ...*board) {
			for range n {
				at := from.Add(time.Duration(rng.Int64N(int64(to.Sub(from)))))
				if rng.IntN(10) == 0 {
					at = at.Truncate(5 * time.Minute)
				}
				check, o := fmt.Sprintf("c%d", rng.IntN(3)), outcomes[rng.IntN(len(outcomes))]
				took := time.Duration(1+rng.IntN(900)) * time.Millisecond
				live.add(check, at, took, o, to)
				for _, bd := range also {
					bd.add(check, at, took, o, to)
				}
				stored = append(stored, &store.RunRecord{Check: check, Kind: "http", Started: at, Duration: took, Outcome: string(o), Location: "eu-west"},
					&store.RunRecord{Check: check, Kind: "http", Started: at, Duration: took, Outcome: string(checks.Fail), Location: "us-east"})
			}
			if err := st.SaveRuns(context.Background(), stored); err != nil {
				t.Fatal(err)
			}
			stored = nil
		}
		run(t1.Add(-8*24*time.Hour), t1, 400) // the history before the first start
		first := newBoard(t1)
		if err := first.seed(context.Background(), st, "eu-west", t1, t1); err != nil {
			t.Fatal(err)
		}
		run(t1, t2, 300, first) // its own runs
		data, ok := first.encode()
		last, err := st.LastRunID(context.Background())
		if !ok || err != nil {
			t.Fatalf("encode: %v, last run: %v", ok, err)
		}
		if err := st.SaveBoard(context.Background(), &store.Board{Agent: "a1", Location: "eu-west", SavedAt: t2, LastRun: last, Data: data}); err != nil {
			t.Fatal(err)
		}
		run(t2, t3.Add(-time.Second), 50) // written while it was stopped

		back, again := newBoard(t3), newBoard(t3)
		used, err := back.restore(context.Background(), st, "a1", "eu-west", t3, t3)
		if !used || err != nil {
			t.Fatalf("round %d: restore used %v, %v", round, used, err)
		}
		if err := again.seed(context.Background(), st, "eu-west", t3, t3); err != nil {
			t.Fatal(err)
		}
		run(t3, t3.Add(10*time.Minute), 20, back, again) // the next start's own runs
		now := t3.Add(10 * time.Minute)
		st.Close()
		for _, c := range []string{"c0", "c1", "c2"} {
			want, _ := live.stats(c, now)
			for name, bd := range map[string]*board{"read back": back, "read again": again} {
				got, _ := bd.stats(c, now)
				if got.Hour.runs != want.Hour.runs || got.Day.runs != want.Day.runs || got.Week.runs != want.Week.runs || got.Bars != want.Bars ||
					got.Partial != [3]bool{} {
					t.Errorf("round %d, %s, %s: hour %v day %v week %v partial %v; live hour %v day %v week %v", round, c, name,
						got.Hour.runs, got.Day.runs, got.Week.runs, got.Partial, want.Hour.runs, want.Day.runs, want.Week.runs)
				}
			}
		}
	}
}

// A board is not read back when it is not this location's, when the store's runs end
// before the run it was saved with (another store, or one emptied), or when it does not
// decode; none of that changes the board, and the week is read instead.
func TestBoardSavedNotUsed(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	st, err := store.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.SaveRuns(ctx, []*store.RunRecord{{Check: "home", Kind: "http", Started: now.Add(-time.Hour), Outcome: "pass", Location: "eu-west"}}); err != nil {
		t.Fatal(err)
	}
	saved := wholeBoard()
	saved.add("home", now.Add(-2*time.Hour), time.Millisecond, checks.Fail, now)
	data, _ := saved.encode()
	for _, c := range []struct {
		name     string
		b        store.Board
		location string
		err      bool
	}{
		{"none", store.Board{Agent: "someone-else", Location: "eu-west", LastRun: 1, Data: data}, "eu-west", false},
		{"another location", store.Board{Agent: "a1", Location: "us-east", LastRun: 1, Data: data}, "eu-west", false},
		{"runs gone", store.Board{Agent: "a1", Location: "eu-west", LastRun: 2, Data: data}, "eu-west", false},
		{"truncated", store.Board{Agent: "a1", Location: "eu-west", LastRun: 1, Data: data[:len(data)-3]}, "eu-west", true},
		{"not a board", store.Board{Agent: "a1", Location: "eu-west", LastRun: 1, Data: []byte("{}")}, "eu-west", true},
	} {
		if err := st.SaveBoard(ctx, &c.b); err != nil {
			t.Fatal(err)
		}
		bd := newBoard(now)
		used, err := bd.restore(ctx, st, "a1", c.location, now, now)
		if used || (err != nil) != c.err {
			t.Errorf("%s: used %v, error %v", c.name, used, err)
		}
		if s, _ := bd.stats("home", now); s.Week.total() != 0 || bd.reading {
			t.Errorf("%s: the board changed: %v, reading %v", c.name, s.Week.runs, bd.reading)
		}
	}
}

// An encoded board decodes to the buckets it was made of; a board whose rings differ from
// this vigil's, or with a bad field, does not decode at all.
func TestBoardEncoding(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	bd := wholeBoard()
	bd.add("home", now.Add(-3*time.Minute), 20*time.Millisecond, checks.Pass, now)
	bd.add("home", now.Add(-2*time.Minute), 40*time.Millisecond, checks.Error, now)
	bd.add("login", now.Add(-3*24*time.Hour), time.Second, checks.Fail, now)
	data, ok := bd.encode()
	if !ok {
		t.Fatal("a whole board did not encode")
	}
	got, err := decodedBuckets(data)
	if err != nil {
		t.Fatal(err)
	}
	// One bucket in each ring of each (a ring holds its newest bucket however old).
	if len(got) != 6 {
		t.Fatalf("%d buckets: %+v", len(got), got)
	}
	for _, b := range got {
		if b.check == "home" && b.ring == dayRing && (b.runs.runs != [4]uint32{1, 0, 1, 0} || b.runs.sumMS != 60 || b.runs.maxMS != 40) {
			t.Errorf("home's half-hour bucket: %+v", b.runs)
		}
	}
	if _, ok := newBoard(now).encode(); ok {
		t.Error("a board still reading its history encoded")
	}
	bad := func(what string, data []byte) {
		t.Helper()
		if err := decodeBoard(data, nil); err == nil {
			t.Errorf("%s decoded", what)
		}
	}
	bad("another ring width", bytes.Replace(data, []byte(boardMagic+"\xac\x02"), []byte(boardMagic+"\xad\x02"), 1))
	nan := bytes.Clone(data)
	copy(nan[len(nan)-4:], []byte{0, 0, 0xc0, 0x7f}) // the last duration: NaN
	bad("a NaN duration", nan)
	for i := len(boardMagic); i < len(data); i++ {
		if err := decodeBoard(data[:i], nil); err == nil && i < len(data) {
			// a board cut between two checks decodes (fewer checks); cut anywhere else it must not
			if got2, _ := decodedBuckets(data[:i]); len(got2) >= len(got) {
				t.Errorf("cut at %d of %d: decoded every bucket", i, len(data))
			}
		}
	}
}

// FuzzDecodeBoard: whatever the bytes, decoding ends, and a board that decodes has buckets
// a board can hold.
func FuzzDecodeBoard(f *testing.F) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	bd := wholeBoard()
	bd.add("home", now, 20*time.Millisecond, checks.Pass, now)
	bd.add("home", now.Add(-26*time.Hour), 20*time.Millisecond, checks.Fail, now)
	data, _ := bd.encode()
	f.Add(data)
	f.Add([]byte(boardMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodedBuckets(data)
		if check := decodeBoard(data, nil); (check == nil) != (err == nil) {
			t.Fatalf("checked alone: %v; decoded: %v", check, err)
		}
		if err != nil {
			return
		}
		into := wholeBoard()
		for _, b := range got {
			if b.ring < 0 || b.ring > 2 || b.num < int64(ringSlots[b.ring]) || b.num > math.MaxInt32 || b.runs.sumMS < 0 || math.IsNaN(float64(b.runs.sumMS)) {
				t.Fatalf("a bucket no board holds: %+v", b)
			}
			into.check(b.check).put(b.ring, b.num*int64(ringWidth[b.ring]), 0, b.runs)
		}
	})
}

// decodedBuckets is every bucket of an encoded board, in order.
func decodedBuckets(data []byte) ([]savedBucket, error) {
	var out []savedBucket
	err := decodeBoard(data, func(b savedBucket) { out = append(out, b) })
	return out, err
}

// Decoding a saved board keeps no bucket: checking it allocates nothing, and reading it
// into a board one string per check. (Collected in a slice, the buckets of ten thousand
// checks and a week took 180 MB more than the board, at every start.)
func TestDecodeBoardKeepsNoBucket(t *testing.T) {
	now := time.Now()
	bd := wholeBoard()
	const checksN = 50
	for c := range checksN {
		for at := now.Add(-7 * 24 * time.Hour); at.Before(now); at = at.Add(15 * time.Minute) {
			bd.add(fmt.Sprintf("c%d", c), at, 20*time.Millisecond, checks.Pass, now)
		}
	}
	data, _ := bd.encode()
	buckets := 0
	if err := decodeBoard(data, func(savedBucket) { buckets++ }); err != nil || buckets < checksN*50 {
		t.Fatalf("%d buckets, %v", buckets, err)
	}
	if n := testing.AllocsPerRun(5, func() { _ = decodeBoard(data, nil) }); n != 0 {
		t.Errorf("checking a board of %d buckets allocated %.0f times; want none", buckets, n)
	}
	if n := testing.AllocsPerRun(5, func() { _ = decodeBoard(data, func(savedBucket) {}) }); n > checksN {
		t.Errorf("decoding a board of %d checks, %d buckets, allocated %.0f times; want a name per check at most", checksN, buckets, n)
	}
}
