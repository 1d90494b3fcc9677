package agent

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/clock"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

func fakeCheck(name, kind string, every time.Duration) *checks.Check {
	return &checks.Check{Name: name, Kind: kind, Timeout: time.Second, Config: &configs.Check{Name: name, Kind: kind, Every: every}}
}

type startLog struct {
	mu     sync.Mutex
	starts map[string][]time.Time
	dues   map[string][]time.Time
}

func (l *startLog) add(name string, due, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.starts[name] = append(l.starts[name], at)
	l.dues[name] = append(l.dues[name], due)
}

func (l *startLog) due(name string) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.dues[name]...)
}

func (l *startLog) get(name string) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.starts[name]...)
}

var epoch = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

// step advances the fake clock in small steps, letting dispatched goroutines run between.
func step(fc *clock.Fake, total, by time.Duration, settle func()) {
	for d := time.Duration(0); d < total; d += by {
		fc.Advance(by)
		settle()
	}
}

func TestSchedulerOffsetsAndNoDrift(t *testing.T) {
	fc := clock.NewFake(epoch)
	log := &startLog{starts: map[string][]time.Time{}, dues: map[string][]time.Time{}}
	s := NewScheduler(SchedulerOptions{Clock: fc, Concurrency: 100, Seed: 7, Execute: func(ctx context.Context, c *checks.Check, due time.Time) {
		log.add(c.Name, due, fc.Now())
	}})
	var list []*checks.Check
	for i := range 20 {
		list = append(list, fakeCheck(fmt.Sprintf("c%d", i), "http", 10*time.Second))
	}
	list = append(list, fakeCheck("fast", "http", time.Second))
	s.Set(list)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)

	settle := func() {
		fc.BlockUntil(1)
		time.Sleep(time.Millisecond)
	}
	step(fc, 60*time.Second, 250*time.Millisecond, settle)
	cancel()
	s.Wait()

	offsets := map[time.Duration]bool{}
	for i := range 20 {
		starts := log.get(fmt.Sprintf("c%d", i))
		if len(starts) < 5 || len(starts) > 7 {
			t.Fatalf("c%d ran %d times in 60s at every=10s", i, len(starts))
		}
		first := starts[0].Sub(epoch)
		if first < 0 || first >= 10*time.Second {
			t.Errorf("c%d first run at +%s: the offset must be within one interval", i, first)
		}
		offsets[log.due(fmt.Sprintf("c%d", i))[0].Sub(epoch)] = true
		// No drift: the k-th run is due exactly k intervals after the first, and it
		// started within one clock step of being due.
		dues := log.due(fmt.Sprintf("c%d", i))
		for k := 1; k < len(dues); k++ {
			if want := dues[0].Add(time.Duration(k) * 10 * time.Second); !dues[k].Equal(want) {
				t.Errorf("c%d: run %d due at %s, want %s: drift", i, k, dues[k].Sub(epoch), want.Sub(epoch))
			}
			if lag := starts[k].Sub(dues[k]); lag < 0 || lag > 250*time.Millisecond {
				t.Errorf("c%d: run %d started %s after it was due", i, k, lag)
			}
		}
	}
	// Twenty checks of one interval come due in batches of about ten: two instants.
	if len(offsets) != 2 {
		t.Errorf("20 checks every 10 s came due at %d distinct offsets, want 2 batches", len(offsets))
	}
	if n := len(log.get("fast")); n < 59 || n > 61 {
		t.Errorf("every=1s ran %d times in 60s", n)
	}
}

