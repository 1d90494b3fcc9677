package main

// The vigil side of a round: the agent as a process, and what it reports.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runVigil runs `vigil agent` on sc's checks and measures its window. It also writes one
// stored run's row, as JSON, for the floor to insert.
func runVigil(vigil, dir, url string, sc scenario, profile string) (measured, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return measured{}, "", err
	}
	addr, err := freeAddr()
	if err != nil {
		return measured{}, "", err
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "agent: {listen: %q}\nstore: {dsn: vigil.db}\nchecks:\n", addr)
	tlsOpts := ""
	if sc.tls {
		tlsOpts = fmt.Sprintf(", tls: {ca_file: %q}", targetCA)
	}
	for i := range sc.checks {
		fmt.Fprintf(&cfg, "  - {name: c%d, kind: http, every: %s, timeout: 2s, retries: 0, request: {url: %q%s}}\n", i, sc.every, url, tlsOpts)
	}
	path := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		return measured{}, "", err
	}
	args := []string{"agent", "--config", path, "--log-level", "warn"}
	if profile != "" {
		args = append(args, "--pprof")
	}
	cmd := exec.Command(vigil, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if *vigilEnv != "" {
		cmd.Env = append(os.Environ(), *vigilEnv)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return measured{}, "", err
	}
	stop := stopper(cmd)
	defer func() { _ = stop() }()
	base := "http://" + addr
	if err := waitReady(base+"/readyz", 30*time.Second); err != nil {
		return measured{}, "", err
	}
	time.Sleep(time.Until(start.Add(sc.warm)))
	lag0, err := lagHistogram(base + "/metrics")
	if err != nil {
		return measured{}, "", err
	}
	from := time.Now()
	cpu0, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return measured{}, "", err
	}
	var profDone chan error
	if profile != "" {
		profDone = make(chan error, 1)
		go func() {
			profDone <- fetch(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, int(sc.window.Seconds())-1), profile)
		}()
	}
	time.Sleep(sc.window)
	cpu1, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return measured{}, "", err
	}
	to := time.Now()
	rss, anon, peak := procMem(cmd.Process.Pid)
	scrapeStart := time.Now()
	lag1, err := lagHistogram(base + "/metrics")
	if err != nil {
		return measured{}, "", err
	}
	scrape := time.Since(scrapeStart)
	// Someone looks at the status page, after the window (its figures are the checks'
	// alone): the page is megabytes at a thousand checks, the agent's largest answer.
	view, viewBytes, err := viewPage(base+"/", pageViews)
	if err != nil {
		return measured{}, "", fmt.Errorf("status page: %w", err)
	}
	_, _, viewPeak := procMem(cmd.Process.Pid)
	// Then several at once, as an incident room's screens do.
	viewAtOnce, err := viewPageAtOnce(base+"/", viewsAtOnce)
	if err != nil {
		return measured{}, "", fmt.Errorf("status page, %d at once: %w", viewsAtOnce, err)
	}
	_, _, atOncePeak := procMem(cmd.Process.Pid)
	if profDone != nil {
		if err := <-profDone; err != nil {
			return measured{}, "", fmt.Errorf("profile: %w", err)
		}
		// The allocations since the start, beside the CPU profile (go tool pprof -sample_index=alloc_space).
		if err := fetch(base+"/debug/pprof/allocs", profile+".allocs"); err != nil {
			return measured{}, "", fmt.Errorf("allocation profile: %w", err)
		}
	}
	if err := stop(); err != nil {
		return measured{}, "", fmt.Errorf("vigil agent: %w", err)
	}
	db := filepath.Join(dir, "vigil.db")
	runs, err := countRuns(db, from, to)
	if err != nil {
		return measured{}, "", err
	}
	missing, err := missingRuns(db, from, to, sc.checks, sc.every)
	if err != nil {
		return measured{}, "", err
	}
	samplePath := filepath.Join(dir, "sample.json")
	if err := saveSample(db, samplePath); err != nil {
		return measured{}, "", err
	}
	return measured{cpu: cpu1 - cpu0, runs: runs, due: due(sc, to.Sub(from)), missing: missing, rssKiB: rss, anonKiB: anon, peakKiB: peak,
		p99Lag: lag1.minus(lag0).quantile(.99), profiled: profile != "", scrape: scrape, scrapeBytes: lag1.bytes,
		skipped: int(lag1.minus(lag0).skips), view: view, viewBytes: viewBytes, viewPeakKiB: viewPeak,
		viewAtOnce: viewAtOnce, atOncePeakKiB: atOncePeak}, samplePath, nil
}

