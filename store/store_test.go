package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func open(t *testing.T, path string) *SQLite {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func TestRunsSurviveReopen(t *testing.T) {
	forEachDriver(t, testRunsSurviveReopen)
}

func testRunsSurviveReopen(t *testing.T, d driver) {
	ctx := context.Background()
	path := d.where(t)
	if d.name == "sqlite" {
		path = filepath.Join(t.TempDir(), "sub", "vigil.db") // the folder is made
	}
	s := d.openAt(t, path)
	runs := []*RunRecord{
		{Check: "home", Kind: "browser", Started: t0, Duration: time.Second, Outcome: "fail", Attempts: 1, DeployID: "d1",
			Reasons: []string{"js_errors == 0 is false"}, Vars: map[string]any{"js_errors": 1, "title": "x"}, Location: "eu",
			Transcript: []string{"> GET /"}, Artifacts: []*Artifact{{Name: "screenshot.png", ContentType: "image/png", Data: []byte{0x89, 'P', 'N', 'G'}}}},
		{Check: "home", Kind: "browser", Started: t0.Add(time.Minute), Duration: time.Second, Outcome: "pass", Attempts: 2, Location: "eu"},
		{Check: "api", Kind: "http", Started: t0.Add(2 * time.Minute), Outcome: "pass", Attempts: 1, Location: "eu"},
		{Check: "home", Kind: "browser", Started: t0.Add(30 * time.Second), Duration: time.Second, Outcome: "pass", Attempts: 1, Location: "us"},
	}
	if err := s.SaveRuns(ctx, runs); err != nil {
		t.Fatal(err)
	}
	if runs[0].ID == 0 || runs[1].ID == runs[0].ID {
		t.Fatalf("ids not set: %d %d", runs[0].ID, runs[1].ID)
	}
	s.Close()

	s = d.openAt(t, path) // a second open runs no migration twice
	got, err := s.RunByID(ctx, runs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Outcome != "fail" || got.DeployID != "d1" || got.Vars["js_errors"].(float64) != 1 || len(got.Artifacts) != 1 || got.Artifacts[0].Data != nil {
		t.Errorf("run: %+v", got)
	}
	a, err := s.ArtifactData(ctx, runs[0].ID, "screenshot.png")
	if err != nil || string(a.Data) != "\x89PNG" || a.ContentType != "image/png" {
		t.Errorf("artifact: %v %v", a, err)
	}
	if _, err := s.ArtifactData(ctx, runs[0].ID, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing artifact: %v", err)
	}
	recent, _ := s.RecentRuns(ctx, "home", t0.Add(90*time.Second), 10)
	if len(recent) != 3 || recent[0].Outcome != "pass" || recent[0].Location != "eu" {
		t.Errorf("recent newest first: %d", len(recent))
	}
	// A baseline is made in one location: latencies differ from one to another.
	if base, _ := s.BaselineRuns(ctx, "home", "us", time.Time{}, t0.Add(90*time.Second), 10); len(base) != 1 || base[0].ID != runs[3].ID {
		t.Errorf("baseline runs in us: %+v", base)
	}
	// Since the check last changed what it measures: the runs before are of another request.
	if base, _ := s.BaselineRuns(ctx, "home", "eu", t0.Add(time.Minute), t0.Add(90*time.Second), 10); len(base) != 1 || base[0].ID != runs[1].ID {
		t.Errorf("baseline runs in eu since t0+1m: %+v", base)
	}
	latest, _ := s.LatestRuns(ctx, "eu")
	if len(latest) != 2 {
		t.Errorf("latest per check in eu: %d", len(latest))
	}
	hist, _ := s.History(ctx, "home", t0, 10)
	if len(hist) != 3 || !hist[0].Started.Equal(t0) {
		t.Errorf("history oldest first: %+v", hist)
	}
	n, _ := s.Purge(ctx, t0.Add(90*time.Second))
	if n != 3 {
		t.Errorf("purged %d", n)
	}
	if _, err := s.ArtifactData(ctx, runs[0].ID, "screenshot.png"); !errors.Is(err, ErrNotFound) {
		t.Error("artifacts must go with their run")
	}
}

func TestDeployVerdictOnceWithOutbox(t *testing.T) {
	forEachDriver(t, testDeployVerdictOnceWithOutbox)
}

// decideAs is a decider that decides status at once.
func decideAs(status, reason string, outbox ...*OutboxEntry) DeployDecider {
	return func(d *Deploy, _ []*LocationReport) *Decision {
		return &Decision{DeployID: d.ID, Status: status, Reason: reason, At: t0, Outbox: outbox}
	}
}

func testDeployVerdictOnceWithOutbox(t *testing.T, drv driver) {
	ctx := context.Background()
	path := drv.where(t)
	s := drv.openAt(t, path)
	d1 := &Deploy{ID: "d1", Service: "web", Version: "v1", CreatedAt: t0, Status: StatusVerifying,
		Baseline: map[string]map[string]any{"home": {"duration_ms": 12.5}}, Location: "eu", Locations: []string{"eu", "us"}}
	if sup, err := s.CreateDeploy(ctx, d1, nil); err != nil || len(sup) != 0 {
		t.Fatal(sup, err)
	}
	d2 := &Deploy{ID: "d2", Service: "web", Version: "v2", CreatedAt: t0.Add(time.Minute), Status: StatusVerifying, RollbackOf: "d0"}
	sup, err := s.CreateDeploy(ctx, d2, nil)
	if err != nil || len(sup) != 1 || sup[0] != "d1" {
		t.Fatalf("supersede: %v %v", sup, err)
	}
	if got, _ := s.Deploy(ctx, "d2"); got.RollbackOf != "d0" {
		t.Errorf("d2 rolled back %q; want d0 as registered", got.RollbackOf)
	}
	got, _ := s.Deploy(ctx, "d1")
	if got.Status != StatusSuperseded || got.SupersededBy != "d2" || got.Baseline["home"]["duration_ms"] != 12.5 ||
		got.Reason != "superseded by deploy d2" || got.Location != "eu" || strings.Join(got.Locations, ",") != "eu,us" {
		t.Errorf("d1: %+v", got)
	}
	// A superseded deploy cannot be decided.
	if _, ok, _ := s.ReportLocation(ctx, "d1", nil, decideAs(StatusFailed, "")); ok {
		t.Error("decided a superseded deploy")
	}
	entry := func() *OutboxEntry {
		return &OutboxEntry{Notifier: "rollback", Event: "deploy_failed", Key: "d2:deploy_failed", Incident: "d2", Payload: []byte(`{}`), CreatedAt: t0}
	}
	dep, ok, err := s.ReportLocation(ctx, "d2", nil, decideAs(StatusFailed, "home failed", entry()))
	if !ok || err != nil || dep.Status != StatusFailed {
		t.Fatal(dep, ok, err)
	}
	if _, ok, _ := s.ReportLocation(ctx, "d2", nil, decideAs(StatusPassed, "", entry())); ok {
		t.Error("decided twice")
	}
	if err := s.Enqueue(ctx, []*OutboxEntry{entry()}); err != nil { // same notifier and key: ignored
		t.Fatal(err)
	}
	if _, _, err := s.ReportLocation(ctx, "nope", nil, decideAs(StatusFailed, "")); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown deploy: %v", err)
	}
	s.Close()
	s = drv.openAt(t, path)
	// Every entry with the key, whatever its status: a claim alone would hide a second
	// pending entry of the same notifier and incident behind the first.
	all, err := s.OutboxByKey(ctx, "d2:deploy_failed")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Notifier != "rollback" || all[0].Status != OutboxPending {
		t.Fatalf("%d entries for d2:deploy_failed after three writes of it (the verdict, a second verdict, an Enqueue); want 1: %s", len(all), describe(all))
	}
	before := time.Now()
	due, _ := s.ClaimOutbox(ctx, "a1", t0, time.Minute, 10, nil)
	if len(due) != 1 || due[0].ID != all[0].ID || due[0].ClaimedBy != "a1" {
		t.Fatalf("due: %s", describe(due))
	}
	leased := due[0].LeaseUntil.Equal(t0.Add(time.Minute))
	if drv.name == "postgres" { // by the database's clock, whatever the claimer's says
		leased = !due[0].LeaseUntil.Before(before.Add(time.Minute)) && !due[0].LeaseUntil.After(time.Now().Add(time.Minute))
	}
	if !leased {
		t.Fatalf("leased until %v", due[0].LeaseUntil)
	}
	d, _ := s.Deploy(ctx, "d2")
	if d.Status != StatusFailed || d.Reason != "home failed" {
		t.Errorf("verdict lost: %+v", d)
	}
	// Retried in 2 s: from the caller's now on SQLite; from the database's clock on
	// PostgreSQL, which the test waits out.
	const wait = 2 * time.Second
	if err := s.RecordAttempt(ctx, OutboxAttempt{ID: due[0].ID, Agent: "a1", Status: OutboxPending, Attempts: 1, Wait: wait, LastError: "500", At: t0}); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.ClaimOutbox(ctx, "a1", t0.Add(wait/2), time.Minute, 10, nil); len(due) != 0 {
		t.Error("not due yet")
	}
	if next, _ := s.NextDue(ctx, t0, nil); !next.Equal(t0.Add(wait)) && (drv.name != "postgres" || !next.After(t0) || next.After(t0.Add(wait))) {
		t.Errorf("next due %v; want %v", next, t0.Add(wait))
	}
	if drv.name == "postgres" {
		time.Sleep(wait)
	}
	due, _ = s.ClaimOutbox(ctx, "a1", t0.Add(wait), time.Minute, 10, nil)
	if len(due) != 1 {
		t.Fatalf("due again: %s", describe(due))
	}
	_ = s.RecordAttempt(ctx, OutboxAttempt{ID: due[0].ID, Agent: "a1", Status: OutboxDead, Attempts: 8, LastError: "gave up", At: t0})
	dead, _ := s.Outbox(ctx, OutboxDead, 10)
	counts, _ := s.OutboxCounts(ctx)
	if len(dead) != 1 || counts[OutboxDead] != 1 || dead[0].ClaimedBy != "" {
		t.Errorf("dead letters: %v %v", dead, counts)
	}
	if err := s.Retry(ctx, dead[0].ID, t0); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.ClaimOutbox(ctx, "a2", t0, time.Minute, 10, nil); len(due) != 1 {
		t.Error("retried entry not due")
	}
}

// Each location reports once; the verdict is decided once, by whichever reporter finds it
// decidable, from every report written before it, however many agents report at once.
func TestLocationReportsDecideOnce(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		s := drv.fresh(t)
		locations := []string{"a", "b", "c", "d", "e", "f"}
		const deploys = 20
		for i := range deploys {
			d := &Deploy{ID: fmt.Sprintf("d%d", i), Service: fmt.Sprintf("s%d", i), Version: "v", CreatedAt: t0, Status: StatusVerifying, Locations: locations}
			if _, err := s.CreateDeploy(ctx, d, nil); err != nil {
				t.Fatal(err)
			}
		}
		// The decider fails the deploy once three locations failed: every location reports
		// failed at once, from its own goroutine, as agents in six locations would.
		var seen sync.Map // deploy -> the reports its decision saw
		decide := func(d *Deploy, reports []*LocationReport) *Decision {
			if len(reports) < 3 {
				return nil
			}
			seen.Store(d.ID, len(reports))
			return &Decision{DeployID: d.ID, Status: StatusFailed, Reason: fmt.Sprintf("%d locations", len(reports)), At: t0,
				Outbox: []*OutboxEntry{{Notifier: "rollback", Event: "deploy_failed", Key: d.ID + ":deploy_failed", Incident: d.ID, Payload: []byte("{}"), CreatedAt: t0}}}
		}
		var wg sync.WaitGroup
		var decisions atomic.Int64
		errs := make(chan error, deploys*len(locations)*2)
		for i := range deploys {
			for _, loc := range locations {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 2 { // a location that reports twice (a retry after a lost answer) counts once
						r := &LocationReport{Location: loc, Agent: "agent-" + loc, Status: StatusFailed, Reason: "home failed", Evidence: []byte(`[]`), At: t0}
						_, ok, err := s.ReportLocation(ctx, fmt.Sprintf("d%d", i), r, decide)
						if err != nil {
							errs <- err
						}
						if ok {
							decisions.Add(1)
						}
					}
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := decisions.Load(); n != deploys {
			t.Fatalf("%d decisions for %d deploys, each reported by %d locations twice; want one each", n, deploys, len(locations))
		}
		for i := range deploys {
			id := fmt.Sprintf("d%d", i)
			d, _ := s.Deploy(ctx, id)
			reports, _ := s.LocationReports(ctx, id)
			entries, _ := s.OutboxByKey(ctx, id+":deploy_failed")
			saw, _ := seen.Load(id)
			if d.Status != StatusFailed || len(reports) != len(locations) || len(entries) != 1 || saw != 3 {
				t.Errorf("%s: %s with %d reports, %d rollbacks, decided on %v reports; want failed, 6, 1, 3", id, d.Status, len(reports), len(entries), saw)
			}
		}
		t.Logf("%s: %d deploys, %d locations reporting each twice at once: %d decisions, one rollback each", drv.name, deploys, len(locations), decisions.Load())
	})
}

// Several agents of one location each report on a deploy (migration 8 keys the reports by
// agent): the reports written before the migration are kept, a second agent of a location
// reports beside the first, and an agent's second report is ignored.
func TestLocationReportsByAgent(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		path := drv.where(t)
		s := drv.openAt(t, path)
		d := &Deploy{ID: "d1", Service: "web", Version: "v2", CreatedAt: t0, Status: StatusVerifying, Locations: []string{"eu"}}
		if _, err := s.CreateDeploy(ctx, d, nil); err != nil {
			t.Fatal(err)
		}
		// the table as migration 5 made it, with a report written then
		old := `DROP TABLE deploy_locations;
		CREATE TABLE deploy_locations (
			deploy_id TEXT NOT NULL REFERENCES deploys(id) ON DELETE CASCADE,
			location TEXT NOT NULL, agent TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
			halt TEXT NOT NULL DEFAULT '', evidence BLOB NOT NULL, reported_at INTEGER NOT NULL,
			PRIMARY KEY (deploy_id, location));
		INSERT INTO deploy_locations VALUES ('d1', 'eu', 'eu-1', 'passed', 'all 3 rounds passed', '', '', 1);
		DROP TABLE boards;
		DROP TABLE board_parts;
		DROP INDEX deploys_request_key;
		ALTER TABLE deploys DROP COLUMN request_key;
		ALTER TABLE deploys DROP COLUMN rollback_of;
		ALTER TABLE check_locations DROP COLUMN recent;
		ALTER TABLE incidents DROP COLUMN muted;
		ALTER TABLE outbox DROP COLUMN queued_at;
		DROP TABLE beat_service;
		DROP TABLE beat_checks;
		DROP TABLE beat_takers;
		DROP INDEX outbox_created;
		DROP INDEX outbox_listed;
		DROP INDEX outbox_heard;
		DELETE FROM schema_version WHERE version >= 8;`
		tally := `DROP TRIGGER outbox_tally_insert; DROP TRIGGER outbox_tally_update; DROP TRIGGER outbox_tally_delete;
		DROP TABLE outbox_tally;`
		if drv.name == "postgres" {
			old = postgresSQL(old)
			tally = `DROP TRIGGER outbox_tally_insert ON outbox; DROP TRIGGER outbox_tally_update ON outbox;
			DROP TRIGGER outbox_tally_delete ON outbox; DROP FUNCTION outbox_tally_insert; DROP FUNCTION outbox_tally_update;
			DROP FUNCTION outbox_tally_delete; DROP TABLE outbox_tally;`
		}
		old = tally + old
		if _, err := s.self().db.ExecContext(ctx, old); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = drv.openAt(t, path) // migrations 8 and on again
		report := func(agent, status string) {
			t.Helper()
			r := &LocationReport{Location: "eu", Agent: agent, Status: status, Reason: agent + " " + status, Evidence: []byte(`[]`), At: t0.Add(time.Second)}
			if _, _, err := s.ReportLocation(ctx, "d1", r, nil); err != nil {
				t.Fatal(err)
			}
		}
		report("eu-2", StatusFailed)
		report("eu-1", StatusFailed) // eu-1 reported before: ignored
		reports, err := s.LocationReports(ctx, "d1")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range reports {
			got = append(got, r.Agent+" "+r.Status+": "+r.Reason)
		}
		if want := []string{"eu-1 passed: all 3 rounds passed", "eu-2 failed: eu-2 failed"}; !slices.Equal(got, want) {
			t.Errorf("reports %q; want %q", got, want)
		}
	})
}

