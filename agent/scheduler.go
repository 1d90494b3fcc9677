package agent

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/internal/clock"
)

// Scheduler runs each check every `every`, start to start, from a random initial offset,
// rounded to a grid so that the checks of one interval come due in small batches (see
// phases.go) rather than all at once or each on its own. It owns time: a check never
// sleeps or schedules itself. Runs of one check never overlap (a tick that finds the
// previous run still going is skipped and counted, as are ticks that passed while the
// process was starved; but a run at start still going at the check's phase is that
// tick's run). At most `concurrency` runs are in flight, and at most
// `browserConcurrency` runs that hold a browser page (checks.BrowserSlot).
type Scheduler struct {
	clock   clock.Clock
	execute func(ctx context.Context, c *checks.Check, due time.Time)
	onLag   func(time.Time, time.Duration)
	onSkip  func(check string)
	rand    *rand.Rand
	atStart bool

	conc    *limit
	browser *limit // runs that hold a browser page (checks.BrowserSlot)

	mu      sync.Mutex
	grains  map[time.Duration]time.Duration // each interval's grid (phases.go)
	shift   float64                         // where this scheduler's grid starts: a fraction of a grain
	entries map[string]*entry
	queue   entryHeap
	running map[string]bool
	wake    chan struct{}
	wg      sync.WaitGroup
}

type entry struct {
	check *checks.Check
	every time.Duration
	next  time.Time
	// then, when set, is when the run after next is due: the check's phase, after a first
	// run at once (SchedulerOptions.RunAtStart).
	then time.Time
	// first is set from the run at once until the tick at the check's phase: a run at
	// once still going (or waiting for its slot) at that tick is that tick's run, not a
	// reason to count it skipped. Ten thousand checks all run at start, in a queue that
	// takes seconds; the checks whose phase comes in those seconds would otherwise each
	// count a skip at every start of the agent.
	first bool
	index int
}

// SchedulerOptions configure a Scheduler.
type SchedulerOptions struct {
	Clock              clock.Clock
	Concurrency        int
	BrowserConcurrency int
	// Execute does one run; it is called on its own goroutine with a concurrency slot held.
	Execute func(ctx context.Context, c *checks.Check, due time.Time)
	// OnLag receives each run's due time and start lag; OnSkip each skipped tick. Either
	// may be nil.
	OnLag  func(due time.Time, lag time.Duration)
	OnSkip func(check string)
	// Seed makes initial offsets reproducible in tests; 0 picks a random seed.
	Seed uint64
	// RunAtStart runs a check once as soon as it is scheduled (at start, or when a reload
	// adds it), so every check has a result and probe_success within seconds, then at its
	// random phase.
	RunAtStart bool
}

// NewScheduler builds a scheduler with no checks.
func NewScheduler(o SchedulerOptions) *Scheduler {
	seed := o.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &Scheduler{
		clock: o.Clock, execute: o.Execute, onLag: o.OnLag, onSkip: o.OnSkip,
		rand: r, shift: r.Float64(), atStart: o.RunAtStart,
		conc:    newLimit(o.Concurrency),
		browser: newLimit(o.BrowserConcurrency),
		entries: map[string]*entry{}, running: map[string]bool{}, wake: make(chan struct{}, 1),
	}
}

