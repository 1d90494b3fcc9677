package checks_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/tracing"
)

// The HTTP check path against a raw net/http keep-alive loop on the same loopback target.
// scripts/bench http prints their ratio. The target runs in another process (this test
// binary, started again as a server), so the CPU time each benchmark reports
// (user+system of this process, per operation) is the client's alone.

// benchTargetEnv, set in a child's environment, makes the test binary a bench target.
const benchTargetEnv = "VIGIL_BENCH_TARGET_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(benchTargetEnv) == "1" {
		serveBenchTarget()
		return
	}
	os.Exit(m.Run())
}

// serveBenchTarget answers every request with a small JSON body on a loopback port,
// prints the address on stdout, and exits when stdin closes (the benchmark ended or died).
func serveBenchTarget() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	var sessions atomic.Int64
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/session" { // a new session cookie on every answer, as many apps and load balancers set
			w.Header().Set("Set-Cookie", fmt.Sprintf("session=%d-%d; Path=/; HttpOnly", sessions.Add(1), time.Now().UnixNano()))
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok","items":[1,2,3]}`)
	}))
}

// benchTarget starts the target process and returns its URL.
func benchTarget(b *testing.B) string {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), benchTargetEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("the target process did not say its address: %v", err)
	}
	return "http://" + strings.TrimSpace(addr)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}

// BenchmarkHTTPCheck runs the check as the agent's scheduled runs do: the transcript is
// made only when a run fails.
func BenchmarkHTTPCheck(b *testing.B) {
	benchHTTPCheck(b, `checks: [{name: bench, kind: http, request: {url: "${T}/"}, assert: ["status == 200", "json.status == 'ok'", "duration_ms < 1000"]}]`)
}

// BenchmarkHTTPCheckSecrets is BenchmarkHTTPCheck with two credential headers, as most
// real checks of an API send one: the run masks their values (and their escaped forms) in
// what it keeps, with the config's secrets.
func BenchmarkHTTPCheckSecrets(b *testing.B) {
	benchHTTPCheck(b, `checks: [{name: bench, kind: http, request: {url: "${T}/", headers: {Authorization: "Bearer s3cr3t-token/with+chars=", X-Api-Key: "k3y-with spaces&more"}}, assert: ["status == 200", "json.status == 'ok'", "duration_ms < 1000"]}]`)
}

// BenchmarkHTTPCheckSession is BenchmarkHTTPCheckSecrets against an answer that sets a new
// session cookie each time, in a config of thirty checks, each with its own API key: each
// run learns the cookie as a secret on top of the config's thirty.
func BenchmarkHTTPCheckSession(b *testing.B) {
	var cfg strings.Builder
	cfg.WriteString(`checks: [{name: bench, kind: http, request: {url: "${T}/session", headers: {Authorization: "Bearer s3cr3t-token/with+chars=", X-Api-Key: "k3y-with spaces&more"}}, assert: ["status == 200", "json.status == 'ok'", "duration_ms < 1000"]}`)
	for i := range 29 {
		fmt.Fprintf(&cfg, `, {name: other-%02d, kind: http, request: {url: "${T}/", headers: {X-Api-Key: "k3y-%02d-of-another/service"}}}`, i, i)
	}
	cfg.WriteString(`]`)
	benchHTTPCheck(b, cfg.String())
}

func benchHTTPCheck(b *testing.B, cfg string) {
	c := build(b, benchTarget(b), cfg)["bench"]
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		if r := c.Run(ctx, checks.Input{TranscriptOnFailure: true}); r.Outcome != checks.Pass || r.Transcript != nil {
			b.Fatalf("%s %v", r.Outcome, r.Reasons)
		}
	}
	reportCPU(b, cpu)
}

func BenchmarkRawHTTP(b *testing.B) {
	url := benchTarget(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		resp, err := client.Get(url + "/")
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

// discardSpans is an exporter that drops what it is given: the tracing benchmarks measure
// making, batching and handing spans over, not a collector.
type discardSpans struct{}

func (discardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpans) Shutdown(context.Context) error                             { return nil }

// benchTracing runs the same check as a scheduled run would (RunWithRetries), with tracing
// on (a span per run and per request, traceparent on the wire, spans batched to an
// exporter) or off. scripts/bench tracing prints their ratio.
func benchTracing(b *testing.B, on bool) {
	url := benchTarget(b)
	hc := checks.NewHTTPClient("vigil-bench")
	b.Cleanup(hc.CloseIdle)
	deps := checks.Deps{HTTP: hc}
	if on {
		tr, err := tracing.New(context.Background(), configs.Tracing{}, tracing.Options{Exporter: discardSpans{}, Environ: []string{}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
		hc.Wrap, deps.Tracing = tr.Transport, tr
	}
	c := buildDeps(b, deps, url, `checks: [{name: bench, kind: http, request: {url: "${T}/"}, assert: ["status == 200", "json.status == 'ok'", "duration_ms < 1000"]}]`)["bench"]
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		if r := checks.RunWithRetries(ctx, c, checks.Input{TranscriptOnFailure: true}, checks.Retry{}); r.Outcome != checks.Pass || (on && r.TraceID == "") {
			b.Fatalf("%s %v (trace %q)", r.Outcome, r.Reasons, r.TraceID)
		}
	}
	reportCPU(b, cpu)
}

func BenchmarkHTTPCheckTracingOff(b *testing.B) { benchTracing(b, false) }
func BenchmarkHTTPCheckTracingOn(b *testing.B)  { benchTracing(b, true) }
