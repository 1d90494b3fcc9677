package agent

// Where checks' runs fall within their interval. Each run that wakes a sleeping agent on
// its own pays for the wake-up (an OS thread's futex and scheduler work, the transport's
// goroutines handing the request and the answer on): at 100 checks every 30 s that was
// three times the CPU of the run itself. So a check's random phase is rounded up to a grid
// on which the checks of its interval come due about `batch` at a time: they start on one
// wake-up and their answers come back together. No run starts early or is held back for
// it; only where the phases fall changes, and every check still runs every `every`, start
// to start (docs/PERFORMANCE.md has the figures).

import (
	"time"

	"github.com/vigil-monitor/vigil/checks"
)

const (
	// batch is about how many checks of one interval come due at each instant of their
	// grid: a handful, started within a few milliseconds of each other, so the start lag
	// stays a few milliseconds. Never more than half of agent.concurrency (32 by default):
	// with few run slots, a batch would queue for them.
	batch = 10
	// minGrain is the finest grid: at 1,000 checks a second, ten due every 10 ms.
	minGrain = 10 * time.Millisecond
)

// gridOf returns each interval's grain for the checks that may be batched
// (checks.Check.Batched): the interval divided into as many instants as give about `batch`
// checks each, never finer than minGrain; batches are smaller with fewer than 20 run
// slots, and there are none with fewer than 4. An interval with fewer than two batches'
// worth of checks gets no grid: the wake-ups saved are few, and a small service's checks
// all at once would be a burst where a rate limit might see one. The others keep a phase
// of their own, off the grid: ten browser runs due at once on two pages would wait their
// turn for seconds, and sla runs side by side would measure each other's load.
func gridOf(list []*checks.Check, concurrency int) map[time.Duration]time.Duration {
	size := min(batch, concurrency/2)
	if size < 2 {
		return nil // one run at a time (or two): every check keeps a phase of its own
	}
	n := map[time.Duration]int{}
	for _, c := range list {
		if c.Batched() {
			n[c.Config.Every]++
		}
	}
	out := make(map[time.Duration]time.Duration, len(n))
	for every, count := range n {
		if count < 2*size {
			continue // too few to matter: spread, not one burst of them all at the service
		}
		out[every] = max(minGrain, every/time.Duration(count/size))
	}
	return out
}

// phase returns c's first due time: a random point within one interval from now; when c
// may be batched, a random instant of its interval's grid within one interval from now.
// Each scheduler's grid starts at its own random shift, so that agents in several
// locations do not all send their checks at the same instants.
func (s *Scheduler) phase(now time.Time, c *checks.Check) time.Time {
	every := c.Config.Every
	grain := s.grains[every]
	if grain <= 0 || !c.Batched() {
		return now.Add(time.Duration(s.rand.Int64N(int64(every))))
	}
	// The first instant of the grid at or after now, then one of the interval's instants.
	off := int64(s.shift * float64(grain))
	r := (now.UnixNano() - off) % int64(grain)
	if r < 0 {
		r += int64(grain)
	}
	t := now // Add keeps the monotonic clock reading; Truncate would drop it
	if r != 0 {
		t = t.Add(grain - time.Duration(r))
	}
	return t.Add(time.Duration(s.rand.Int64N(int64(max(1, every/grain)))) * grain)
}
