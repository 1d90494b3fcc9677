package memlimit

// The collector's pace. Go collects when the heap has grown past what was live by GOGC
// percent (100: twice what is live). An agent's heap is mostly long-lived (every check's
// rings, gauges and compiled request), so at 10,000 checks Go's default let some 35 MiB of
// garbage build up beside 35 MiB of checks, and an idle agent kept megabytes of headroom
// it fills once a minute. But a small heap allocated into fast (1,000 checks a second on a
// few MiB) is collected several times a second, and halving its headroom doubles the
// collector's CPU. The pace here takes the lowest percentage, down to MinGCPercent, at
// which the heap is collected about once a second at most, and Go's default where even
// that would collect more often. It follows the rate the heap has held for a few seconds
// (SustainFor), not one second's: a burst (a /metrics scrape of 10,000 checks allocates
// some 30 MB at once) would otherwise raise the percentage, and with it the heap the
// agent keeps long after the burst.

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"time"
)

const (
	// MinGCPercent is the lowest percentage the pace sets.
	MinGCPercent = 50
	// MaxGCPercent is Go's default, the highest the pace sets.
	MaxGCPercent = 100
	// SustainFor is how many readings in a row a rate must hold (the lowest of them is
	// what the pace goes by): a percentage goes down at once, and up only when the heap
	// has been allocated into that fast for this many readings.
	SustainFor = 5
)

// GCPercent is the percentage for a live heap of live bytes allocated into at rate bytes a
// second: the growth past the live heap that takes a second to fill, as a percentage of
// it, between MinGCPercent and MaxGCPercent. Nothing live (no collection yet) is Go's
// default.
func GCPercent(live, rate uint64) int {
	if live == 0 {
		return MaxGCPercent
	}
	p := (rate*100 + live - 1) / live // rounded up
	return int(min(max(p, MinGCPercent), MaxGCPercent))
}

// ReadHeap reads the bytes the last collection found live and the bytes allocated since
// the process started.
func ReadHeap() (live, allocated uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		live = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		allocated = s[1].Value.Uint64()
	}
	return live, allocated
}

// Pace turns readings of the heap into the collector's percentage: GCPercent of the live
// heap and the lowest rate of the last SustainFor readings (before there are that many,
// the missing ones count as nothing allocated).
type Pace struct {
	rates [SustainFor]uint64
	n     int
}

// Percent takes one reading's live heap and rate and returns the percentage and the
// sustained rate it went by.
func (p *Pace) Percent(live, rate uint64) (percent int, sustained uint64) {
	p.rates[p.n%SustainFor] = rate
	p.n++
	sustained = 0
	if p.n >= SustainFor {
		sustained = slices.Min(p.rates[:])
	}
	return GCPercent(live, sustained), sustained
}

// PaceGC sets the collector's percentage every interval until ctx ends, from the live
// heap and the allocation rate since the last reading (a Pace), reading them with read and
// setting it with set (nil: debug.SetGCPercent). The first setting waits for a second
// reading (a rate) and a collection (a live heap). changed is called with the first
// setting and each new one, and the sustained rate it went by.
func PaceGC(ctx context.Context, every time.Duration, read func() (live, allocated uint64), set func(int), changed func(percent int, live, rate uint64)) {
	if set == nil {
		set = func(p int) { debug.SetGCPercent(p) }
	}
	var pace Pace
	current := 0
	_, prev := read()
	prevAt := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		secs := now.Sub(prevAt).Seconds()
		if secs < every.Seconds()/2 {
			continue // a tick missed and delivered at once: too short to measure a rate over
		}
		live, allocated := read()
		if live == 0 || allocated < prev {
			prev, prevAt = allocated, now
			continue
		}
		rate := uint64(float64(allocated-prev) / secs)
		prev, prevAt = allocated, now
		if p, sustained := pace.Percent(live, rate); p != current {
			current = p
			set(p)
			if changed != nil {
				changed(p, live, sustained)
			}
		}
	}
}
