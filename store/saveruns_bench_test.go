package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkSaveRuns stores batches of a hundred runs of a thousand checks, as the agent's
// run writer does at a thousand checks a second. The rows are as an http check's: its
// variables. Two stores: "young" already holds some 50,000 runs (the bench's agent after a
// minute: a check's runs share index pages with its neighbours'); "mature" a million, a
// thousand a check (an agent's store after some days: each check's newest page of the
// per-check index is its own, so a batch writes an index page for every run, and the
// thousand such pages are more than SQLite's default page cache holds).
func BenchmarkSaveRuns(b *testing.B) {
	b.Run("young", func(b *testing.B) { benchSaveRuns(b, 50_000, false) })
	b.Run("mature", func(b *testing.B) { benchSaveRuns(b, 1_000_000, true) })
}

func benchSaveRuns(b *testing.B, prefill int, bulk bool) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "vigil.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	i := 0
	batch := func() []*RunRecord {
		runs := make([]*RunRecord, 100)
		for j := range runs {
			runs[j] = &RunRecord{Check: fmt.Sprintf("c%d", i%1000), Kind: "http", Started: at.Add(time.Duration(i) * time.Millisecond),
				Duration: 2 * time.Millisecond, Outcome: "pass", Attempts: 1, Reasons: []string{}, Transcript: nil,
				Vars: map[string]any{"status": 200, "body_bytes": 2, "body_truncated": false, "cert_expiry_days": -1.0,
					"cert_expiry_timestamp": 0.0, "conn_reused": true, "connect_ms": 0.0, "content_length": 2, "dns_ms": 0.0,
					"duration_ms": 1.234, "proto": "HTTP/1.1", "redirects": 0, "tls_ms": 0.0, "ttfb_ms": 1.1,
					"url": "http://127.0.0.1:39075/", "headers": map[string]string{"Content-Length": "2", "Content-Type": "text/plain",
						"Date": "Wed, 02 Dec 2026 09:56:57 GMT"}}}
			i++
		}
		return runs
	}
	if bulk { // in one statement, with empty variables: what matters here is the index
		if _, err := s.db.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i < ?-1)
			INSERT INTO runs(check_name, kind, started_at, duration_ns, outcome) SELECT 'c'||(i%1000), 'http', ?+i*1000000, 2000000, 'pass' FROM n`,
			prefill, at.UnixNano()); err != nil {
			b.Fatal(err)
		}
		i = prefill
	} else {
		for range prefill / 100 {
			if err := s.SaveRuns(ctx, batch()); err != nil {
				b.Fatal(err)
			}
		}
	}
	batches := make([][]*RunRecord, b.N)
	for n := range batches {
		batches[n] = batch()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := range b.N {
		if err := s.SaveRuns(ctx, batches[n]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/run")
}
