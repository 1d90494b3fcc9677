package store

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The outbox's reads by state, by incident and by time are each found through an index,
// not by reading every entry: a week's outbox of an agent with many notifiers holds a
// hundred thousand entries, nearly all finished. On SQLite, whose store vigil never
// ANALYZEs, the plan is read as the agent gets it; PostgreSQL's, after an ANALYZE, as
// autovacuum leaves it.
func TestOutboxReadsUseIndexes(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		s := drv.fresh(t).self()
		pg := drv.name == "postgres"
		fillFinishedOutbox(t, s, pg, 20_000)
		for _, q := range []struct {
			name, query string
			args        []any
			sqlite, pg  string   // what the plan must name
			pgBad       []string // and what PostgreSQL's must not
		}{
			{"the dead letters, newest first", outboxByStateQuery, []any{OutboxDead, 100},
				"SEARCH outbox USING INDEX outbox_listed (status=?)", "Index Scan Backward using outbox_listed", []string{"Seq Scan", "Sort"}},
			// PostgreSQL sorts the incident's few rows by notifier.
			{"the notifiers an incident was written for", incidentHeardByQuery, []any{"inc777"},
				"SEARCH outbox USING COVERING INDEX outbox_heard (incident=?)", "on outbox_heard", []string{"Seq Scan"}},
			{"a batch of the age purge", purgeOutboxQuery, []any{t0.Add(time.Hour).UnixNano(), t0.Add(time.Hour).UnixNano(), 1000},
				"SEARCH outbox USING INDEX outbox_created (created_at<?)", "Index Scan using outbox_created", []string{"Seq Scan", "Sort"}},
			{"a batch of the purge to max_size (SQLite's only)", purgeOutboxToSizeQuery, nil, "SCAN outbox USING INDEX outbox_created", "", nil},
		} {
			if pg && q.pg == "" {
				continue
			}
			plan := explainPlan(t, s, pg, q.query, q.args...)
			// SQLite: no read of every entry ("SCAN outbox" alone, not of an index), no sort.
			want, bad := q.sqlite, []string{"TEMP B-TREE", "SCAN outbox\n"}
			if pg {
				want, bad = q.pg, q.pgBad
			}
			plan += "\n"
			ok := strings.Contains(plan, want)
			for _, b := range bad {
				ok = ok && !strings.Contains(plan, b)
			}
			if !ok {
				t.Errorf("%s:\n%s\nis read as:\n%s\nwant %q, and no %q", q.name, q.query, plan, want, bad)
			}
		}
	})
}

// fillFinishedOutbox writes n entries over a week, as twenty notifiers' outbox holds them:
// one in a hundred dead, the last fifty pending, the others delivered; four per incident.
func fillFinishedOutbox(t testing.TB, s *common, pg bool, n int) {
	t.Helper()
	ctx := context.Background()
	step := int64(7*24*time.Hour) / int64(n)
	rows := `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i < ?-1)`
	from := ` FROM n`
	if pg {
		rows, from = ``, ` FROM generate_series(0, CAST(? AS BIGINT)-1) AS i`
	}
	q := rows + ` INSERT INTO outbox(notifier, event, idem_key, incident, payload, created_at, next_attempt_at, attempts, status, done_at)
		SELECT 'n'||(i%20), 'check_failed', 'k'||i, 'inc'||(i/4), '{}', ?+i*?, ?+i*?, 1,
			CASE WHEN i >= ?-50 THEN 'pending' WHEN i%100 = 0 THEN 'dead' ELSE 'delivered' END, ?+i*?+1000000000` + from
	args := []any{t0.UnixNano(), step, t0.UnixNano(), step, n, t0.UnixNano(), step, n}
	if !pg {
		args = append([]any{n}, args[:len(args)-1]...)
	}
	if _, err := s.db.ExecContext(ctx, q, args...); err != nil {
		t.Fatal(err)
	}
	if pg {
		if _, err := s.db.ExecContext(ctx, `VACUUM ANALYZE outbox`); err != nil {
			t.Fatal(err)
		}
	}
}

// explainPlan is how the database reads query: SQLite's EXPLAIN QUERY PLAN, as it stands
// (no ANALYZE), or PostgreSQL's EXPLAIN, one line each.
func explainPlan(t *testing.T, s *common, pg bool, query string, args ...any) string {
	t.Helper()
	rows, err := s.db.QueryContext(context.Background(), `EXPLAIN `+map[bool]string{false: "QUERY PLAN ", true: ""}[pg]+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		var id, parent, unused int
		dst := []any{&id, &parent, &unused, &line}
		if pg {
			dst = []any{&line}
		}
		if err := rows.Scan(dst...); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "\n")
}
