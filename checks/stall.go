package checks

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/vigil-monitor/vigil/browser"
)

// A run that got no answer in time says the service hangs only if vigil was running while it
// waited. An agent short of CPU (a container throttled at its limit, a host under load, a
// process paused by a debugger or a VM snapshot) notices its deadlines late and reads late,
// and its requests time out while the service answered in time. The stall clock measures
// how long the process was held up: a goroutine sleeps stallTick at a time and notes how
// late it woke. A run whose silence is a deadline's, held up for a quarter of its time or
// more (and at least heldUpFloor), is an error vigil cannot pin on the service: not marked
// as no answer (noAnswerError), so it never fails a deploy on its own.
//
// Nothing of it is on a run's path unless the run ended that way: the watch starts with
// the first run and keeps a ring of the wake-ups that came late, read only then.

const (
	stallTick = 200 * time.Millisecond
	// stallNoise is lateness a wake-up may have on a machine that is merely busy.
	stallNoise = 2 * time.Millisecond
	// heldUpFloor is the least hold-up that can explain a timeout.
	heldUpFloor = 500 * time.Millisecond
)

// stall is the process's stall clock.
var stall stallClock

type stallClock struct {
	once  sync.Once
	mu    sync.Mutex
	last  time.Time     // the last wake-up
	total time.Duration // every late wake-up's lateness
	ring  [512]lateWake
	next  int
}

// lateWake is a wake-up that came late by late, at at.
type lateWake struct {
	at   time.Time
	late time.Duration
}

// start starts the watch, once.
func (s *stallClock) start() {
	s.once.Do(func() {
		s.last = time.Now()
		go s.watch()
	})
}

func (s *stallClock) watch() {
	for {
		time.Sleep(stallTick)
		now := time.Now()
		s.mu.Lock()
		if late := now.Sub(s.last) - stallTick; late > stallNoise {
			s.ring[s.next] = lateWake{at: now, late: late}
			s.next = (s.next + 1) % len(s.ring)
			s.total += late
		}
		s.last = now
		s.mu.Unlock()
	}
}

// heldUp is how long the process was held up between from and now: the late wake-ups in
// that span (the part of each within it), and the one overdue now.
func (s *stallClock) heldUp(from, now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var held time.Duration
	within := func(w lateWake) {
		if begin := w.at.Add(-w.late); w.at.After(from) {
			held += w.at.Sub(later(begin, from))
		}
	}
	for _, w := range s.ring {
		if w.late > 0 {
			within(w)
		}
	}
	if s.last.IsZero() {
		return held
	}
	if late := now.Sub(s.last) - stallTick; late > stallNoise {
		within(lateWake{at: now, late: late})
	}
	return held
}

// HeldUp is how long the process was held up in all since its first run, the wake-up
// overdue now included: vigil_held_up_seconds_total.
func HeldUp() time.Duration {
	s := &stall
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last.IsZero() {
		return 0
	}
	held := s.total
	if late := time.Since(s.last) - stallTick; late > stallNoise {
		held += late
	}
	return held
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// silentInTime says whether err is a silence found by a deadline of vigil's: the ones a
// held-up process can cause, unlike a refused or reset connection.
func silentInTime(err error) bool {
	var ne net.Error
	return errors.Is(err, errNoAnswerInTime) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, browser.ErrNoResponse) || errors.As(err, &ne) && ne.Timeout()
}

// heldUpNote says why a run's silence is not the service's when the process was held up
// long enough during it to explain it, or "".
func heldUpNote(err error, start time.Time, elapsed time.Duration) string {
	if !silentInTime(err) {
		return ""
	}
	held := stall.heldUp(start, start.Add(elapsed))
	if held < heldUpFloor || held < elapsed/4 {
		return ""
	}
	return " (vigil itself was held up for " + held.Round(time.Millisecond).String() + " of the run's " +
		elapsed.Round(time.Millisecond).String() + ": short of CPU, or paused; not counted as the service's silence)"
}
