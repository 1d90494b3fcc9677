package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/vigil-monitor/vigil/internal/pgtest"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
	"github.com/vigil-monitor/vigil/store"
)

// poolStore opens the store a config with store.pool set to pool opens (the agent's own
// openStore) on a new database of srv, and returns it with the database's name.
func poolStore(t *testing.T, srv *pgtest.Server, pool string) (*store.Postgres, string) {
	t.Helper()
	dsn := srv.Database(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg := vigiltest.LoadConfig(t, "", fmt.Sprintf(`
store: {driver: postgres, dsn: %q, pool: %s}
checks:
  - {name: home, kind: tcp, address: "127.0.0.1:1"}
`, dsn, pool))
	st, err := openStore(t.Context(), cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st.(*store.Postgres), strings.TrimPrefix(u.Path, "/")
}

// backends lists the PIDs of the sessions connected to database db, as PostgreSQL sees
// them, and how many of them wait for a lock. It asks over a connection of its own to
// another database, which it does not count.
type backends struct {
	t    *testing.T
	conn *pgx.Conn
}

func watchBackends(t *testing.T, srv *pgtest.Server) *backends {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), srv.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return &backends{t: t, conn: conn}
}

func (b *backends) of(db string) (pids []int32, locked int) {
	b.t.Helper()
	rows, err := b.conn.Query(b.t.Context(), `SELECT pid, coalesce(wait_event_type, '') FROM pg_stat_activity
		WHERE datname = $1 AND backend_type = 'client backend' ORDER BY pid`, db)
	if err != nil {
		b.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var pid int32
		var wait string
		if err := rows.Scan(&pid, &wait); err != nil {
			b.t.Fatal(err)
		}
		pids = append(pids, pid)
		if wait == "Lock" {
			locked++
		}
	}
	if err := rows.Err(); err != nil {
		b.t.Fatal(err)
	}
	return pids, locked
}

// eventually polls cond every 50ms until it holds, failing the test with what after limit
// (generous: it bounds a wait for behaviour, it measures no speed).
func eventually(t *testing.T, limit time.Duration, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", limit, what())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// store.pool's keys, each against a real PostgreSQL, through the config the agent loads and
// the store it opens from it: what the database sees of the agent's connections.
func TestStorePoolKeys(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Options{})
	obs := watchBackends(t, srv)

	t.Run("min_conns keeps connections open", func(t *testing.T) {
		_, db := poolStore(t, srv, "{min_conns: 3, max_conns: 5}")
		var pids []int32
		eventually(t, 30*time.Second, func() string {
			return fmt.Sprintf("the idle store holds %d connections (%v); want the 3 of min_conns", len(pids), pids)
		}, func() bool { pids, _ = obs.of(db); return len(pids) >= 3 })
		if len(pids) > 5 {
			t.Errorf("%d connections, more than max_conns 5", len(pids))
		}
	})

	t.Run("max_conns bounds the connections of a busy store", func(t *testing.T) {
		st, db := poolStore(t, srv, "{max_conns: 2}")
		// Every read of the agents' table waits behind this lock, holding its connection.
		lockConn, err := pgx.Connect(t.Context(), srv.DSN(db))
		if err != nil {
			t.Fatal(err)
		}
		defer lockConn.Close(context.Background())
		lock, err := lockConn.Begin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lock.Exec(t.Context(), `LOCK TABLE agents IN ACCESS EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
		self := int32(lockConn.PgConn().PID())
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				_, err := st.Members(t.Context())
				errs <- err
			})
		}
		count := func() (n, locked int) {
			pids, l := obs.of(db)
			return len(slices.DeleteFunc(pids, func(p int32) bool { return p == self })), l
		}
		var n, locked int
		eventually(t, 30*time.Second, func() string {
			return fmt.Sprintf("%d of the store's connections wait for the lock; want 2 (eight reads, max_conns 2)", locked)
		}, func() bool { n, locked = count(); return locked >= 2 })
		// Eight reads wait; give the pool time to open more connections than it may.
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if n, locked = count(); n > 2 {
				break
			}
		}
		if err := lock.Rollback(t.Context()); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("a read after the lock was released: %v", err)
			}
		}
		if n != 2 {
			t.Errorf("eight reads waiting on a lock held %d connections (%d waiting); want max_conns' 2", n, locked)
		}
	})

	t.Run("max_conn_lifetime replaces a connection", func(t *testing.T) {
		st, db := poolStore(t, srv, "{max_conns: 1, max_conn_lifetime: 1s}")
		if _, err := st.Members(t.Context()); err != nil {
			t.Fatal(err)
		}
		first, _ := obs.of(db)
		if len(first) != 1 {
			t.Fatalf("connections %v; want the one of max_conns 1", first)
		}
		var now []int32
		eventually(t, 30*time.Second, func() string {
			return fmt.Sprintf("the store still reads through connection %v, opened more than 1s (max_conn_lifetime) ago", now)
		}, func() bool {
			if _, err := st.Members(t.Context()); err != nil {
				t.Fatal(err)
			}
			now, _ = obs.of(db)
			return len(now) == 1 && now[0] != first[0]
		})
	})

	t.Run("max_conn_idle_time closes an idle connection", func(t *testing.T) {
		st, db := poolStore(t, srv, "{max_conn_idle_time: 1s}")
		if _, err := st.Members(t.Context()); err != nil {
			t.Fatal(err)
		}
		if pids, _ := obs.of(db); len(pids) == 0 {
			t.Fatal("no connection after a read")
		}
		var pids []int32
		eventually(t, 30*time.Second, func() string {
			return fmt.Sprintf("connections %v stay open, idle for longer than max_conn_idle_time (1s)", pids)
		}, func() bool { pids, _ = obs.of(db); return len(pids) == 0 })
	})
}

// store.pool.connect_timeout bounds each connection attempt: a database that accepts the
// connection and never answers is an error naming it once the timeout is over, not the
// default 10s.
func TestStorePoolConnectTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan time.Duration, 16)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { ln.Close() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { // read until the client gives up and closes
				defer c.Close()
				start := time.Now()
				buf := make([]byte, 512)
				for {
					if _, err := c.Read(buf); err != nil {
						held <- time.Since(start)
						return
					}
				}
			})
		}
	})
	open := func(ctx context.Context, timeout string) error {
		cfg := vigiltest.LoadConfig(t, "", fmt.Sprintf(`
store: {driver: postgres, dsn: "postgres://vigil@%s/vigil?sslmode=disable", pool: {connect_timeout: %s}}
checks:
  - {name: home, kind: tcp, address: "127.0.0.1:1"}
`, ln.Addr(), timeout))
		st, err := openStore(ctx, cfg.Store)
		if err == nil {
			st.Close()
		}
		return err
	}

	t.Run("shorter than the default", func(t *testing.T) {
		err := open(t.Context(), "1s")
		if err == nil || !strings.Contains(err.Error(), "cannot reach PostgreSQL at "+ln.Addr().String()) {
			t.Fatalf("a database that never answers: %v; want an error naming it", err)
		}
		// The default would hold the attempt 10s; a 1s timeout does not, however busy the
		// machine.
		if d := <-held; d > 8*time.Second {
			t.Errorf("the attempt was held %s; want about connect_timeout's 1s", d.Round(time.Millisecond))
		}
	})

	t.Run("longer than the default", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- open(ctx, "60s") }()
		// Past the default's 10s the attempt is still waiting: timers fire late, never early.
		select {
		case d := <-held:
			t.Errorf("the attempt ended after %s; want it held for connect_timeout's 60s", d.Round(time.Millisecond))
		case err := <-done:
			t.Errorf("the store gave up before connect_timeout's 60s: %v", err)
		case <-time.After(13 * time.Second):
		}
		cancel()
		if err := <-done; err == nil {
			t.Error("opened a store on a database that never answers")
		}
	})
}
