package memlimit

// The collector's pace. Go collects when the heap has grown past what was live by GOGC
// percent (100: twice what is live). An agent's heap is mostly long-lived (every check's
// rings, gauges and compiled request), so at 10,000 checks Go's default let some 35 MiB of
// garbage build up beside 35 MiB of checks; at 1,000 checks the heap is a few MiB and a
// lower GOGC only makes the collector run more often for nothing. The pace here keeps
// Go's default while the live heap is small and lets the growth be at most Headroom once
// it is not, never below MinGCPercent.

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

const (
	// Headroom is the growth past the live heap allowed before the percentage drops
	// below Go's default.
	Headroom = 16 << 20
	// MinGCPercent is the lowest percentage the pace sets.
	MinGCPercent = 50
	// MaxGCPercent is Go's default, the highest the pace sets.
	MaxGCPercent = 100
)

// GCPercent is the percentage for a live heap of live bytes: Go's default while Headroom
// is at most that share of it, then the share Headroom is, down to MinGCPercent.
func GCPercent(live uint64) int {
	if live <= Headroom {
		return MaxGCPercent
	}
	return max(MinGCPercent, int(uint64(Headroom)*100/live))
}

// LiveHeap reads the bytes the last collection found live.
func LiveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// PaceGC sets the collector's percentage from the live heap (GCPercent) at once and every
// interval until ctx ends, reading it with live and setting it with set (nil:
// debug.SetGCPercent); a reading of 0 (no collection yet) sets nothing. changed is called
// with each new percentage.
func PaceGC(ctx context.Context, every time.Duration, live func() uint64, set func(int), changed func(percent int, live uint64)) {
	if set == nil {
		set = func(p int) { debug.SetGCPercent(p) }
	}
	current := 0
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		// Before the first collection the live heap reads 0: nothing to go by yet.
		if l := live(); l > 0 && GCPercent(l) != current {
			current = GCPercent(l)
			set(current)
			if changed != nil {
				changed(current, l)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
