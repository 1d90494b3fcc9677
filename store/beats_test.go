package store

import (
	"context"
	"path/filepath"
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

// Beats are taken without a break while each heartbeat, of any agent, comes within the
// last one's AliveFor, and no longer once it has run out; a heartbeat after begins it
// again. A check is judged from its first read on. (SQLite, on the caller's clock; the
// agent's tests run it on PostgreSQL's.)
func TestBeatsTaken(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	beat := func(name string, at time.Duration) {
		t.Helper()
		m := &Member{Name: name, Instance: name, Location: "eu", Started: t0, Heartbeat: t0.Add(at), AliveFor: 30 * time.Second}
		if _, err := s.Heartbeat(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	want := func(check string, at, taken time.Duration) {
		t.Helper()
		if got, err := s.BeatsTaken(ctx, check, t0.Add(at)); err != nil || got != taken {
			t.Errorf("%s at t0+%s: taken for %s, %v; want %s", check, at, got, err, taken)
		}
	}
	want("nightly", 0, 0) // no agent yet
	beat("eu-1", 0)
	beat("eu-1", 10*time.Second)
	beat("eu-2", 35*time.Second) // eu-1 stopped at 10s; eu-2 took over within its 30s
	want("nightly", 40*time.Second, 40*time.Second)
	want("weekly", 40*time.Second, 0) // added to the config now
	want("weekly", 50*time.Second, 10*time.Second)
	want("nightly", 66*time.Second, 0) // eu-2's 30s ran out at 65s: no agent takes beats
	beat("eu-1", 2*time.Minute)
	want("nightly", 2*time.Minute+20*time.Second, 20*time.Second)
	want("weekly", 2*time.Minute+20*time.Second, 20*time.Second)
}
