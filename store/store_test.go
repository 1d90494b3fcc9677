package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
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
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "vigil.db")
	s := open(t, path)
	runs := []*RunRecord{
		{Check: "home", Kind: "browser", Started: t0, Duration: time.Second, Outcome: "fail", Attempts: 1, DeployID: "d1",
			Reasons: []string{"js_errors == 0 is false"}, Vars: map[string]any{"js_errors": 1, "title": "x"},
			Transcript: []string{"> GET /"}, Artifacts: []*Artifact{{Name: "screenshot.png", ContentType: "image/png", Data: []byte{0x89, 'P', 'N', 'G'}}}},
		{Check: "home", Kind: "browser", Started: t0.Add(time.Minute), Duration: time.Second, Outcome: "pass", Attempts: 2},
		{Check: "api", Kind: "http", Started: t0.Add(2 * time.Minute), Outcome: "pass", Attempts: 1},
	}
	if err := s.SaveRuns(ctx, runs); err != nil {
		t.Fatal(err)
	}
	if runs[0].ID == 0 || runs[1].ID == runs[0].ID {
		t.Fatalf("ids not set: %d %d", runs[0].ID, runs[1].ID)
	}
	s.Close()

	s = open(t, path) // a second open runs no migration twice
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
	if len(recent) != 2 || recent[0].Outcome != "pass" {
		t.Errorf("recent newest first: %d", len(recent))
	}
	latest, _ := s.LatestRuns(ctx)
	if len(latest) != 2 {
		t.Errorf("latest per check: %d", len(latest))
	}
	hist, _ := s.History(ctx, "home", t0, 10)
	if len(hist) != 2 || !hist[0].Started.Equal(t0) {
		t.Errorf("history oldest first: %+v", hist)
	}
	n, _ := s.Purge(ctx, t0.Add(90*time.Second))
	if n != 2 {
		t.Errorf("purged %d", n)
	}
	if _, err := s.ArtifactData(ctx, runs[0].ID, "screenshot.png"); !errors.Is(err, ErrNotFound) {
		t.Error("artifacts must go with their run")
	}
}

func TestDeployVerdictOnceWithOutbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	s := open(t, path)
	d1 := &Deploy{ID: "d1", Service: "web", Version: "v1", CreatedAt: t0, Status: StatusVerifying,
		Baseline: map[string]map[string]any{"home": {"duration_ms": 12.5}}}
	if sup, err := s.CreateDeploy(ctx, d1); err != nil || len(sup) != 0 {
		t.Fatal(sup, err)
	}
	d2 := &Deploy{ID: "d2", Service: "web", Version: "v2", CreatedAt: t0.Add(time.Minute), Status: StatusVerifying}
	sup, err := s.CreateDeploy(ctx, d2)
	if err != nil || len(sup) != 1 || sup[0] != "d1" {
		t.Fatalf("supersede: %v %v", sup, err)
	}
	got, _ := s.Deploy(ctx, "d1")
	if got.Status != StatusSuperseded || got.SupersededBy != "d2" || got.Baseline["home"]["duration_ms"] != 12.5 {
		t.Errorf("d1: %+v", got)
	}
	// A superseded deploy cannot be decided.
	if ok, _ := s.DecideDeploy(ctx, &Decision{DeployID: "d1", Status: StatusFailed, At: t0}); ok {
		t.Error("decided a superseded deploy")
	}
	entry := func() []*OutboxEntry {
		return []*OutboxEntry{{Notifier: "rollback", Event: "deploy_failed", Key: "d2:deploy_failed", Incident: "d2", Payload: []byte(`{}`), CreatedAt: t0}}
	}
	ok, err := s.DecideDeploy(ctx, &Decision{DeployID: "d2", Status: StatusFailed, Reason: "home failed", At: t0, Outbox: entry()})
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, _ := s.DecideDeploy(ctx, &Decision{DeployID: "d2", Status: StatusPassed, At: t0, Outbox: entry()}); ok {
		t.Error("decided twice")
	}
	if err := s.Enqueue(ctx, entry()); err != nil { // same notifier and key: ignored
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path)
	// Every entry with the key, whatever its status: DueOutbox alone would hide a second
	// pending entry of the same notifier and incident behind the first.
	all, err := s.OutboxByKey(ctx, "d2:deploy_failed")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Notifier != "rollback" || all[0].Status != OutboxPending {
		t.Fatalf("%d entries for d2:deploy_failed after three writes of it (the verdict, a second verdict, an Enqueue); want 1: %s", len(all), describe(all))
	}
	due, _ := s.DueOutbox(ctx, t0, 10)
	if len(due) != 1 || due[0].ID != all[0].ID {
		t.Fatalf("due: %+v", due)
	}
	d, _ := s.Deploy(ctx, "d2")
	if d.Status != StatusFailed || d.Reason != "home failed" {
		t.Errorf("verdict lost: %+v", d)
	}
	if err := s.RecordAttempt(ctx, OutboxAttempt{ID: due[0].ID, Status: OutboxPending, Attempts: 1, Next: t0.Add(time.Minute), LastError: "500"}); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueOutbox(ctx, t0.Add(30*time.Second), 10); len(due) != 0 {
		t.Error("not due yet")
	}
	if next, _ := s.NextDue(ctx); !next.Equal(t0.Add(time.Minute)) {
		t.Errorf("next due %v", next)
	}
	_ = s.RecordAttempt(ctx, OutboxAttempt{ID: due[0].ID, Status: OutboxDead, Attempts: 8, LastError: "gave up", At: t0})
	dead, _ := s.Outbox(ctx, OutboxDead, 10)
	counts, _ := s.OutboxCounts(ctx)
	if len(dead) != 1 || counts[OutboxDead] != 1 {
		t.Errorf("dead letters: %v %v", dead, counts)
	}
	if err := s.Retry(ctx, dead[0].ID, t0); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueOutbox(ctx, t0, 10); len(due) != 1 {
		t.Error("retried entry not due")
	}
}

