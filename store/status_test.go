package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The overview is one query: the newest deploys of each service with the run that failed
// them (its reason and screenshot) and their rollbacks, the newest events, and the silences
// still on. Links and events written beside the deploys come back with them.
func TestOverview(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d driver) { testOverview(t, d.fresh(t)) })
}

func testOverview(t *testing.T, s testStore) {
	ctx := context.Background()
	for i := range 4 {
		for _, svc := range []string{"web", "api"} {
			d := &Deploy{ID: fmt.Sprintf("%s-%d", svc, i), Service: svc, Version: fmt.Sprintf("v%d", i), CreatedAt: t0.Add(time.Duration(i) * time.Hour),
				Status: StatusVerifying}
			if _, err := s.CreateDeploy(ctx, d, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.SetDeployLinks(ctx, "web-3", []Link{{"ci", "https://ci.example/1"}, {"diff", "https://git.example/c/abc"}}); err != nil {
		t.Fatal(err)
	}
	runs := []*RunRecord{
		{Check: "login", Kind: "http", Started: t0.Add(3*time.Hour + time.Second), Outcome: "error", DeployID: "web-3", Reasons: []string{"connection refused"}},
		{Check: "home", Kind: "browser", Started: t0.Add(3*time.Hour + 2*time.Second), Outcome: "fail", DeployID: "web-3",
			Reasons: []string{"js_errors == 0 is false: js_errors = 1"}, Artifacts: []*Artifact{{Name: "screenshot.png", ContentType: "image/png", Data: []byte("png")}}},
		{Check: "home", Kind: "browser", Started: t0.Add(2*time.Hour + time.Second), Outcome: "pass", DeployID: "web-2"},
	}
	if err := s.SaveRuns(ctx, runs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DecideDeploy(ctx, &Decision{DeployID: "web-3", Status: StatusFailed, Reason: "home: 1 failed run", At: t0.Add(3*time.Hour + 3*time.Second)}); err != nil {
		t.Fatal(err)
	}
	for i, e := range []*Event{
		{At: t0.Add(3*time.Hour + 3*time.Second), Kind: "deploy_failed", Service: "web", DeployID: "web-3", Summary: "failed"},
		{At: t0.Add(3*time.Hour + 4*time.Second), Kind: "rollback", Service: "web", DeployID: "web-3", Summary: "rollback-web accepted"},
		{At: t0.Add(time.Minute), Kind: "check_failed", Check: "home", Summary: "old"},
		{At: t0.Add(4 * time.Hour), Kind: "check_recovered", Check: "home", Summary: "new"},
	} {
		if err := s.AddEvent(ctx, e); err != nil || e.ID == 0 {
			t.Fatalf("event %d: id %d, %v", i, e.ID, err)
		}
	}
	for _, sl := range []*Silence{
		{ID: "on", Service: "api", Starts: t0, Ends: t0.Add(10 * time.Hour), Reason: "load test", CreatedAt: t0},
		{ID: "over", Check: "home", Starts: t0, Ends: t0.Add(time.Hour), Reason: "old", CreatedAt: t0},
	} {
		if err := s.AddSilence(ctx, sl); err != nil {
			t.Fatal(err)
		}
	}

	o, err := s.Overview(ctx, t0.Add(5*time.Hour), 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range o.Deploys {
		ids = append(ids, d.ID)
	}
	if fmt.Sprint(ids) != "[web-3 api-3 web-2 api-2]" {
		t.Fatalf("deploys: %v, want the 2 newest of each service, newest first", ids)
	}
	web3 := o.Deploys[0]
	if web3.Status != StatusFailed || web3.DecidedAt.IsZero() || len(web3.Links) != 2 || web3.Links[1].Name != "diff" {
		t.Errorf("web-3: %+v", web3)
	}
	if r := web3.FailedRun; r == nil || r.Check != "home" || r.Outcome != "fail" || r.Screenshot != "screenshot.png" || len(r.Reasons) != 1 {
		t.Errorf("web-3's failed run should be the failing one (before the error), with its screenshot: %+v", r)
	}
	if len(web3.Events) != 2 || web3.Events[0].Kind != "deploy_failed" || web3.Events[1].Kind != "rollback" {
		t.Errorf("web-3's events: %+v", web3.Events)
	}
	if o.Deploys[2].FailedRun != nil {
		t.Errorf("web-2 passed; failed run %+v", o.Deploys[2].FailedRun)
	}
	if len(o.Events) != 3 || o.Events[0].Kind != "check_recovered" || o.Events[2].Kind != "deploy_failed" {
		t.Errorf("events: want the 3 newest, newest first: %+v", o.Events)
	}
	if len(o.Silences) != 1 || o.Silences[0].ID != "on" {
		t.Errorf("silences: %+v", o.Silences)
	}
	if n, err := s.PurgeEvents(ctx, t0.Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("PurgeEvents = %d, %v; want the one event before", n, err)
	}
}

// A check's page is one query: latency columns over the range, the failures in it, the
// newest runs whatever their time, the services' deploys in the range and the check's events.
func TestCheckPage(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d driver) { testCheckPage(t, d.fresh(t)) })
}

func testCheckPage(t *testing.T, s testStore) {
	ctx := context.Background()
	var runs []*RunRecord
	for i := range 120 { // one a minute for two hours
		o := "pass"
		if i%30 == 29 {
			o = "fail"
		}
		runs = append(runs, &RunRecord{Check: "api", Kind: "http", Started: t0.Add(time.Duration(i) * time.Minute),
			Duration: time.Duration(100+i) * time.Millisecond, Outcome: o, Reasons: []string{"r" + fmt.Sprint(i)}})
	}
	runs = append(runs, &RunRecord{Check: "other", Kind: "http", Started: t0, Outcome: "fail"},
		&RunRecord{Check: "older", Kind: "http", Started: t0.Add(-90 * time.Minute), Outcome: "pass"})
	if _, ok, err := s.FirstRun(ctx); ok || err != nil {
		t.Errorf("FirstRun of an empty store: %v, %v; want none", ok, err)
	}
	if err := s.SaveRuns(ctx, runs); err != nil {
		t.Fatal(err)
	}
	if first, ok, err := s.FirstRun(ctx); !ok || err != nil || !first.Equal(t0.Add(-90*time.Minute)) {
		t.Errorf("FirstRun: %v, %v, %v; want the older check's run, %v", first, ok, err, t0.Add(-90*time.Minute))
	}
	for i, at := range []time.Duration{30 * time.Minute, 90 * time.Minute, 3 * time.Hour} {
		if _, err := s.CreateDeploy(ctx, &Deploy{ID: fmt.Sprint("d", i), Service: "web", Version: fmt.Sprint("v", i), CreatedAt: t0.Add(at), Status: StatusPassed}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddEvent(ctx, &Event{At: t0, Kind: "check_failed", Check: "api", Summary: "down"}); err != nil {
		t.Fatal(err)
	}
	// The last hour, in 6 columns of 10 minutes.
	p, err := s.CheckPage(ctx, CheckQuery{Check: "api", Services: []string{"web"}, From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour),
		Columns: 6, Recent: 5, Failures: 10, Events: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Columns) != 6 || p.Columns[0].Index != 0 || p.Columns[0].Runs != 10 || p.Columns[5].Index != 5 {
		t.Fatalf("columns: %+v", p.Columns)
	}
	c := p.Columns[2] // runs 80..89: 89 failed
	if c.Passed != 9 || c.Min != 180*time.Millisecond || c.Max != 189*time.Millisecond || c.Sum != (1845*time.Millisecond) {
		t.Errorf("column 2: %+v", c)
	}
	if len(p.Failures) != 2 || p.Failures[0].Started != t0.Add(89*time.Minute) || p.Failures[1].Started != t0.Add(119*time.Minute) {
		t.Errorf("failures in the range, oldest first: %+v", p.Failures)
	}
	if len(p.Recent) != 5 || p.Recent[0].Started != t0.Add(119*time.Minute) || p.Recent[0].Reasons[0] != "r119" {
		t.Errorf("recent runs, newest first: %+v", p.Recent)
	}
	if len(p.Deploys) != 1 || p.Deploys[0].ID != "d1" {
		t.Errorf("deploys in the range: %+v", p.Deploys)
	}
	if len(p.Events) != 1 || p.Events[0].Summary != "down" {
		t.Errorf("events: %+v", p.Events)
	}
	var n int
	if err := s.RunBuckets(ctx, "", t0, t0.Add(time.Hour), 30*time.Minute, func(r BucketRow) {
		if r.Check == "api" {
			n += r.Runs
		}
	}); err != nil || n != 60 {
		t.Errorf("RunBuckets counted %d runs of api in the first hour, %v", n, err)
	}
}
