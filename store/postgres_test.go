package store

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/pgtest"
)

// Agents starting at once migrate one after the other under the advisory lock: each opens
// the store, and every migration ran once.
func TestPostgresMigrationsRunOnceWhenAgentsStartTogether(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.Database(t)
	const agents = 8
	var wg sync.WaitGroup
	errs := make(chan error, agents)
	for range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := OpenPostgres(ctx, dsn, PoolOptions{MaxConns: 2})
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("an agent starting with %d others: %v", agents-1, err)
	}
	s, err := OpenPostgres(ctx, dsn, PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.db.QueryContext(ctx, `SELECT version FROM schema_version ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var v int
		_ = rows.Scan(&v)
		got = append(got, fmt.Sprint(v))
	}
	var want []string
	for i := range migrations {
		want = append(want, fmt.Sprint(i+1))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("schema_version holds %v; want each of the %d migrations once", got, len(migrations))
	}
}

// A database that cannot be reached at start is an error at once, naming where vigil
// looked, never the password.
func TestPostgresUnreachableAtStart(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	start := time.Now()
	_, err = OpenPostgres(context.Background(), "postgres://vigil:s3cret-pw@"+addr+"/vigil?sslmode=disable", PoolOptions{ConnectTimeout: 2 * time.Second})
	took := time.Since(start)
	if err == nil {
		t.Fatal("opened a store where no database listens")
	}
	t.Logf("unreachable at start (%s): %v", took.Round(time.Millisecond), err)
	msg := err.Error()
	if !strings.Contains(msg, "cannot reach PostgreSQL at "+addr) || !strings.Contains(msg, `database "vigil"`) ||
		!strings.Contains(msg, "check store.dsn") || strings.Contains(msg, "s3cret-pw") {
		t.Errorf("the error should name the address and database, say what to check, and never show the password: %s", msg)
	}
	if took > 10*time.Second {
		t.Errorf("took %s to give up", took)
	}
	if _, err := OpenPostgres(context.Background(), "postgres://[bad", PoolOptions{}); err == nil || !strings.Contains(err.Error(), "store.dsn") {
		t.Errorf("a malformed DSN: %v", err)
	}
}

// Both drivers make the same tables with the same columns.
func TestSchemasMatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lite := open(t, filepath.Join(t.TempDir(), "v.db"))
	pg, err := OpenPostgres(ctx, pgtest.Database(t), PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	liteCols := map[string][]string{}
	rows, err := lite.db.QueryContext(ctx, `SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var table, col string
		_ = rows.Scan(&table, &col)
		liteCols[table] = append(liteCols[table], col)
	}
	rows.Close()
	pgCols := map[string][]string{}
	rows, err = pg.db.QueryContext(ctx, `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var table, col string
		_ = rows.Scan(&table, &col)
		pgCols[table] = append(pgCols[table], col)
	}
	rows.Close()
	for _, m := range []map[string][]string{liteCols, pgCols} {
		for _, c := range m {
			sort.Strings(c)
		}
	}
	if fmt.Sprint(liteCols) != fmt.Sprint(pgCols) {
		t.Errorf("the schemas differ:\nsqlite:   %v\npostgres: %v", liteCols, pgCols)
	}
	if len(pgCols) < 12 {
		t.Errorf("only %d tables: %v", len(pgCols), pgCols)
	}
}

// The database restarted under a running store: calls fail while it is down and work again
// once it is back, on the same store, with no reopening (the pool reconnects).
func TestPostgresRestartUnderTheStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := pgtest.Start(t, pgtest.Options{})
	s, err := OpenPostgres(ctx, srv.Database(t), PoolOptions{MaxConns: 4, ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	save := func(i int) error {
		return s.SaveRuns(ctx, []*RunRecord{{Check: "home", Kind: "http", Started: t0.Add(time.Duration(i) * time.Second), Outcome: "pass"}})
	}
	if err := save(0); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if err := save(1); err == nil {
		t.Fatal("saved a run while the database was down")
	}
	if err := s.Health(ctx); err == nil || !strings.Contains(err.Error(), "saving runs fails") {
		t.Errorf("health while the database is down: %v", err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for save(2) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the store did not recover within 10s of the database: %v", save(2))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, err := s.CountRuns(ctx); n != 2 || err != nil {
		t.Errorf("%d runs after the restart (%v); want 2", n, err)
	}
	if err := s.Health(ctx); err != nil {
		t.Errorf("health after the restart: %v", err)
	}
}
