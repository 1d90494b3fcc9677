package checks_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/checks"
)

// The HTTP check path against a raw net/http keep-alive loop on the same loopback target.
// scripts/bench prints their ratio; both report CPU time per operation (user+system of the
// whole process, so the in-process target's share is included in both).

func benchTarget(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok","items":[1,2,3]}`)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}

func BenchmarkHTTPCheck(b *testing.B) {
	srv := benchTarget(b)
	c := build(b, srv.URL, `checks: [{name: bench, kind: http, request: {url: "${T}/"}, assert: ["status == 200", "json.status == 'ok'", "duration_ms < 1000"]}]`)["bench"]
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		if r := c.Run(ctx, checks.Input{}); r.Outcome != checks.Pass {
			b.Fatalf("%s %v", r.Outcome, r.Reasons)
		}
	}
	reportCPU(b, cpu)
}

func BenchmarkRawHTTP(b *testing.B) {
	srv := benchTarget(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		resp, err := client.Get(srv.URL + "/")
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
	reportCPU(b, cpu)
}
