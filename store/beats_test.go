package store

import (
	"context"
	"testing"
	"time"
)

// Beats are kept per check, the newest BeatsKept of each, read back oldest first from a
// time on with the last one ever; retention takes all but each check's last.
func TestBeats(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		s := drv.fresh(t)
		if recent, last, err := s.Beats(ctx, "nightly", time.Time{}); err != nil || recent != nil || last != nil {
			t.Fatalf("no beats: %v %v %v", recent, last, err)
		}
		const posted = BeatsKept + 44
		for i := range posted {
			b := &Beat{At: t0.Add(time.Duration(i) * time.Second), Version: "v1", Status: "ok", Agent: "eu-1"}
			if i == posted-1 {
				b.Status, b.Message, b.Agent = "fail", "disk full", "eu-2"
			}
			if err := s.SaveBeat(ctx, "nightly", b); err != nil {
				t.Fatal(err)
			}
		}
		_ = s.SaveBeat(ctx, "other", &Beat{At: t0, Status: "ok"})
		recent, last, err := s.Beats(ctx, "nightly", t0.Add((posted-10)*time.Second))
		if err != nil || len(recent) != 10 || !recent[0].At.Equal(t0.Add((posted-10)*time.Second)) || recent[9] != last {
			t.Fatalf("the last ten: %d beats, first %v, last %+v, %v", len(recent), recent[0].At, last, err)
		}
		if last.Status != "fail" || last.Message != "disk full" || last.Agent != "eu-2" || last.Version != "v1" {
			t.Errorf("last beat %+v", last)
		}
		all, _, _ := s.Beats(ctx, "nightly", time.Time{})
		if len(all) != BeatsKept || !all[0].At.Equal(t0.Add(44*time.Second)) {
			t.Errorf("kept %d beats from %v; want the newest %d, from the 45th", len(all), all[0].At, BeatsKept)
		}
		if _, err := s.Purge(ctx, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		for check, at := range map[string]time.Time{"nightly": last.At, "other": t0} {
			recent, l, err := s.Beats(ctx, check, time.Time{})
			if err != nil || len(recent) != 1 || l == nil || !l.At.Equal(at) {
				t.Errorf("%s after retention: %d beats, last %+v, %v; want its last only", check, len(recent), l, err)
			}
		}
	})
}
