package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/pgtest"
	"github.com/vigil-monitor/vigil/store"
)

// BenchmarkAgentsStore runs three in-process agents in three locations, each with
// VIGIL_BENCH_CHECKS HTTP checks (default 300) every second against one loopback target,
// for 10 seconds per b.N: on SQLite (a file per agent) and on one shared PostgreSQL. It
// reports the CPU of this process (the three agents, their SQLite, and the target, the
// same in both) per check run, and PostgreSQL's own CPU per check run.
func BenchmarkAgentsStore(b *testing.B) {
	n := 300
	if v, err := strconv.Atoi(os.Getenv("VIGIL_BENCH_CHECKS")); err == nil && v > 0 {
		n = v
	}
	for _, driver := range []string{"sqlite", "postgres"} {
		b.Run(driver, func(b *testing.B) { benchAgentsStore(b, driver, n) })
	}
}

func benchAgentsStore(b *testing.B, driver string, checks int) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv.Close()
	var dsn string
	if driver == "postgres" {
		dsn = pgtest.Start(b, pgtest.Options{Durable: true}).Database(b)
	}
	var runs atomic.Int64
	var stops []func()
	for _, loc := range []string{"eu", "us", "ap"} {
		var cfg strings.Builder
		fmt.Fprintf(&cfg, "agent: {location: %s, name: bench-%s}\n", loc, loc)
		var st Store
		if driver == "postgres" {
			fmt.Fprintf(&cfg, "store: {driver: postgres, dsn: %q}\n", dsn)
			pg, err := store.OpenPostgres(context.Background(), dsn, store.PoolOptions{MaxConns: 8})
			if err != nil {
				b.Fatal(err)
			}
			defer pg.Close()
			st = pg
		}
		cfg.WriteString("checks:\n")
		for i := range checks {
			fmt.Fprintf(&cfg, "  - {name: c%d, kind: http, every: 1s, timeout: 2s, retries: 0, request: {url: %q}}\n", i, srv.URL+"/")
		}
		l := launch(b, b.TempDir(), cfg.String(), Options{Store: st, Logger: slog.New(slog.DiscardHandler),
			OnLag: func(time.Time, time.Duration) { runs.Add(1) }})
		stops = append(stops, func() {
			if err := l.stop(); err != nil {
				b.Error(err)
			}
		})
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	time.Sleep(2 * time.Second) // every check has had its first run and the writers their first batches
	b.ResetTimer()
	startRuns, startCPU, startPG := runs.Load(), selfCPU(), postgresCPU()
	time.Sleep(time.Duration(b.N) * 10 * time.Second)
	done := float64(runs.Load() - startRuns)
	cpu, pg := selfCPU()-startCPU, postgresCPU()-startPG
	b.StopTimer()
	b.ReportMetric(done/(float64(b.N)*10), "runs/s")
	b.ReportMetric(float64(cpu.Microseconds())/done, "agent-cpu-µs/check")
	b.ReportMetric(float64(pg.Microseconds())/done, "postgres-cpu-µs/check")
}

// selfCPU is this process's user and system CPU so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// postgresCPU is the CPU so far of the throwaway clusters' processes (postmasters whose
// command line names a pgtest folder, and their children), read from /proc.
func postgresCPU() time.Duration {
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	ticks := map[int]int64{}
	roots := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(fields) < 13 {
			continue
		}
		parent[pid], _ = strconv.Atoi(fields[1])
		ut, _ := strconv.ParseInt(fields[11], 10, 64)
		st, _ := strconv.ParseInt(fields[12], 10, 64)
		ticks[pid] = ut + st
		if cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); strings.Contains(string(cmd), "vigil-pgtest") {
			roots[pid] = true
		}
	}
	var total int64
	for pid, t := range ticks {
		if roots[pid] || roots[parent[pid]] {
			total += t
		}
	}
	return time.Duration(total) * time.Second / 100 // USER_HZ
}