// pageViews is how many times the status page is asked for after the window, one after
// the other; viewsAtOnce how many readers ask for it at once after those.
const (
	pageViews   = 3
	viewsAtOnce = 4
)

func due(sc scenario, window time.Duration) int {
	return int(float64(sc.checks) * window.Seconds() / sc.every.Seconds())
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitReady(url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %s", url, within)
}

func fetch(url, to string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// histogram is vigil_scheduler_start_lag_seconds: cumulative counts by upper bound.
type histogram struct {
	bounds []float64
	counts []float64
	bytes  int     // of the whole scrape
	skips  float64 // vigil_scheduler_skipped_runs_total, summed over checks
}

func lagHistogram(url string) (histogram, error) {
	resp, err := http.Get(url)
	if err != nil {
		return histogram{}, err
	}
	defer resp.Body.Close()
	var h histogram
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	const prefix = `vigil_scheduler_start_lag_seconds_bucket{le="`
	for sc.Scan() {
		line := sc.Text()
		h.bytes += len(line) + 1
		if strings.HasPrefix(line, "vigil_scheduler_skipped_runs_total{") {
			if f := strings.Fields(line); len(f) >= 2 {
				n, _ := strconv.ParseFloat(f[len(f)-1], 64)
				h.skips += n
			}
		}
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		le, value, _ := strings.Cut(rest, `"} `)
		bound, err := strconv.ParseFloat(le, 64)
		if le == "+Inf" {
			bound, err = 1e9, nil
		}
		if err != nil {
			return h, fmt.Errorf("bucket %q: %w", line, err)
		}
		n, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			return h, fmt.Errorf("bucket %q: %w", line, err)
		}
		h.bounds, h.counts = append(h.bounds, bound), append(h.counts, n)
	}
	if len(h.bounds) == 0 {
		return h, errors.New("no vigil_scheduler_start_lag_seconds in /metrics")
	}
	return h, sc.Err()
}

func (h histogram) minus(o histogram) histogram {
	d := histogram{bounds: h.bounds, counts: slices.Clone(h.counts), bytes: h.bytes, skips: h.skips - o.skips}
	for i := range d.counts {
		if i < len(o.counts) {
			d.counts[i] -= o.counts[i]
		}
	}
	return d
}

// quantile interpolates inside the bucket, as PromQL's histogram_quantile does.
func (h histogram) quantile(q float64) time.Duration {
	if len(h.counts) == 0 || h.counts[len(h.counts)-1] == 0 {
		return 0
	}
	rank := q * h.counts[len(h.counts)-1]
	lower, below := 0.0, 0.0
	for i, c := range h.counts {
		if c >= rank {
			upper := h.bounds[i]
			if upper >= 1e9 {
				upper = lower
			}
			frac := 0.0
			if c > below {
				frac = (rank - below) / (c - below)
			}
			return time.Duration((lower + (upper-lower)*frac) * float64(time.Second))
		}
		lower, below = h.bounds[i], c
	}
	return 0
}

// emptyAgent runs `vigil agent` with no checks for settle and returns its RSS and private
// memory in KiB: what an agent costs before its checks (the rest of RSS is the binary's
// pages mapped from its file).
func emptyAgent(vigil, dir string, settle time.Duration) (rss, anon int, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, 0, err
	}
	addr, err := freeAddr()
	if err != nil {
		return 0, 0, err
	}
	path := filepath.Join(dir, "vigil.yaml")
	cfg := fmt.Sprintf("agent: {listen: %q}\nstore: {dsn: vigil.db}\nchecks: []\n", addr)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return 0, 0, err
	}
	cmd := exec.Command(vigil, "agent", "--config", path, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	if err := waitReady("http://"+addr+"/readyz", 30*time.Second); err != nil {
		return 0, 0, err
	}
	time.Sleep(settle)
	rss, anon, _ = procMem(cmd.Process.Pid)
	return rss, anon, nil
}