func TestSchedulerSkipsWhileRunningAndBoundsConcurrency(t *testing.T) {
	fc := clock.NewFake(epoch)
	release := make(chan struct{})
	var all, browsers vigiltest.InFlight
	var skipped atomic.Int32
	var started atomic.Int32
	s := NewScheduler(SchedulerOptions{Clock: fc, Concurrency: 3, BrowserConcurrency: 1,
		OnSkip: func(string) { skipped.Add(1) },
		Execute: func(ctx context.Context, c *checks.Check, due time.Time) {
			started.Add(1)
			defer all.Enter()()
			if c.Kind == configs.KindBrowser {
				defer browsers.Enter()()
			}
			select {
			case <-release:
			case <-ctx.Done():
			}
		}})
	var list []*checks.Check
	for i := range 6 {
		list = append(list, fakeCheck(fmt.Sprintf("h%d", i), "http", time.Second))
	}
	for i := range 3 {
		list = append(list, fakeCheck(fmt.Sprintf("b%d", i), configs.KindBrowser, time.Second))
	}
	s.Set(list)
	ctx, cancel := context.WithCancel(context.Background())
	go s.Run(ctx)
	step(fc, 5*time.Second, 100*time.Millisecond, func() { fc.BlockUntil(1); time.Sleep(2 * time.Millisecond) })

	if p := all.Peak(); p != 3 {
		t.Errorf("peak concurrency %d, want exactly the limit 3", p)
	}
	if p := browsers.Peak(); p > 1 {
		t.Errorf("browser concurrency %d, limit 1", p)
	}
	if skipped.Load() == 0 {
		t.Error("runs still going must make later ticks skip, not pile up")
	}
	close(release)
	cancel()
	s.Wait()
	if started.Load() > 9 {
		t.Errorf("%d runs started though none finished before the end: overlapping runs of one check", started.Load())
	}
}

func TestSchedulerSetKeepsPhaseAndRemoves(t *testing.T) {
	fc := clock.NewFake(epoch)
	log := &startLog{starts: map[string][]time.Time{}, dues: map[string][]time.Time{}}
	s := NewScheduler(SchedulerOptions{Clock: fc, Concurrency: 10, Seed: 3, Execute: func(ctx context.Context, c *checks.Check, due time.Time) {
		log.add(c.Name, due, fc.Now())
	}})
	a, b := fakeCheck("a", "http", 10*time.Second), fakeCheck("b", "http", 10*time.Second)
	s.Set([]*checks.Check{a, b})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	settle := func() { fc.BlockUntil(1); time.Sleep(time.Millisecond) }
	step(fc, 25*time.Second, 250*time.Millisecond, settle)
	before := log.get("a")
	// A reload with a new object for a, no b, and a new c.
	s.Set([]*checks.Check{fakeCheck("a", "http", 10*time.Second), fakeCheck("c", "http", 10*time.Second)})
	step(fc, 30*time.Second, 250*time.Millisecond, settle)
	cancel()
	s.Wait()
	after := log.get("a")
	if len(after) <= len(before) {
		t.Fatal("a stopped running after the reload")
	}
	for k := 1; k < len(after); k++ {
		if gap := after[k].Sub(after[k-1]); gap != 10*time.Second {
			t.Errorf("a's phase moved across the reload: gap %s", gap)
		}
	}
	nb := len(log.get("b"))
	if nb > 3 {
		t.Errorf("b ran %d times: it kept running after removal", nb)
	}
	if len(log.get("c")) < 2 {
		t.Error("c, added by the reload, did not run")
	}
}

