package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/store"
)

// BenchmarkStatusPage1000 measures the server time of the status page's overview with
// 1,000 checks in 20 services, each with labels and a week of history at one run a
// minute (10 million runs on the uptime board: 1,000 x 7 x 1,440), 4,000 deploys with
// their runs and verdicts, and 10,000 events in the store. Each request goes through the
// agent's whole handler (auth, the one store query, the board, rendering, redaction) with
// no network in between, asking for gzip as browsers do. It reports p50, p95 and max per
// request, the first page apart, the page's size, what is sent of it, and what compressing
// it costs alone.
func BenchmarkStatusPage1000(b *testing.B) { benchStatusPage(b, 1000, "/") }

// BenchmarkStatusPage10000 is the same with 10,000 checks (100 million runs on the board):
// the page shows overviewRows of them.
func BenchmarkStatusPage10000(b *testing.B) { benchStatusPage(b, 10000, "/") }

// BenchmarkStatusPage10000All is the page of all 10,000 rows (?all=1), 47 MB of HTML.
func BenchmarkStatusPage10000All(b *testing.B) { benchStatusPage(b, 10000, "/?all=1") }

func benchStatusPage(b *testing.B, n int, path string) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv.Close()
	var cfg strings.Builder
	cfg.WriteString("checks:\n")
	teams := []string{"payments", "search", "identity", "catalog", "growth"}
	for i := range n {
		fmt.Fprintf(&cfg, "  - {name: check-%04d, kind: http, every: 24h, timeout: 2s, request: {url: %q}, labels: {team: %s, tier: %q}}\n",
			i, srv.URL+"/", teams[i%len(teams)], fmt.Sprint(i%3+1))
	}
	cfg.WriteString("services:\n")
	for s := range 20 {
		fmt.Fprintf(&cfg, "  svc-%02d:\n    checks: [", s)
		for i := s; i < n; i += 20 {
			if i > s {
				cfg.WriteString(", ")
			}
			fmt.Fprintf(&cfg, "check-%04d", i)
		}
		cfg.WriteString("]\n")
	}
	a, stop := benchAgent(b, cfg.String(), nil)
	defer stop()
	ctx := context.Background()
	now := a.clock.Now()

	// A week of history on the board, one run a minute per check.
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range a.Runtime().Order {
		for t := now.Add(-7 * 24 * time.Hour); t.Before(now); t = t.Add(time.Minute) {
			o := checks.Pass
			if rng.IntN(500) == 0 {
				o = checks.Fail
			}
			a.board.add(c.Name, t, time.Duration(20+rng.IntN(200))*time.Millisecond, o, now)
		}
	}
	// Deploys with their runs, verdicts and events in the store.
	for s := range 20 {
		svc := fmt.Sprintf("svc-%02d", s)
		for i := range 200 {
			at := now.Add(-time.Duration(200-i) * 30 * time.Minute)
			id := fmt.Sprintf("%s-%03d", svc, i)
			if _, err := a.store.CreateDeploy(ctx, &store.Deploy{ID: id, Service: svc, Version: fmt.Sprint("v", i), CreatedAt: at, Status: store.StatusVerifying}, nil); err != nil {
				b.Fatal(err)
			}
			status, outcome := store.StatusPassed, "pass"
			if i%7 == 0 {
				status, outcome = store.StatusFailed, "fail"
			}
			var runs []*store.RunRecord
			for r := range 5 {
				runs = append(runs, &store.RunRecord{Check: fmt.Sprintf("check-%04d", s+20*r), Kind: "http", Started: at.Add(time.Second), Duration: 30 * time.Millisecond,
					Outcome: outcome, Attempts: 1, DeployID: id, Reasons: []string{"status == 200 is false: status = 503"}})
			}
			if err := a.store.SaveRuns(ctx, runs); err != nil {
				b.Fatal(err)
			}
			if _, err := a.store.(*store.SQLite).DecideDeploy(ctx, &store.Decision{DeployID: id, Status: status, Reason: "bench", At: at.Add(2 * time.Second)}); err != nil {
				b.Fatal(err)
			}
			for e := range 2 {
				if err := a.store.AddEvent(ctx, &store.Event{At: at.Add(time.Duration(e) * time.Second), Kind: "deploy_" + status, Service: svc, DeployID: id, Summary: "bench"}); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	for i := range 2000 {
		if err := a.store.AddEvent(ctx, &store.Event{At: now.Add(-time.Duration(i) * time.Minute), Kind: "check_failed", Check: fmt.Sprintf("check-%04d", i%n), Summary: "bench"}); err != nil {
			b.Fatal(err)
		}
	}

	h := a.Handler()
	// The first page of a new agent is apart: its store's pages are cold and the buffer's
	// size is not known yet. It is reported as first-ms, not in the percentiles.
	start := time.Now()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	first := time.Since(start)
	// The page as a browser gets it, read back once to hold what it shows; the pages timed
	// after are counted, not kept, so what is allocated per page is the agent's (a
	// recorder grows its buffer by doubling).
	asBrowser := func() *http.Request {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
		return req
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, asBrowser())
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Encoding") != "gzip" {
		b.Fatalf("status page: %d, Content-Encoding %q", rec.Code, rec.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		b.Fatal(err)
	}
	page, err := io.ReadAll(zr)
	if err != nil {
		b.Fatal(err)
	}
	want := min(n, overviewRows)
	if path != "/" {
		want = n
	}
	if got := bytes.Count(page, []byte(`<tr class="check"`)); got != want {
		b.Fatalf("the page shows %d check rows; want %d", got, want)
	}
	var took []time.Duration
	sent := 0
	// CPU time as well as wall time: on a shared machine the wall time of a page says as
	// much about the neighbours as about the page.
	cpuBefore := cpuTime()
	b.ResetTimer()
	for range b.N {
		req, cw := asBrowser(), &countingWriter{header: http.Header{}}
		start := time.Now()
		h.ServeHTTP(cw, req)
		took = append(took, time.Since(start))
		if cw.code != http.StatusOK || cw.header.Get("Content-Encoding") != "gzip" {
			b.Fatalf("status page: %d, Content-Encoding %q", cw.code, cw.header.Get("Content-Encoding"))
		}
		sent = cw.n
	}
	b.StopTimer()
	cpu := cpuTime() - cpuBefore
	// What the compression costs of that: the page compressed alone, the median of five.
	var zipped []time.Duration
	for range 5 {
		rec, req := httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil)
		rec.Header().Set("Content-Type", "text/html; charset=utf-8")
		req.Header.Set("Accept-Encoding", "gzip")
		start := time.Now()
		writeAnswer(rec, req, http.StatusOK, page)
		zipped = append(zipped, time.Since(start))
		if rec.Header().Get("Content-Encoding") != "gzip" {
			b.Fatalf("the page alone compressed to %d bytes, %q", rec.Body.Len(), rec.Header().Get("Content-Encoding"))
		}
	}
	slices.Sort(zipped)
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/page")
	slices.Sort(took)
	b.ReportMetric(float64(percentile(took, .50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(took, .95).Microseconds())/1000, "p95-ms")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(first.Microseconds())/1000, "first-ms")
	b.ReportMetric(float64(len(page))/1024, "page-KiB")
	b.ReportMetric(float64(sent)/1024, "sent-KiB")
	b.ReportMetric(float64(zipped[2].Microseconds())/1000, "gzip-ms")
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
