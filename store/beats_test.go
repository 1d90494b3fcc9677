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

// A check's beats are taken without a break while each heartbeat of an agent whose config
// has the check, any agent, comes within the last one's AliveFor, and no longer once it
// has run out, the agent stopped cleanly, or a reload took the check out of its config;
// a heartbeat after begins it again. The last time that lasted a window is kept after a
// break. A check taken out of every agent's config is forgotten: put back, it is judged
// from then. (SQLite, on the caller's clock; the agent's tests run it on PostgreSQL's.)
func TestBeatsTaken(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	beat := func(name string, at time.Duration, checks ...string) {
		t.Helper()
		m := &Member{Name: name, Instance: name, Location: "eu", Started: t0, Heartbeat: t0.Add(at), AliveFor: 30 * time.Second,
			BeatChecks: map[string]time.Duration{}}
		for _, c := range checks {
			m.BeatChecks[c] = time.Minute
		}
		if _, err := s.Heartbeat(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	stop := func(name string, at time.Duration) {
		t.Helper()
		if err := s.StopMember(ctx, name, name, t0.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	rel := func(at time.Time) string { return at.Sub(t0).String() }
	want := func(check string, at time.Duration, taking string) {
		t.Helper()
		tk, err := s.BeatsTaken(ctx, check, t0.Add(at))
		got := "none"
		if !tk.Since.IsZero() {
			got = "since " + rel(tk.Since)
		}
		for _, b := range tk.Before {
			got += ", before " + rel(b.From) + "-" + rel(b.Until)
		}
		if err != nil || got != taking {
			t.Errorf("%s at t0+%s: %s, %v; want %s", check, at, got, err, taking)
		}
	}
	want("nightly", 0, "none") // no agent yet
	beat("eu-1", 0, "nightly")
	beat("eu-1", 10*time.Second, "nightly")
	beat("eu-2", 35*time.Second, "nightly", "weekly") // eu-1 died at 10s; eu-2 took over within its 30s
	want("nightly", 40*time.Second, "since 0s")
	want("weekly", 40*time.Second, "since 35s")             // added to the config then
	want("nightly", 66*time.Second, "none, before 0s-1m5s") // eu-2's 30s ran out at 65s: no agent takes beats

	beat("eu-1", 2*time.Minute, "nightly", "weekly")
	beat("eu-2", 2*time.Minute+5*time.Second, "nightly", "weekly")
	want("nightly", 2*time.Minute+10*time.Second, "since 2m0s, before 0s-1m5s")
	want("weekly", 2*time.Minute+10*time.Second, "since 2m0s") // its first time lasted 30s, less than its window
	beat("eu-2", 2*time.Minute+15*time.Second, "nightly")      // a reload took weekly out of eu-2's config: eu-1 still has it
	want("weekly", 2*time.Minute+16*time.Second, "since 2m0s")
	stop("eu-2", 2*time.Minute+20*time.Second) // eu-1 still takes beats
	want("nightly", 2*time.Minute+21*time.Second, "since 2m0s, before 0s-1m5s")
	stop("eu-1", 2*time.Minute+25*time.Second) // the last agent stops: no beat is taken from now on
	want("nightly", 2*time.Minute+26*time.Second, "none, before 2m0s-2m25s, before 0s-1m5s")
	want("weekly", 2*time.Minute+26*time.Second, "none, before 2m0s-2m25s")

	beat("eu-1", 2*time.Minute+28*time.Second, "nightly") // restarted 3s later, weekly out of its config
	want("nightly", 2*time.Minute+28*time.Second, "since 2m28s, before 0s-1m5s")
	want("weekly", 2*time.Minute+28*time.Second, "none") // in no agent's config: forgotten
	beat("eu-1", 10*time.Minute, "nightly", "weekly")    // put back much later
	want("weekly", 10*time.Minute+10*time.Second, "since 10m0s")
	want("nightly", 10*time.Minute+10*time.Second, "since 10m0s, before 0s-1m5s")
}
