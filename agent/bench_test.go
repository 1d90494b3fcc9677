package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
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
func benchAgent(b *testing.B, yaml string, onLag func(due time.Time, lag time.Duration)) (*Agent, func()) {
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

// lagChecks is how many checks the lag benchmarks run, each every lagEvery.
const (
	lagChecks = 1000
	lagEvery  = time.Second
	lagWindow = 10 * time.Second // per b.N
	// lagGrace is how long after the window a tick due in it may still start and count.
	lagGrace = 2 * time.Second
)

// tickLog records how late each tick due inside a window started. Ticks that never start
// are what lag percentiles cannot show: a scheduler that drops late ticks would look
// punctual. Every check's ticks keep their phase, so a window of whole intervals holds
// exactly window/every ticks per check, and the ones missing from the log were skipped.
type tickLog struct {
	mu       sync.Mutex
	from, to time.Time
	lags     []time.Duration
}

// open starts the window: ticks due in [from, from+d) count.
func (l *tickLog) open(from time.Time, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.from, l.to = from, from.Add(d)
}

// started records a tick that started lag after it was due.
func (l *tickLog) started(due time.Time, lag time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.from.IsZero() || due.Before(l.from) || !due.Before(l.to) {
		return
	}
	l.lags = append(l.lags, lag)
}

// report reports the rate of started runs, the p50, p99 and max of their start lags, and
// the ticks due in the window that did not start within lagGrace after it.
func (l *tickLog) report(b *testing.B) {
	l.mu.Lock()
	defer l.mu.Unlock()
	secs := l.to.Sub(l.from).Seconds()
	due := lagChecks * int(l.to.Sub(l.from)/lagEvery)
	lags := l.lags
	slices.Sort(lags)
	b.ReportMetric(float64(len(lags))/secs, "runs/s")
	b.ReportMetric(float64(percentile(lags, .50).Microseconds())/1000, "p50-lag-ms")
	b.ReportMetric(float64(percentile(lags, .99).Microseconds())/1000, "p99-lag-ms")
	if len(lags) > 0 {
		b.ReportMetric(float64(lags[len(lags)-1].Microseconds())/1000, "max-lag-ms")
	}
	b.ReportMetric(float64(due), "ticks-due")
	b.ReportMetric(float64(due-len(lags)), "ticks-skipped")
}

// BenchmarkSchedulerLag1000 runs 1,000 HTTP checks every second against a loopback target
// for 10 seconds (per b.N) and reports how late runs start (the delay between a run's due
// time and its start, waiting for one of agent.concurrency's 32 slots included) and how
// many ticks due in those seconds never started. Each run is a whole http check: the
// request with its timings and trace context, the default assertion, the result written
// to SQLite, the metrics.
func BenchmarkSchedulerLag1000(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv.Close()
	var cfg strings.Builder
	cfg.WriteString("checks:\n")
	for i := range lagChecks {
		fmt.Fprintf(&cfg, "  - {name: c%d, kind: http, every: %s, timeout: 2s, retries: 0, request: {url: %q}}\n", i, lagEvery, srv.URL+"/")
	}
	var ticks tickLog
	_, stop := benchAgent(b, cfg.String(), ticks.started)
	b.ResetTimer()
	window := time.Duration(b.N) * lagWindow
	ticks.open(time.Now(), window)
	time.Sleep(window + lagGrace) // the measurement: the agent runs for the window
	b.StopTimer()
	stop()
	ticks.report(b)
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

// BenchmarkRawTimerLag1000 is the baseline for BenchmarkSchedulerLag1000, and much less
// than an agent: 1,000 goroutines, each with its own time.Timer, first due at a uniformly
// random offset within the first second (as the scheduler spreads checks) and then every
// second; each tick waits for one of 32 slots (agent.concurrency's default), records its
// lag, and makes one bare GET to the same kind of loopback target with a plain net/http
// client, body drained and closed: no assertion, no timings, no result stored, no
// metrics. A tick that comes late runs late and is never skipped. It is what Go's timers
// and net/http alone give on this machine under the same load.
func BenchmarkRawTimerLag1000(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	var ticks tickLog
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32) // the agent's default concurrency
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	start := time.Now()
	window := time.Duration(b.N) * lagWindow
	ticks.open(start, window)
	for range lagChecks {
		next := start.Add(time.Duration(rng.Int64N(int64(lagEvery))))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				t := time.NewTimer(time.Until(next))
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				ticks.started(next, time.Since(next))
				if resp, err := client.Get(srv.URL); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				<-sem
				next = next.Add(lagEvery)
			}
		}()
	}
	time.Sleep(window + lagGrace) // the measurement: the timers run for the window
	cancel()
	wg.Wait()
	b.StopTimer()
	ticks.report(b)
}