func TestAlertStateIncidentsSilences(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		s := drv.fresh(t)
		if st, err := s.AlertState(ctx, "ops", "d1"); err != nil || len(st) != 0 {
			t.Fatal(st, err)
		}
		_ = s.SaveAlertState(ctx, "ops", "d1", map[string]string{"ts": "123.456"}, t0)
		_ = s.SaveAlertState(ctx, "ops", "d1", map[string]string{"ts": "123.456", "uploaded": "1"}, t0)
		st, _ := s.AlertState(ctx, "ops", "d1")
		if st["ts"] != "123.456" || st["uploaded"] != "1" {
			t.Errorf("state: %v", st)
		}
		_ = s.AddSilence(ctx, &Silence{ID: "s1", Service: "web", Starts: t0, Ends: t0.Add(time.Hour), Reason: "migration", CreatedAt: t0})
		if sl, _ := s.Silences(ctx, t0.Add(30*time.Minute)); len(sl) != 1 || sl[0].Reason != "migration" {
			t.Errorf("silences: %v", sl)
		}
		if sl, _ := s.Silences(ctx, t0.Add(2*time.Hour)); len(sl) != 0 {
			t.Error("an ended silence is still active")
		}
		if err := s.DeleteSilence(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSilence(ctx, "s1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete: %v", err)
		}
		if err := s.Writable(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// A check's incident is decided from every location's state of it, holding the incident:
// locations that turn failing at once open it once.
func TestIncidentFromLocations(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		s := drv.fresh(t)
		// Open when two locations fail; close when fewer do.
		decide := func(cur *Incident, locs []*CheckLocation) (*Incident, []*OutboxEntry) {
			failing := 0
			for _, l := range locs {
				if l.Failing {
					failing++
				}
			}
			switch {
			case !cur.Open && failing >= 2:
				next := *cur
				next.Open, next.Seq, next.OpenedAt, next.Summary = true, cur.Seq+1, t0, fmt.Sprintf("failing in %d of %d locations", failing, len(locs))
				next.Muted = "silence s1 (failover)"
				key := fmt.Sprintf("check:home:%d:check_failed", next.Seq)
				return &next, []*OutboxEntry{{Notifier: "ops", Event: "check_failed", Key: key, Incident: key, Payload: []byte("{}"), CreatedAt: t0}}
			case cur.Open && failing < 2:
				next := *cur
				next.Open, next.Muted = false, ""
				return &next, nil
			}
			return nil, nil
		}
		var wg sync.WaitGroup
		for _, loc := range []string{"a", "b", "c", "d"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl := &CheckLocation{Check: "home", Location: loc, Failing: true, Since: t0, Summary: "down", UpdatedAt: t0}
				if _, err := s.UpdateIncident(ctx, IncidentUpdate{Subject: "home", Location: cl}, decide); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		ins, _ := s.Incidents(ctx)
		entries, _ := s.OutboxByKey(ctx, "check:home:1:check_failed")
		if in := ins["home"]; in == nil || !in.Open || in.Seq != 1 || len(entries) != 1 || in.Summary != "failing in 2 of 2 locations" || in.Muted != "silence s1 (failover)" {
			t.Fatalf("after four locations failed at once: %+v, %d notifications; want one incident, opened once, at the second", in, len(entries))
		}
		mine, _ := s.CheckLocations(ctx, "c")
		if cl := mine["home"]; cl == nil || !cl.Failing || cl.Summary != "down" || !cl.Since.Equal(t0) {
			t.Errorf("c's state: %+v", cl)
		}
		// Three locations leave (or recover): the incident closes when one fails.
		_ = s.SaveCheckLocation(ctx, &CheckLocation{Check: "home", Location: "a", Failures: 1, Recent: "pfpf", UpdatedAt: t0}, time.Time{})
		for _, loc := range []string{"b", "c"} {
			if _, err := s.UpdateIncident(ctx, IncidentUpdate{Subject: "home", Left: loc}, decide); err != nil {
				t.Fatal(err)
			}
		}
		in, err := s.UpdateIncident(ctx, IncidentUpdate{Subject: "home"}, decide)
		if err != nil || in.Open || in.Seq != 1 || in.Muted != "" {
			t.Fatalf("one location of four failing: %+v %v", in, err)
		}
		if ins, _ := s.Incidents(ctx); ins["home"].Muted != "" {
			t.Errorf("the closed incident still reads as muted: %+v", ins["home"])
		}
		if a, _ := s.CheckLocations(ctx, "a"); a["home"].Failing || a["home"].Failures != 1 || a["home"].Recent != "pfpf" {
			t.Errorf("a's state: %+v", a["home"])
		}
	})
}

// Two agents in one location: the first to write a check's streak keeps it; the other's
// writes, incident updates and removal are refused while the keeper is alive, and it takes
// the streak over once the keeper stopped or went silent. A zero bound writes regardless.
func TestCheckLocationKeeper(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		s := drv.fresh(t)
		for _, name := range []string{"eu-1", "eu-2"} {
			if _, err := s.Heartbeat(ctx, &Member{Name: name, Instance: name, Location: "eu", Started: t0, Heartbeat: t0}); err != nil {
				t.Fatal(err)
			}
		}
		alive := t0.Add(-30 * time.Second) // both heartbeats are newer
		row := func() *CheckLocation {
			t.Helper()
			cl, err := s.CheckLocation(ctx, "home", "eu")
			if err != nil {
				t.Fatal(err)
			}
			return cl
		}
		failing := &CheckLocation{Check: "home", Location: "eu", Failing: true, Since: t0, Summary: "down", UpdatedAt: t0, Agent: "eu-1", Recent: "ffpf"}
		if err := s.SaveCheckLocation(ctx, failing, alive); err != nil {
			t.Fatal(err)
		}
		passing := &CheckLocation{Check: "home", Location: "eu", Failures: 1, UpdatedAt: t0.Add(time.Second), Agent: "eu-2"}
		if err := s.SaveCheckLocation(ctx, passing, alive); !errors.Is(err, ErrKept) {
			t.Fatalf("eu-2 wrote over the streak eu-1 keeps, alive: %v", err)
		}
		decided := false
		decide := func(cur *Incident, locs []*CheckLocation) (*Incident, []*OutboxEntry) {
			decided = true
			return nil, nil
		}
		if _, err := s.UpdateIncident(ctx, IncidentUpdate{Subject: "home", Location: passing, AliveSince: alive}, decide); !errors.Is(err, ErrKept) || decided {
			t.Fatalf("eu-2's incident update: %v, decided %v; want ErrKept and no decision", err, decided)
		}
		if _, err := s.UpdateIncident(ctx, IncidentUpdate{Subject: "home", Left: "eu", Agent: "eu-2", AliveSince: alive}, decide); err != nil {
			t.Fatal(err)
		}
		if cl := row(); cl == nil || !cl.Failing || cl.Agent != "eu-1" || cl.Summary != "down" || cl.Recent != "ffpf" {
			t.Fatalf("after eu-2's refused writes and removal: %+v; want eu-1's failing streak", cl)
		}
		if err := s.Health(ctx); err != nil {
			t.Errorf("a refused write made the store unhealthy: %v", err)
		}
		others, err := s.KeptByOthers(ctx, "eu", "eu-2")
		if err != nil || len(others) != 1 || others["home"].Agent != "eu-1" {
			t.Fatalf("streaks eu-2 does not keep: %v %v", others, err)
		}
		if mine, _ := s.KeptByOthers(ctx, "eu", "eu-1"); len(mine) != 0 {
			t.Errorf("eu-1 is told it does not keep %v", mine)
		}

		// eu-1 stops: eu-2 takes the streak over.
		if err := s.StopMember(ctx, "eu-1", "eu-1", t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveCheckLocation(ctx, passing, alive); err != nil {
			t.Fatalf("eu-2 taking over from eu-1, stopped: %v", err)
		}
		if cl := row(); cl.Agent != "eu-2" || cl.Failing || cl.Failures != 1 {
			t.Fatalf("after the takeover: %+v", cl)
		}
		// eu-1 comes back (a heartbeat at t0+1m); eu-2's last was at t0. With eu-2 alive
		// eu-1 stands by; once eu-2 is silent (its heartbeat older than the bound) eu-1
		// takes the streak back, and its removal of the check goes through.
		if _, err := s.Heartbeat(ctx, &Member{Name: "eu-1", Instance: "eu-1b", Location: "eu", Started: t0.Add(time.Minute), Heartbeat: t0.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveCheckLocation(ctx, failing, alive); !errors.Is(err, ErrKept) {
			t.Fatalf("eu-1 wrote over eu-2, alive: %v", err)
		}
		if _, err := s.UpdateIncident(ctx, IncidentUpdate{Subject: "home", Location: failing, AliveSince: t0.Add(time.Second)}, decide); err != nil || !decided {
			t.Fatalf("eu-1 taking over from eu-2, silent: %v (decided %v)", err, decided)
		}
		if cl := row(); cl.Agent != "eu-1" || !cl.Failing {
			t.Fatalf("after the takeover from a silent agent: %+v", cl)
		}
		if _, err := s.UpdateIncident(ctx, IncidentUpdate{Subject: "home", Left: "eu", Agent: "eu-1", AliveSince: alive}, decide); err != nil {
			t.Fatal(err)
		}
		if cl := row(); cl != nil {
			t.Fatalf("the keeper's removal left %+v", cl)
		}

		// One agent on its own store (a zero bound) writes whoever kept the streak, and a
		// streak kept by nobody (written before streaks had keepers) goes to its next writer.
		if err := s.SaveCheckLocation(ctx, failing, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveCheckLocation(ctx, passing, time.Time{}); err != nil || row().Agent != "eu-2" {
			t.Fatalf("a zero bound: %v, %+v", err, row())
		}
		nobody := *failing
		nobody.Agent = ""
		_ = s.SaveCheckLocation(ctx, &nobody, time.Time{})
		if err := s.SaveCheckLocation(ctx, passing, alive); err != nil || row().Agent != "eu-2" {
			t.Fatalf("a streak kept by nobody: %v, %+v", err, row())
		}
	})
}

// Agents record heartbeats; a restart under the same name is noticed; a clean stop is
// told apart from silence; a forgotten agent, or one silent past retention, is gone.
func TestMembers(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		s := drv.fresh(t)
		m := &Member{Name: "host/eu", Instance: "i1", Location: "eu", Version: "v1", URL: "http://eu", Services: []string{"web"}, Started: t0, Heartbeat: t0}
		if prev, err := s.Heartbeat(ctx, m); err != nil || prev != "" {
			t.Fatal(prev, err)
		}
		m.Heartbeat = t0.Add(time.Second)
		if prev, _ := s.Heartbeat(ctx, m); prev != "" {
			t.Errorf("the same instance's second heartbeat names %q", prev)
		}
		_, _ = s.Heartbeat(ctx, &Member{Name: "host/us", Instance: "j1", Location: "us", Started: t0, Heartbeat: t0})
		restarted := *m
		restarted.Instance, restarted.Started, restarted.Heartbeat = "i2", t0.Add(time.Minute), t0.Add(time.Minute)
		if prev, _ := s.Heartbeat(ctx, &restarted); prev != "i1" {
			t.Errorf("a restart under the same name: previous instance %q, want i1", prev)
		}
		if err := s.StopMember(ctx, "host/eu", "i2", t0.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		list, _ := s.Members(ctx)
		if len(list) != 2 || list[0].Name != "host/eu" || list[0].Instance != "i2" || !list[0].Stopped.Equal(t0.Add(2*time.Minute)) ||
			list[0].Services[0] != "web" || !list[1].Stopped.IsZero() {
			t.Fatalf("members: %+v %+v", list[0], list[1])
		}
		for _, name := range []string{"host/us", "host/eu"} {
			if err := s.SaveBoard(ctx, &Board{Agent: name, Location: "eu", SavedAt: t0, Data: []byte("b")}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.ForgetMember(ctx, "host/us"); err != nil {
			t.Fatal(err)
		}
		if err := s.ForgetMember(ctx, "host/us"); !errors.Is(err, ErrNotFound) {
			t.Errorf("forgetting twice: %v", err)
		}
		if b, _ := s.SavedBoard(ctx, "host/us"); b != nil {
			t.Error("a forgotten agent's board is kept")
		}
		if b, _ := s.SavedBoard(ctx, "host/eu"); b == nil {
			t.Error("forgetting an agent took another's board")
		}
		if _, err := s.Purge(ctx, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if list, _ := s.Members(ctx); len(list) != 0 {
			t.Errorf("an agent silent past retention is kept: %+v", list[0])
		}
		if b, _ := s.SavedBoard(ctx, "host/eu"); b != nil {
			t.Error("a board saved before retention is kept")
		}
	})
}

func TestNewerSchemaIsRefused(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		path := drv.where(t)
		s := drv.openAt(t, path)
		if _, err := s.self().db.ExecContext(ctx, `INSERT INTO schema_version(version) VALUES (99)`); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if s, err := drv.open(ctx, path); err == nil {
			s.Close()
			t.Error("opened a database from a newer vigil")
		} else if !strings.Contains(err.Error(), "schema version 99") {
			t.Errorf("the error should name the version: %v", err)
		}
	})
}

// A pipeline's registration sent again under its Idempotency-Key (its answer lost, the
// agent restarted meanwhile) registers nothing new, whatever has happened to the deploy
// since; the same key names one deploy per service; and two agents sharing the store that
// take the same registration at once register it once.
func TestDeployRequestKey(t *testing.T) { forEachDriver(t, testDeployRequestKey) }

func testDeployRequestKey(t *testing.T, drv driver) {
	ctx := context.Background()
	path := drv.where(t)
	s := drv.openAt(t, path)
	again := func(d *Deploy, wantID, wantStatus string) {
		t.Helper()
		sup, err := s.CreateDeploy(ctx, d, nil)
		var reg *RegisteredError
		if !errors.As(err, &reg) || reg.Deploy.ID != wantID || reg.Deploy.Status != wantStatus || sup != nil {
			t.Fatalf("%s sent again under %q: %v %v; want deploy %s (%s)", d.ID, d.RequestKey, sup, err, wantID, wantStatus)
		}
		if _, err := s.Deploy(ctx, d.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s was recorded too: %v", d.ID, err)
		}
	}
	web := func(id, key string) *Deploy {
		return &Deploy{ID: id, Service: "web", Version: "v2", CreatedAt: t0, Status: StatusVerifying, RequestKey: key}
	}
	if _, err := s.CreateDeploy(ctx, web("d1", "ci-run-7"), nil); err != nil {
		t.Fatal(err)
	}
	again(web("d1-again", "ci-run-7"), "d1", StatusVerifying)
	if got, _ := s.Deploy(ctx, "d1"); got.Status != StatusVerifying {
		t.Fatalf("d1 after the registration came again: %s; want it still verifying, not superseded", got.Status)
	}
	// the same key for another service of the request: a deploy of its own
	api := &Deploy{ID: "d2", Service: "api", Version: "v2", CreatedAt: t0, Status: StatusVerifying, RequestKey: "ci-run-7"}
	if _, err := s.CreateDeploy(ctx, api, nil); err != nil {
		t.Fatal(err)
	}
	// deploys without a key are all new; a newer one supersedes d1, and the key still names it
	for _, id := range []string{"d3", "d4"} {
		if _, err := s.CreateDeploy(ctx, web(id, ""), nil); err != nil {
			t.Fatal(err)
		}
	}
	again(web("d1-late", "ci-run-7"), "d1", StatusSuperseded)

	// two agents take the same registration at once
	other := drv.openAt(t, path)
	errs := make(chan error, 2)
	for i, st := range []testStore{s, other} {
		go func() {
			_, err := st.CreateDeploy(ctx, web(fmt.Sprint("race-", i), "ci-run-8"), nil)
			errs <- err
		}()
	}
	created, told := 0, 0
	for range 2 {
		var reg *RegisteredError
		switch err := <-errs; {
		case err == nil:
			created++
		case errors.As(err, &reg) && strings.HasPrefix(reg.Deploy.ID, "race-"):
			told++
		default:
			t.Fatalf("racing registration: %v", err)
		}
	}
	if created != 1 || told != 1 {
		t.Fatalf("two agents registering one key at once: %d created, %d told it was registered; want 1 and 1", created, told)
	}
}

// A deploy's startup is read from when each check's first passing run of its
// verification ended, on either store; runs of other deploys, scheduled runs and runs
// that did not pass do not count.
func TestFirstPasses(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		s := drv.fresh(t)
		d1, d2 := "d1", "d2"
		run := func(check, deploy, outcome string, at time.Duration) *RunRecord {
			return &RunRecord{Check: check, Kind: "http", Started: t0.Add(at), Duration: 100 * time.Millisecond, Outcome: outcome,
				Location: "eu", DeployID: deploy}
		}
		if err := s.SaveRuns(ctx, []*RunRecord{
			run("home", d1, "inconclusive", 0), run("home", d1, "pass", time.Second), run("home", d1, "pass", 2*time.Second),
			run("api", d1, "fail", 0), run("api", d1, "pass", 3*time.Second),
			run("home", d2, "fail", 0), run("home", "", "pass", 0),
		}); err != nil {
			t.Fatal(err)
		}
		got, err := s.FirstPasses(ctx, []string{d1, d2, "d3"})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]time.Time{"home": t0.Add(1100 * time.Millisecond), "api": t0.Add(3100 * time.Millisecond)}
		if len(got) != 1 || len(got[d1]) != 2 || !got[d1]["home"].Equal(want["home"]) || !got[d1]["api"].Equal(want["api"]) {
			t.Fatalf("first passes %v; want only d1's: %v", got, want)
		}
		if none, err := s.FirstPasses(ctx, nil); err != nil || len(none) != 0 {
			t.Errorf("no deploys: %v %v", none, err)
		}
	})
}