// With RunAtStart every check runs once at once, then keeps a phase: fifty checks do not
// all fire again together one interval later, but in batches of about ten.
func TestSchedulerRunsAtStartThenKeepsPhase(t *testing.T) {
	fc := clock.NewFake(epoch)
	log := &startLog{starts: map[string][]time.Time{}, dues: map[string][]time.Time{}}
	s := NewScheduler(SchedulerOptions{Clock: fc, Concurrency: 32, Seed: 5, RunAtStart: true, Execute: func(ctx context.Context, c *checks.Check, due time.Time) {
		log.add(c.Name, due, fc.Now())
	}})
	var list []*checks.Check
	var names []string
	for i := range 50 {
		names = append(names, fmt.Sprintf("c%d", i))
	}
	for _, n := range names {
		list = append(list, fakeCheck(n, "http", time.Minute))
	}
	s.Set(list)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	settle := func() { fc.BlockUntil(1); time.Sleep(time.Millisecond) }
	step(fc, 3*time.Minute+30*time.Second, 250*time.Millisecond, settle)
	cancel()
	s.Wait()
	seconds := map[time.Duration]bool{}
	for _, n := range names {
		due := log.due(n)
		if len(due) < 3 || !due[0].Equal(epoch) {
			t.Fatalf("%s: due %v; want a first run at the start, then more", n, due)
		}
		phase := due[1].Sub(epoch)
		if phase <= 0 || phase > time.Minute {
			t.Errorf("%s: the second run is due %s after the start; want within one interval", n, phase)
		}
		for k := 2; k < len(due); k++ {
			if gap := due[k].Sub(due[k-1]); gap != time.Minute {
				t.Errorf("%s: runs %d and %d are %s apart, want 1m", n, k-1, k, gap)
			}
		}
		seconds[phase] = true
	}
	if len(seconds) < 3 || len(seconds) > 5 {
		t.Errorf("50 checks came due at %d instants after the start (%v), want batches of about ten", len(seconds), seconds)
	}
}

// A run at start that is still going, or still waiting for its slot, when the check's
// phase comes is that tick's run: the phase tick is not counted as skipped (an agent of ten
// thousand checks would count hundreds at every start). Every later tick that finds a run
// still going is, and so is every tick after the phase that passed meanwhile.
func TestSchedulerRunAtStartStillGoingIsThePhaseTicksRun(t *testing.T) {
	fc := clock.NewFake(epoch)
	atStart, later := make(chan struct{}), make(chan struct{})
	var skipped atomic.Int32
	var mu sync.Mutex
	ran := map[string]int{}
	s := NewScheduler(SchedulerOptions{Clock: fc, Concurrency: 2, Seed: 3, RunAtStart: true,
		OnSkip: func(string) { skipped.Add(1) },
		Execute: func(ctx context.Context, c *checks.Check, due time.Time) {
			gate := atStart
			if !due.Equal(epoch) {
				if c.Name != "c0" {
					gate = nil
				} else {
					gate = later
				}
			}
			if gate != nil {
				select {
				case <-gate:
				case <-ctx.Done():
				}
			}
			mu.Lock()
			ran[c.Name]++
			mu.Unlock()
		}})
	var list []*checks.Check
	for i := range 20 {
		list = append(list, fakeCheck(fmt.Sprintf("c%d", i), "http", 10*time.Second))
	}
	s.Set(list)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); s.Wait() }()
	go s.Run(ctx)
	settle := func() { fc.BlockUntil(1); time.Sleep(time.Millisecond) }
	// Two slots, and the runs at start all wait on the first two: every check's phase
	// comes while its run at start is going or queued.
	step(fc, 10*time.Second, 250*time.Millisecond, settle)
	if n := skipped.Load(); n != 0 {
		t.Fatalf("%d phase ticks counted skipped while the runs at start went on; want none", n)
	}
	close(atStart)
	eventually(t, 5*time.Second, "the runs at start", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ran) == 20
	})
	// c0's next run hangs (on later) for three more intervals: the two ticks it is still
	// going at are skipped and counted, as every other check runs on.
	step(fc, 35*time.Second, 250*time.Millisecond, settle)
	if n := skipped.Load(); n != 2 && n != 3 {
		t.Errorf("%d ticks skipped while c0's run hung for 30-35 s of a 10 s interval; want 2 or 3 (its phase)", n)
	}
	close(later)
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < 20; i++ {
		if n := ran[fmt.Sprintf("c%d", i)]; n < 4 {
			t.Errorf("c%d ran %d times in 45 s of a 10 s interval, its run at start included; want at least 4", i, n)
		}
	}
}

