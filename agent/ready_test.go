package agent

import (
	"context"
	"database/sql"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// corruptRuns fills the runs table of the store at path, then overwrites its root page
// with garbage: every later save of a run fails as "database disk image is malformed",
// while other tables (the readiness probe's own write among them) still work.
func corruptRuns(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var runs []*store.RunRecord
	for i := range 200 {
		runs = append(runs, &store.RunRecord{Check: "home", Kind: "http", Started: time.Unix(int64(i), 0), Outcome: "pass", Attempts: 1,
			Transcript: []string{strings.Repeat("x", 500)}})
	}
	if err := st.SaveRuns(ctx, runs); err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	var root, pageSize int64
	if err := db.QueryRow(`SELECT rootpage FROM sqlite_master WHERE name = 'runs'`).Scan(&root); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(strings.Repeat("\xde\xad\xbe\xef", int(pageSize)/4)), (root-1)*pageSize); err != nil {
		t.Fatal(err)
	}
}

// While saves fail (a corrupt table), /readyz says not ready and why; the probe's own
// test write succeeding is not enough.
func TestReadyzWhileSavesFail(t *testing.T) {
	tg := newTarget(t)
	dir := t.TempDir()
	corruptRuns(t, filepath.Join(dir, "vigil.db"))
	h := startAgent(t, dir, webConfig{url: tg.srv.URL, verify: "interval: 1h, count: 2", every: "1s"}.String())
	eventually(t, 10*time.Second, "a failed save of a run", func() bool { return strings.Contains(h.logs.String(), "saving runs failed") })
	status, out := h.request("GET", "/readyz", "")
	problems, _ := out["problems"].([]any)
	t.Logf("reliability: /readyz with the runs table corrupted: %d %v", status, problems)
	if status != http.StatusServiceUnavailable || len(problems) == 0 || !strings.Contains(problems[0].(string), "malformed") {
		t.Errorf("/readyz while every run fails to save: %d %v", status, out)
	}
	if status, _ := h.request("GET", "/healthz", ""); status != 200 {
		t.Errorf("/healthz: %d (the process is alive; only readiness should drop)", status)
	}
}
