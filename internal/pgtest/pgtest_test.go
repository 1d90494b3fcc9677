package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// A cluster takes connections on its port, keeps its data across a restart, and its
// folder is gone after Close.
func TestStartRestartClose(t *testing.T) {
	ctx := context.Background()
	s := Start(t, Options{})
	dsn := s.Database(t)
	exec := func(q string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	exec(`CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)`)
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if err := conn.QueryRow(ctx, `SELECT v FROM kept`).Scan(&v); err != nil || v != 7 {
		t.Fatalf("after a restart: %d, %v", v, err)
	}
	conn.Close(ctx)
	s.Close()
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Errorf("the cluster's folder %s is still there: %v", s.dir, err)
	}
	if _, err := pgx.Connect(ctx, dsn); err == nil {
		t.Error("connected to a closed cluster")
	}
}

// Databases on the shared cluster are separate.
func TestSharedDatabases(t *testing.T) {
	ctx := context.Background()
	a, b := Database(t), Database(t)
	if a == b {
		t.Fatalf("the same database twice: %s", a)
	}
	for _, dsn := range []string{a, b} {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `CREATE TABLE t (v int)`); err != nil {
			t.Errorf("%s: %v", dsn, err)
		}
		conn.Close(ctx)
	}
}