// Set replaces the scheduled checks. A check that stays keeps its phase (a reload does not
// make every check fire at once), unless its interval shortened and its next run (or the
// phase after a run at start still queued) is further away than the new interval: that
// gets a new phase within it. A new check gets a random offset; a removed one stops.
func (s *Scheduler) Set(list []*checks.Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.grains = gridOf(list, s.conc.limit())
	keep := map[string]bool{}
	for _, c := range list {
		keep[c.Name] = true
		every := c.Config.Every
		if e, ok := s.entries[c.Name]; ok {
			e.check = c
			if e.every != every {
				e.every = every
				if e.next.Sub(now) > every {
					e.next = s.phase(now, c)
				}
				// A run at start not yet taken from the queue: the phase after it, too.
				if e.then.Sub(now) > every {
					e.then = s.phase(now.Add(time.Millisecond), c)
				}
				heap.Fix(&s.queue, e.index)
			}
			continue
		}
		e := &entry{check: c, every: every, next: s.phase(now, c)}
		if s.atStart {
			e.next, e.then = now, s.phase(now.Add(time.Millisecond), c)
		}
		s.entries[c.Name] = e
		heap.Push(&s.queue, e)
	}
	for name, e := range s.entries {
		if !keep[name] {
			heap.Remove(&s.queue, e.index)
			delete(s.entries, name)
		}
	}
	s.poke()
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run schedules until ctx ends. Runs in flight get ctx too: cancelling it cancels them;
// Wait waits for them.
func (s *Scheduler) Run(ctx context.Context) { s.RunUntil(ctx, ctx) }

// RunUntil schedules until stop ends; the runs get runs, so that runs in flight outlive
// the schedule (the agent's shutdown grace) until runs ends. A run still waiting for its
// slot when stop ends does not start.
func (s *Scheduler) RunUntil(stop, runs context.Context) {
	ctx := stop
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
				continue
			}
		}
		e := s.queue[0]
		now := s.clock.Now()
		if wait := e.next.Sub(now); wait > 0 {
			s.mu.Unlock()
			t := s.clock.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-s.wake:
				t.Stop()
			case <-t.C():
			}
			continue
		}
		due := e.next
		// Start to start, no drift: the next run is due one interval after this one was
		// due, not after it started. Ticks missed while the process was starved are skipped.
		e.next = due.Add(e.every)
		first := e.first
		e.first = false
		if !e.then.IsZero() { // the first run, at once: then the check's phase
			e.next, e.then, e.first = e.then, time.Time{}, true
		}
		passed := 0 // ticks after this one that are already over: skipped, and counted
		if !e.next.After(now) {
			missed := now.Sub(due)/e.every + 1
			e.next = due.Add(missed * e.every)
			passed = int(missed - 1)
		}
		heap.Fix(&s.queue, e.index)
		c := e.check
		if s.running[c.Name] {
			s.mu.Unlock()
			if first { // the run at once is this tick's
				s.skip(c.Name, passed)
			} else {
				s.skip(c.Name, passed+1)
			}
			continue
		}
		s.skip(c.Name, passed)
		s.running[c.Name] = true
		s.wg.Add(1)
		s.mu.Unlock()
		if s.scarce(c.Resource()) != nil {
			go s.dispatch(ctx, runs, c, due, nil) // waits for a browser page, then a run slot
			continue
		}
		// A run waiting for a slot waits as a closure in the slot queue, not as a parked
		// goroutine: ten thousand checks due at once at start were ten thousand stacks.
		s.conc.acquireLater(func() { s.dispatch(ctx, runs, c, due, s.conc.release) })
	}
}

// skip counts n skipped ticks of a check.
func (s *Scheduler) skip(check string, n int) {
	for range n {
		if s.onSkip != nil {
			s.onSkip(check)
		}
	}
}

// dispatch does one run of c under runs, unless stop ended first. release gives back
// the slot it was started with; nil: it takes its slots first.
func (s *Scheduler) dispatch(ctx, runs context.Context, c *checks.Check, due time.Time, release func()) {
	defer func() {
		s.mu.Lock()
		delete(s.running, c.Name)
		s.mu.Unlock()
		s.wg.Done()
	}()
	if release == nil {
		var ok bool
		if release, ok = s.Acquire(ctx, c); !ok {
			return
		}
	}
	defer release()
	if ctx.Err() != nil { // stopped while it waited for its slot
		return
	}
	if s.onLag != nil {
		s.onLag(due, s.clock.Now().Sub(due))
	}
	s.execute(runs, c, due)
}

// Acquire takes the slots a run of c needs: a slot of the scarce resource its kind holds
// (a browser page), if any, then a run slot. Runs outside the schedule (deploy verification
// rounds, manual runs) take them too, so agent.concurrency bounds everything vigil sends at
// once. ok is false when ctx ended first; otherwise release gives the slots back.
func (s *Scheduler) Acquire(ctx context.Context, c *checks.Check) (release func(), ok bool) {
	scarce := s.scarce(c.Resource())
	if scarce != nil && scarce.acquire(ctx) != nil {
		return nil, false
	}
	if s.conc.acquire(ctx) != nil {
		if scarce != nil {
			scarce.release()
		}
		return nil, false
	}
	return func() {
		s.conc.release()
		if scarce != nil {
			scarce.release()
		}
	}, true
}

// scarce is the limit on the runs that hold r besides a run slot; nil for none.
func (s *Scheduler) scarce(r checks.Resource) *limit {
	if r == checks.BrowserSlot {
		return s.browser
	}
	return nil
}

// SetLimits changes how many runs, and browser runs, may go at once (a reload). Runs in
// flight are never interrupted.
func (s *Scheduler) SetLimits(concurrency, browserConcurrency int) {
	s.conc.setLimit(concurrency)
	s.browser.setLimit(browserConcurrency)
}

// Wait blocks until every run in flight has returned.
func (s *Scheduler) Wait() { s.wg.Wait() }

// entryHeap orders entries by next due time.
type entryHeap []*entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