// Ticks whose time passed while the scheduler could not run (a starved process, a stopped
// VM) are skipped, not run in a burst, and each is counted as skipped.
func TestSchedulerCountsTicksItWasTooLateFor(t *testing.T) {
	fc := clock.NewFake(epoch)
	var mu sync.Mutex
	var dues []time.Time
	var skipped atomic.Int32
	s := NewScheduler(SchedulerOptions{Clock: fc, Concurrency: 4, Seed: 7,
		OnSkip: func(string) { skipped.Add(1) },
		Execute: func(_ context.Context, _ *checks.Check, due time.Time) {
			mu.Lock()
			dues = append(dues, due)
			mu.Unlock()
		}})
	s.Set([]*checks.Check{fakeCheck("c", "http", time.Second)})
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); s.Wait() }()
	go s.Run(ctx)
	fc.BlockUntil(1)
	fc.Advance(10*time.Second + 500*time.Millisecond) // one jump: the scheduler slept through ten ticks
	eventually(t, 5*time.Second, "the late tick run", func() bool { mu.Lock(); defer mu.Unlock(); return len(dues) == 1 })
	fc.BlockUntil(1)
	mu.Lock()
	first := dues[0]
	mu.Unlock()
	now := epoch.Add(10*time.Second + 500*time.Millisecond)
	want := int32(now.Sub(first) / time.Second) // the ticks after the first one, all due by now
	if got := skipped.Load(); got != want || want < 9 {
		t.Errorf("skipped %d ticks, want %d (first due %s)", got, want, first.Sub(epoch))
	}
}

