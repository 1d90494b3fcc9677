package agent

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// The README's "runs older than store.retention are deleted": an agent started on a store
// with runs from before its retention deletes them as it starts, and keeps the newer ones.
// The store's Purge had tests; the agent's loop that calls it with the config's retention
// had none.
func TestAgentPurgesRunsPastRetention(t *testing.T) {
	tg := newTarget(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.db")
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var runs []*store.RunRecord
	for _, age := range []time.Duration{30 * time.Hour, 50 * time.Hour, 2 * time.Hour} {
		runs = append(runs, &store.RunRecord{Check: "home", Kind: "http", Started: now.Add(-age), Outcome: "pass", Attempts: 1, Reasons: []string{}})
	}
	if err := st.SaveRuns(context.Background(), runs); err != nil {
		t.Fatal(err)
	}
	st.Close()

	h := startAgent(t, dir, webConfig{url: tg.srv.URL, verify: "interval: 1h, count: 2", top: "store: {retention: 24h}"}.String())
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(q string) int {
		var n int
		if err := db.QueryRow(q, now.Add(-24*time.Hour).UnixNano()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	eventually(t, 20*time.Second, "the runs past retention deleted", func() bool {
		return count(`SELECT count(*) FROM runs WHERE started_at < ?`) == 0
	})
	if n := count(`SELECT count(*) FROM runs WHERE started_at >= ?`); n < 1 {
		t.Errorf("the run within retention was deleted too: %d left", n)
	}
	h.stop()
}
