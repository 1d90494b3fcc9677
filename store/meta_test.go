package store

import (
	"testing"
	"time"
)

// MeasuredSince: a key seen first is the zero time (the runs stored are the check's as it
// is, so an upgrade keeps every baseline); the same fingerprint writes nothing, whichever
// agent sharing the store says it and whenever; a new one is recorded with its time; going
// back to an earlier one is a change too.
func TestMeasuredSince(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d driver) {
		ctx := t.Context()
		s := d.openAt(t, d.where(t))
		step := func(fp string, now, want time.Time) {
			t.Helper()
			got, err := s.MeasuredSince(ctx, "request/eu/home", fp, now)
			if err != nil || !got.Equal(want) {
				t.Errorf("MeasuredSince(%s, %v) = %v, %v; want %v", fp, now, got, err, want)
			}
		}
		step("aaaa", t0, time.Time{})
		step("aaaa", t0.Add(time.Minute), time.Time{})
		step("bbbb", t0.Add(2*time.Minute), t0.Add(2*time.Minute))
		step("bbbb", t0.Add(3*time.Minute), t0.Add(2*time.Minute)) // a second agent, same config
		step("aaaa", t0.Add(4*time.Minute), t0.Add(4*time.Minute))
		if got, err := s.MeasuredSince(ctx, "request/us/home", "bbbb", t0.Add(5*time.Minute)); err != nil || !got.IsZero() {
			t.Errorf("another location's key: %v, %v; want the zero time", got, err)
		}
		if _, err := s.MeasuredSince(ctx, "request/eu/home", "", t0); err == nil {
			t.Error("an empty fingerprint was taken")
		}
	})
}