// TestSchedulerPhasesOnTheGrid: the checks of one interval come due in batches of about
// ten, on a grid of that interval's own, after the run at start too: 1,000 checks a second
// at about 100 instants 10 ms apart, 100 checks every 30 s at ten instants 3 s apart; an
// interval with fewer than two batches' worth of checks gets no grid (no burst of them
// all). Phases keep the monotonic clock reading (a wall-clock step must not move the
// schedule). Kinds that must not be batched
// (browser, sla, propagation) keep phases of their own, and two schedulers' grids start at
// different shifts (agents in two locations do not send at the same instants).
func TestSchedulerPhasesOnTheGrid(t *testing.T) {
	phases := func(s *Scheduler, atStart bool, prefix string) []time.Time {
		t.Helper()
		var out []time.Time
		for name, e := range s.entries {
			if !strings.HasPrefix(name, prefix) {
				continue
			}
			phase := e.next
			if atStart {
				if e.next.After(time.Now()) {
					t.Fatalf("%s: with RunAtStart the first run is due at once, not at %s", name, e.next)
				}
				phase = e.then
			}
			if !strings.Contains(phase.String(), "m=") {
				t.Fatalf("%s: phase %s lost the monotonic clock reading", name, phase)
			}
			out = append(out, phase)
		}
		return out
	}
	// instants checks that every phase is within one interval (and a grain) of before,
	// that the phases are a whole number of grains apart, and counts the instants.
	instants := func(ps []time.Time, before time.Time, every, grain time.Duration) int {
		t.Helper()
		seen := map[int64]bool{}
		for _, p := range ps {
			if d := p.Sub(before); d < 0 || d > every+grain+time.Second {
				t.Fatalf("phase %s after Set, want within one interval", d)
			}
			if r := p.Sub(ps[0]) % grain; r != 0 {
				t.Fatalf("phases %s and %s are not a whole number of %s apart", p, ps[0], grain)
			}
			seen[p.UnixNano()] = true
		}
		return len(seen)
	}
	var shifts []time.Duration
	for _, atStart := range []bool{false, true} {
		s := NewScheduler(SchedulerOptions{Clock: clock.Real{}, Concurrency: 32, BrowserConcurrency: 1, RunAtStart: atStart,
			Execute: func(context.Context, *checks.Check, time.Time) {}})
		var list []*checks.Check
		for i := range 1000 {
			list = append(list, fakeCheck(fmt.Sprintf("fast%d", i), "http", time.Second))
		}
		for i := range 100 {
			list = append(list, fakeCheck(fmt.Sprintf("slow%d", i), "tcp", 30*time.Second))
		}
		for i := range 19 { // fewer than two batches of their interval
			list = append(list, fakeCheck(fmt.Sprintf("few%d", i), "http", 7*time.Second))
		}
		for i := range 5 {
			list = append(list, fakeCheck(fmt.Sprintf("load%d", i), "sla", 30*time.Second),
				fakeCheck(fmt.Sprintf("page%d", i), "browser", 30*time.Second))
		}
		before := time.Now()
		s.Set(list)
		fast := phases(s, atStart, "fast")
		if n := instants(fast, before, time.Second, 10*time.Millisecond); n < 60 || n > 101 {
			t.Errorf("RunAtStart=%v: 1,000 checks a second came due at %d instants, want about 100", atStart, n)
		}
		if n := instants(phases(s, atStart, "slow"), before, 30*time.Second, 3*time.Second); n < 6 || n > 11 {
			t.Errorf("RunAtStart=%v: 100 checks every 30 s came due at %d instants, want about 10", atStart, n)
		}
		few := phases(s, atStart, "few")
		instants(few, before, 7*time.Second, time.Nanosecond)
		distinct := map[int64]bool{}
		for _, p := range few {
			distinct[p.UnixNano()] = true
		}
		if len(distinct) != 19 {
			t.Errorf("RunAtStart=%v: 19 checks of one interval came due at %d instants, want each its own (no grid)", atStart, len(distinct))
		}
		// sla and browser checks (and the 30 s checks beside them) are not batched: ten
		// phases of their own, none on the 30 s checks' grid.
		slow := phases(s, atStart, "slow")[0]
		alone := map[int64]bool{}
		for _, p := range append(phases(s, atStart, "load"), phases(s, atStart, "page")...) {
			if p.Sub(slow)%(3*time.Second) == 0 {
				t.Errorf("RunAtStart=%v: an sla or browser check came due on the batched checks' grid, at %s", atStart, p)
			}
			alone[p.UnixNano()] = true
		}
		if len(alone) != 10 {
			t.Errorf("RunAtStart=%v: 10 sla and browser checks came due at %d instants, want each its own", atStart, len(alone))
		}
		shifts = append(shifts, time.Duration(fast[0].UnixNano()%int64(10*time.Millisecond)))
	}
	if shifts[0] == shifts[1] {
		t.Errorf("two schedulers' grids start at the same shift (%s): agents would send at the same instants", shifts[0])
	}
}

// TestSchedulerBatchesFitTheRunSlots: batches are at most half of agent.concurrency, so a
// batch never queues for slots: with 8 slots, 100 checks every 30 s come due four at a
// time (25 instants); with 3 slots, not batched at all (each check its own phase).
func TestSchedulerBatchesFitTheRunSlots(t *testing.T) {
	for _, tc := range []struct {
		slots    int
		min, max int
	}{{8, 18, 25}, {3, 90, 100}} {
		s := NewScheduler(SchedulerOptions{Clock: clock.Real{}, Concurrency: tc.slots, Seed: 3,
			Execute: func(context.Context, *checks.Check, time.Time) {}})
		var list []*checks.Check
		for i := range 100 {
			list = append(list, fakeCheck(fmt.Sprintf("c%d", i), "http", 30*time.Second))
		}
		s.Set(list)
		instants := map[int64]bool{}
		for _, e := range s.entries {
			instants[e.next.UnixNano()] = true
		}
		if n := len(instants); n < tc.min || n > tc.max {
			t.Errorf("%d run slots: 100 checks every 30 s came due at %d instants, want %d-%d", tc.slots, n, tc.min, tc.max)
		}
	}
}

