package demo

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/agent"
	"github.com/vigil-monitor/vigil/browser"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/store"
)

// benchStage is the demo's set with a running Chromium, for benchmarks.
func benchStage(b *testing.B) (*stage, *browser.Pool) {
	b.Helper()
	pool := browser.NewPool(browser.Options{Concurrency: 2})
	b.Cleanup(func() { _ = pool.Close() })
	ctx := context.Background()
	if err := pool.Check(ctx); err != nil {
		b.Skipf("needs Chromium: %v", err)
	}
	hc := checks.NewHTTPClient("vigil-demo-bench")
	b.Cleanup(hc.CloseIdle)
	st, err := stageDemo(ctx, Options{Deps: checks.Deps{HTTP: hc, Browser: pool}, BrowserReady: pool.Check})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(st.close)
	return st, pool
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	pick := func(q float64) float64 {
		return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pick(0.5), "p50-ms")
	b.ReportMetric(pick(0.9), "p90-ms")
	b.ReportMetric(pick(1), "max-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkBrokenDeployToRollback times what the demo's headline is about: the shop's
// broken bundle is deployed and registered with the agent; the clock stops when the shop's
// rollback endpoint receives vigil's signed webhook. Each iteration is one deploy (the
// rollback puts the good version back for the next).
func BenchmarkBrokenDeployToRollback(b *testing.B) {
	st, _ := benchStage(b)
	ctx := context.Background()
	// Warm up: a good deploy verified, so Chromium is running as it would be in an agent.
	list, err := st.agent.StartDeploys(ctx, agent.DeployRequest{Service: "shop", Version: GoodVersion})
	if err != nil {
		b.Fatal(err)
	}
	if d, err := st.agent.WaitDeploy(ctx, list[0].ID, time.Minute); err != nil || d.Status != store.StatusPassed {
		b.Fatalf("warm-up deploy: %v %v", d, err)
	}
	var lat []time.Duration
	b.ResetTimer()
	for range b.N {
		before := len(st.app.Rollbacks())
		st.app.Deploy(BrokenVersion)
		start := time.Now()
		list, err := st.agent.StartDeploys(ctx, agent.DeployRequest{Service: "shop", Version: BrokenVersion})
		if err != nil {
			b.Fatal(err)
		}
		if err := waitFor(ctx, time.Minute, func() bool { return len(st.app.Rollbacks()) > before }); err != nil {
			b.Fatalf("no rollback: %v", err)
		}
		lat = append(lat, time.Since(start))
		if d, err := st.agent.WaitDeploy(ctx, list[0].ID, time.Minute); err != nil || d.Status != store.StatusFailed {
			b.Fatalf("verdict: %v %v", d, err)
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkBareLoad is the floor for the figure above: one load of the same broken page in
// a fresh isolated browser context of the same running Chromium (open the context,
// navigate, wait for the load event), with nothing judged and no evidence taken.
func BenchmarkBareLoad(b *testing.B) {
	st, pool := benchStage(b)
	st.app.Deploy(BrokenVersion)
	ctx := context.Background()
	var lat []time.Duration
	for i := range b.N + 1 {
		vctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		start := time.Now()
		_, err := pool.Visit(vctx, &browser.Visit{URL: st.app.URL + "/", Evidence: func(*browser.Report) bool { return false }})
		took := time.Since(start)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		if i > 0 { // the first visit starts Chromium
			lat = append(lat, took)
		}
	}
	reportPercentiles(b, lat)
}
