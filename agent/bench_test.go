package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// benchAgent starts an in-process agent on yaml for a benchmark.
func benchAgent(b *testing.B, yaml string, onLag func(time.Duration)) (*Agent, func()) {
	b.Helper()
	l := launch(b, b.TempDir(), yaml, Options{Logger: slog.New(slog.DiscardHandler), OnLag: onLag})
	return l.a, func() {
		if err := l.stop(); err != nil {
			b.Error(err)
		}
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// BenchmarkSchedulerLag1000 runs 1,000 HTTP checks every second against a loopback target
// for 10 seconds (per b.N) and reports how late runs start: p50 and p99 of the delay
// between a run's scheduled time and its start, waiting for a concurrency slot included.
func BenchmarkSchedulerLag1000(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv.Close()
	var cfg strings.Builder
	cfg.WriteString("checks:\n")
	for i := range 1000 {
		fmt.Fprintf(&cfg, "  - {name: c%d, kind: http, every: 1s, timeout: 2s, retries: 0, request: {url: %q}}\n", i, srv.URL+"/")
	}
	var mu sync.Mutex
	var lags []time.Duration
	a, stop := benchAgent(b, cfg.String(), func(d time.Duration) {
		mu.Lock()
		lags = append(lags, d)
		mu.Unlock()
	})
	b.ResetTimer()
	for range b.N {
		time.Sleep(10 * time.Second)
	}
	b.StopTimer()
	stop()
	_ = a
	mu.Lock()
	defer mu.Unlock()
	reportLags(b, lags, float64(b.N)*10)
}

// reportLags reports the rate and the p50, p99 and max of start lags measured over secs.
func reportLags(b *testing.B, lags []time.Duration, secs float64) {
	slices.Sort(lags)
	b.ReportMetric(float64(len(lags))/secs, "runs/s")
	b.ReportMetric(float64(percentile(lags, .50).Microseconds())/1000, "p50-lag-ms")
	b.ReportMetric(float64(percentile(lags, .99).Microseconds())/1000, "p99-lag-ms")
	b.ReportMetric(float64(lags[len(lags)-1].Microseconds())/1000, "max-lag-ms")
}

// BenchmarkDeployToFailedVerdict measures the time from registering a deploy that broke
// the service to its failed verdict being recorded (fail fast: one check run).
func BenchmarkDeployToFailedVerdict(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	defer srv.Close()
	a, stop := benchAgent(b, fmt.Sprintf(`
checks:
  - {name: home, kind: http, every: 1h, retries: 0, request: {url: %q}, assert: ["status == 200"]}
  - {name: api, kind: http, every: 1h, retries: 0, request: {url: %q}, assert: ["status == 200"]}
services:
  web: {checks: [home, api], verify: {interval: 30s, count: 10}}
`, srv.URL+"/", srv.URL+"/api"), nil)
	defer stop()
	ctx := context.Background()
	var took []time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		list, err := a.StartDeploys(ctx, DeployRequest{Service: "web", Version: fmt.Sprint("v", i)})
		if err != nil {
			b.Fatal(err)
		}
		d, err := a.WaitDeploy(ctx, list[0].ID, time.Minute)
		if err != nil || d.Status != store.StatusFailed {
			b.Fatalf("verdict %v %v", d, err)
		}
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(percentile(took, .50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(took, .99).Microseconds())/1000, "p99-ms")
}

// BenchmarkRawTimerLag1000 is the baseline for BenchmarkSchedulerLag1000: 1,000 goroutines,
// each on its own time.Ticker, make the same loopback GET every second with a plain
// net/http client, and report how late each tick's work starts. It is what Go's timers
// alone give on this machine under the same load.
func BenchmarkRawTimerLag1000(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 2 * time.Second}
	var mu sync.Mutex
	var lags []time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	start := time.Now()
	sem := make(chan struct{}, 32) // the agent's default concurrency
	b.ResetTimer()
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			offset := time.Duration(i) * time.Millisecond // spread like the agent's offsets
			next := start.Add(offset)
			for {
				t := time.NewTimer(time.Until(next))
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				sem <- struct{}{}
				lag := time.Since(next)
				mu.Lock()
				lags = append(lags, lag)
				mu.Unlock()
				if resp, err := client.Get(srv.URL); err == nil {
					resp.Body.Close()
				}
				<-sem
				next = next.Add(time.Second)
			}
		}()
	}
	time.Sleep(time.Duration(b.N) * 10 * time.Second)
	cancel()
	wg.Wait()
	b.StopTimer()
	reportLags(b, lags, float64(b.N)*10)
}