// A reload that shortens a check's interval (1h to 10s) brings its next run within 10 s of
// the reload, then every 10 s: in the ordinary case (its phase up to an hour away), and
// when the reload lands while its run at start is still queued, waiting for a run slot or
// not yet taken by the scheduler at all (the phase after it was an hour's).
func TestSchedulerReloadShorteningEveryComesWithinTheNewInterval(t *testing.T) {
	const every = 10 * time.Second
	for _, tc := range []struct {
		name    string
		atStart bool
		queued  string // "slot": the run at start waits for a run slot; "taken": not yet taken
	}{
		{"ordinary", false, ""},
		{"run at start waiting for its slot", true, "slot"},
		{"run at start not yet taken", true, "taken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := clock.NewFake(epoch)
			log := &startLog{starts: map[string][]time.Time{}, dues: map[string][]time.Time{}}
			s := NewScheduler(SchedulerOptions{Clock: fc, Concurrency: 1, Seed: 11, RunAtStart: tc.atStart,
				Execute: func(_ context.Context, c *checks.Check, due time.Time) { log.add(c.Name, due, fc.Now()) }})
			ctx, cancel := context.WithCancel(context.Background())
			defer func() { cancel(); s.Wait() }()
			settle := func() { fc.BlockUntil(1); time.Sleep(time.Millisecond) }
			// phase is where c's hourly schedule has its next run (after a run at start).
			phase := func() time.Time {
				s.mu.Lock()
				defer s.mu.Unlock()
				if e := s.entries["c"]; !e.then.IsZero() {
					return e.then
				}
				return s.entries["c"].next
			}
			s.Set([]*checks.Check{fakeCheck("c", "http", time.Hour)})
			release := func() {}
			switch tc.queued {
			case "": // the hourly check idles at its phase
				go s.Run(ctx)
				step(fc, 30*time.Second, 250*time.Millisecond, settle)
			case "slot": // a verification round holds the one run slot
				var ok bool
				if release, ok = s.Acquire(ctx, fakeCheck("round", "http", time.Hour)); !ok {
					t.Fatal("no run slot for the round")
				}
				go s.Run(ctx)
				eventually(t, 5*time.Second, "the run at start taken, waiting for its slot", func() bool {
					s.mu.Lock()
					defer s.mu.Unlock()
					return s.entries["c"].then.IsZero() && s.running["c"]
				})
				fc.Advance(2 * time.Second)
			case "taken": // the reload comes before the scheduler took the run at start
				fc.Advance(2 * time.Second)
			}
			if away := phase().Sub(fc.Now()); away <= time.Minute {
				t.Fatalf("the hourly phase is %s away; the test needs one far beyond the new interval (another seed)", away)
			}
			reload, was := fc.Now(), phase()
			s.Set([]*checks.Check{fakeCheck("c", "http", every)})
			if tc.queued == "taken" {
				go s.Run(ctx)
			}
			release()
			step(fc, 3*every, 250*time.Millisecond, settle)
			cancel()
			s.Wait()

			due := log.due("c")
			if tc.atStart && (len(due) == 0 || !due[0].Equal(epoch)) {
				t.Fatalf("due %v: the run at start must still run once", due)
			}
			var after []time.Time
			for _, d := range due {
				if d.After(reload) {
					after = append(after, d)
				}
			}
			if len(after) < 2 || after[0].Sub(reload) > every+time.Millisecond {
				var first any = "none"
				if len(after) > 0 {
					first = after[0].Sub(reload)
				}
				t.Fatalf("after the reload to every=10s, %d runs in 30 s, the first due %v after it (hourly phase was %s away); want within 10s",
					len(after), first, was.Sub(reload))
			}
			for k := 1; k < len(after); k++ {
				if gap := after[k].Sub(after[k-1]); gap != every {
					t.Errorf("runs %d and %d after the reload are %s apart, want 10s", k-1, k, gap)
				}
			}
		})
	}
}
