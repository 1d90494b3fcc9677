package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// LatestRuns gives each check's newest run by start in the location asked, whatever order
// the runs were stored in, none for a check that never ran there; held against the newest
// found by reading every run, on random histories (ties in start broken by the later id).
func TestLatestRunsPerCheckAndLocation(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d driver) {
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(7, uint64(len(d.name))))
		t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		for round := range 5 {
			s := d.fresh(t)
			var all []*RunRecord
			for range 20 {
				batch := make([]*RunRecord, 1+rng.IntN(10))
				for i := range batch {
					loc := []string{"", "eu", "us"}[rng.IntN(3)]
					check := fmt.Sprintf("c%d", rng.IntN(6))
					if check == "c5" {
						loc = "us" // a check only one location runs
					}
					batch[i] = &RunRecord{Check: check, Kind: "http", Location: loc, Outcome: "pass",
						Started: t0.Add(time.Duration(rng.IntN(50)) * time.Second)} // out of order, with ties
				}
				if err := s.SaveRuns(ctx, batch); err != nil {
					t.Fatal(err)
				}
				all = append(all, batch...)
			}
			for _, loc := range []string{"", "eu", "us", "nowhere"} {
				want := map[string]*RunRecord{}
				for _, r := range all {
					w := want[r.Check]
					if r.Location == loc && (w == nil || r.Started.After(w.Started) || r.Started.Equal(w.Started) && r.ID > w.ID) {
						want[r.Check] = r
					}
				}
				got, err := s.LatestRuns(ctx, loc)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Errorf("round %d, location %q: %d runs, want %d", round, loc, len(got), len(want))
				}
				for _, r := range got {
					if w := want[r.Check]; w == nil || r.ID != w.ID {
						t.Errorf("round %d, location %q: %s's latest is run %d (%s), want %v", round, loc, r.Check, r.ID, r.Started, w)
					}
				}
			}
		}
	})
}

// The agent reads LatestRuns as it starts: SQLite must answer it from the per-check index,
// never by reading every run.
func TestLatestRunsReadsNoWholeTable(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	plan := queryPlan(t, s, latestRunsQuery, "eu")
	for _, step := range plan {
		if strings.HasPrefix(step, "SCAN runs") || strings.HasPrefix(step, "SCAN r") || strings.Contains(step, "TEMP B-TREE") {
			t.Errorf("LatestRuns reads the whole table or sorts it:\n%s", strings.Join(plan, "\n"))
			break
		}
	}
}

// queryPlan is SQLite's plan for query, its steps' details, after ANALYZE.
func queryPlan(t *testing.T, s *SQLite, query string, args ...any) []string {
	t.Helper()
	ctx := context.Background()
	if _, err := s.db.ExecContext(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	rows, err := s.db.QueryContext(ctx, `EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return plan
}

// LatestRuns looks through a check's latestLookback newest runs, in any location, for one
// in the location asked: a check run here once, then only elsewhere that many times, has no
// latest run here (the agent runs every check as it starts); one fewer and it has.
func TestLatestRunsLookBack(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d driver) {
		ctx := context.Background()
		t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		for _, elsewhere := range []int{latestLookback - 1, latestLookback} {
			s := d.fresh(t)
			runs := []*RunRecord{{Check: "home", Kind: "http", Location: "eu", Outcome: "pass", Started: t0}}
			for i := range elsewhere {
				runs = append(runs, &RunRecord{Check: "home", Kind: "http", Location: "us", Outcome: "pass", Started: t0.Add(time.Duration(i+1) * time.Second)})
			}
			if err := s.SaveRuns(ctx, runs); err != nil {
				t.Fatal(err)
			}
			got, err := s.LatestRuns(ctx, "eu")
			if err != nil {
				t.Fatal(err)
			}
			if want := elsewhere < latestLookback; (len(got) == 1 && got[0].ID == runs[0].ID) != want {
				t.Errorf("after %d runs elsewhere: %d latest runs in eu, want the one: %v", elsewhere, len(got), want)
			}
		}
	})
}
