package agent

import (
	"database/sql"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// The API, /metrics and the status page read the incident state without waiting for the
// store: while another process holds the SQLite file's write lock, a check whose streak
// changes waits to write it (with the incident state's lock held), and readers took that
// lock too, so a scrape and the API hung for the store's busy timeout, run after run.
func TestReadsDoNotWaitForALockedStore(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", withToken(webConfig{url: tg.srv.URL, every: "1s"}.String()))
	db, err := sql.Open("sqlite", "file:"+filepath.Join(h.dir, "vigil.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	locked := true
	defer func() {
		if locked {
			_, _ = conn.ExecContext(t.Context(), "ROLLBACK")
		}
	}()
	tg.set("broken")                    // the streak changes: a write that waits for the lock
	time.Sleep(2500 * time.Millisecond) // a run or two wait on it
	client := &http.Client{Timeout: 4 * time.Second}
	for _, path := range []string{"/metrics", "/api/v1/checks", "/"} {
		req, _ := http.NewRequest("GET", h.url+path, nil)
		req.Header.Set("Authorization", "Bearer s3cret-token")
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("GET %s while the store's write lock is held: %v", path, err)
			continue
		}
		resp.Body.Close()
		t.Logf("reliability: GET %s with the store's write lock held elsewhere: %d in %s", path, resp.StatusCode, time.Since(start).Round(time.Millisecond))
	}
	if _, err := conn.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	locked = false
}