// OutboxByKey returns every entry with the key, of every notifier and status, in write order.
func TestOutboxByKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "v.db"))
	entry := func(notifier, key, status string) *OutboxEntry {
		return &OutboxEntry{Notifier: notifier, Event: "deploy_failed", Key: key, Incident: "d1", Payload: []byte(`{"n":"` + notifier + `"}`),
			CreatedAt: t0, Status: status}
	}
	if err := s.Enqueue(ctx, []*OutboxEntry{entry("slack", "d1:deploy_failed", OutboxSilenced), entry("rollback", "d1:deploy_failed", ""),
		entry("rollback", "d2:deploy_failed", ""), entry("slack", "d1:deploy_failed:rollback", "")}); err != nil {
		t.Fatal(err)
	}
	got, err := s.OutboxByKey(ctx, "d1:deploy_failed")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Notifier != "slack" || got[0].Status != OutboxSilenced || got[1].Notifier != "rollback" ||
		got[1].Status != OutboxPending || string(got[1].Payload) != `{"n":"rollback"}` || !got[1].CreatedAt.Equal(t0) {
		t.Fatalf("OutboxByKey(d1:deploy_failed) = %s", describe(got))
	}
	if none, err := s.OutboxByKey(ctx, "d3:deploy_failed"); err != nil || len(none) != 0 {
		t.Errorf("an unknown key: %+v %v", none, err)
	}
}

// describe lists entries as id:notifier:status.
func describe(entries []*OutboxEntry) string {
	var parts []string
	for _, e := range entries {
		parts = append(parts, fmt.Sprintf("%d:%s:%s", e.ID, e.Notifier, e.Status))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestAlertStateIncidentsSilences(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "v.db"))
	if st, err := s.AlertState(ctx, "ops", "d1"); err != nil || len(st) != 0 {
		t.Fatal(st, err)
	}
	_ = s.SaveAlertState(ctx, "ops", "d1", map[string]string{"ts": "123.456"}, t0)
	_ = s.SaveAlertState(ctx, "ops", "d1", map[string]string{"ts": "123.456", "uploaded": "1"}, t0)
	st, _ := s.AlertState(ctx, "ops", "d1")
	if st["ts"] != "123.456" || st["uploaded"] != "1" {
		t.Errorf("state: %v", st)
	}
	in := &Incident{Check: "home", Open: true, Seq: 3, Failures: 2, OpenedAt: t0, Summary: "down"}
	if err := s.SaveIncident(ctx, in, []*OutboxEntry{{Notifier: "ops", Event: "check_failed", Key: "check:home:3:check_failed", Payload: []byte("{}"), CreatedAt: t0}}); err != nil {
		t.Fatal(err)
	}
	ins, _ := s.Incidents(ctx)
	if got := ins["home"]; got == nil || !got.Open || got.Seq != 3 || !got.OpenedAt.Equal(t0) {
		t.Errorf("incident: %+v", got)
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
}

func TestNewerSchemaIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	s := open(t, path)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_version(version) VALUES (99)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, path); err == nil {
		t.Error("opened a database from a newer vigil")
	}
}
