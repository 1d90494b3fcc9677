// Command benchload measures what a running `vigil agent` costs with many scheduled HTTP
// checks: CPU per check, memory, start lag and runs that never happened. Beside each figure
// it measures a floor in the same run, on the same machine, against the same target: a plain
// Go process that does the least the same schedule needs (a timer per check, 32 requests at
// once over kept-alive connections, the body read, and the same rows inserted into a SQLite
// store of vigil's schema in one transaction every 100 ms, through a prepared statement).
//
// Each process runs alone (vigil, then the floor, then again): the target is a third
// process, so the CPU counted is the client's alone. CPU and memory are read from /proc; the
// runs are counted in each process's store after it stopped, so a run that was not stored
// does not count. scripts/bench load runs it.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

var vigilEnv *string

// scenario is one row of the table: checks every interval, measured for window after warm.
type scenario struct {
	name         string
	checks       int
	every        time.Duration
	warm, window time.Duration
	goal         string
}

var scenarios = []scenario{
	{name: "busy", checks: 1000, every: time.Second, warm: 6 * time.Second, window: 20 * time.Second,
		goal: "CPU per check <= 0.15 ms, RSS <= 40 MiB"},
	{name: "idle", checks: 100, every: 30 * time.Second, warm: 35 * time.Second, window: 60 * time.Second,
		goal: "RSS <= 25 MiB, CPU <= 0.5% of a core"},
	{name: "10k", checks: 10000, every: 10 * time.Second, warm: 25 * time.Second, window: 40 * time.Second,
		goal: "start lag p99 <= 50 ms, no skipped runs, RSS <= 100 MiB"},
}

func main() {
	serve := flag.Bool("serve", false, "(internal) serve the target and print its URL")
	bare := flag.Int("bare", 0, "(internal) make this many requests back to back to -target and print the CPU per request")
	floorDB := flag.String("floor", "", "(internal) run the floor, storing into this database")
	sample := flag.String("sample", "", "(internal, floor) a JSON file with the row to insert")
	checks := flag.Int("checks", 1000, "(internal, floor) checks")
	every := flag.Duration("every", time.Second, "(internal, floor) interval")
	target := flag.String("target", "", "(internal, floor) URL")
	from := flag.Int64("from", 0, "(internal, floor) window start, Unix ns")
	to := flag.Int64("to", 0, "(internal, floor) window end, Unix ns")

	vigil := flag.String("vigil", "", "the vigil binary")
	only := flag.String("scenario", "all", "busy, idle, 10k or all")
	rounds := flag.Int("rounds", 3, "rounds of each (vigil then floor); the medians are printed")
	vigilEnv = flag.String("env", "", "an environment variable to run vigil with, e.g. GOMEMLIMIT=90MiB")
	profile := flag.String("profile", "", "write a CPU profile of vigil's last busy window to this file (it costs a little CPU)")
	flag.Parse()
	log.SetFlags(0)
	switch {
	case *serve:
		serveTarget()
	case *bare > 0:
		if err := bareLoop(*target, *bare); err != nil {
			log.Fatal(err)
		}
	case *floorDB != "":
		if err := runFloor(*floorDB, *sample, *checks, *every, *target, time.Unix(0, *from), time.Unix(0, *to)); err != nil {
			log.Fatal(err)
		}
	default:
		if *vigil == "" {
			log.Fatal("benchload: -vigil PATH is required")
		}
		if err := bench(*vigil, *only, *rounds, *profile); err != nil {
			log.Fatal(err)
		}
	}
}

// serveTarget answers every request with a short 200 over kept-alive connections.
func serveTarget() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("http://%s/\n", ln.Addr())
	go func() { // the parent closes stdin (or dies): stop
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	body := []byte("ok")
	log.Fatal(http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	})))
}

// measured is one process's figures over one window.
type measured struct {
	cpu      time.Duration // user + system over the window
	runs     int           // stored runs that started in the window
	due      int           // runs due in the window
	rssKiB   int           // at the end of the window
	anonKiB  int           // of which private memory (the rest: the binary's pages, shared and reclaimable)
	peakKiB  int           // VmHWM
	p99Lag   time.Duration
	profiled bool
	// scrape is how long a /metrics scrape took (after the window), scrapeBytes its size
	scrape      time.Duration
	scrapeBytes int
	skipped     int // vigil_scheduler_skipped_runs_total over the window
}

func (m measured) perCheck() time.Duration {
	if m.runs == 0 {
		return 0
	}
	return m.cpu / time.Duration(m.runs)
}

func bench(vigil, only string, rounds int, profile string) error {
	tmp, err := os.MkdirTemp("", "benchload")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tgt := exec.Command(self, "-serve")
	tgt.Stderr = os.Stderr
	stdin, _ := tgt.StdinPipe()
	out, _ := tgt.StdoutPipe()
	if err := tgt.Start(); err != nil {
		return err
	}
	defer func() { stdin.Close(); _ = tgt.Wait() }()
	url, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	url = strings.TrimSpace(url)

	if bare, err := bareCost(self, url); err == nil {
		fmt.Printf("== for scale: one kept-alive connection, 20,000 requests back to back (no timers, no concurrency, nothing stored): %.3f ms CPU per request\n", bare/1000)
	} else {
		return err
	}
	for _, sc := range scenarios {
		if only != "all" && only != sc.name {
			continue
		}
		fmt.Printf("== %d HTTP checks every %s, a %s window after %s (load average %s); goal: %s\n",
			sc.checks, sc.every, sc.window, sc.warm, loadavg(), sc.goal)
		var vs, fs []measured
		for r := range rounds {
			dir := filepath.Join(tmp, fmt.Sprintf("%s-%d", sc.name, r))
			prof := ""
			if profile != "" && sc.name == "busy" && r == rounds-1 {
				prof = profile
			}
			v, samplePath, err := runVigil(vigil, dir, url, sc, prof)
			if err != nil {
				return err
			}
			f, err := runFloorProcess(self, dir, samplePath, url, sc)
			if err != nil {
				return err
			}
			vs, fs = append(vs, v), append(fs, f)
			fmt.Printf("   round %d: vigil %s | floor %s\n", r+1, v, f)
		}
		v, f := median(vs), median(fs)
		var cpuRatios []float64 // each round's vigil against the floor measured beside it
		for i := range vs {
			cpuRatios = append(cpuRatios, ratio(float64(vs[i].perCheck()), float64(fs[i].perCheck())))
		}
		slices.Sort(cpuRatios)
		fmt.Printf("  %-6s %s\n", "vigil", v)
		fmt.Printf("  %-6s %s\n", "floor", f)
		fmt.Printf("  ratio (vigil / floor): CPU per check %.2fx (per round %.2f-%.2fx), RSS %.2fx, private memory %.2fx  (medians of %d)\n",
			cpuRatios[(len(cpuRatios)-1)/2], cpuRatios[0], cpuRatios[len(cpuRatios)-1], ratio(float64(v.rssKiB), float64(f.rssKiB)),
			ratio(float64(v.anonKiB), float64(f.anonKiB)), rounds)
		fmt.Printf("  vigil: CPU per check %.3f ms, %.2f%% of a core, RSS %.1f MiB (%.1f private), start lag p99 %.1f ms, %d of %d due runs not stored\n",
			ms(v.perCheck()), 100*v.cpu.Seconds()/sc.window.Seconds(), mib(v.rssKiB), mib(v.anonKiB), ms(v.p99Lag), max(v.due-v.runs, 0), v.due)
		fmt.Printf("  vigil: %d runs skipped in the window (vigil_scheduler_skipped_runs_total); a /metrics scrape after it: %.1f MB in %s\n",
			v.skipped, float64(v.scrapeBytes)/1e6, v.scrape.Round(time.Millisecond))
	}
	return nil
}

func (m measured) String() string {
	return fmt.Sprintf("%6.3f ms CPU/check (%5d of %5d runs, %6.2f s CPU)  RSS %5.1f MiB (%5.1f private, peak %5.1f)  lag p99 %6.1f ms",
		ms(m.perCheck()), m.runs, m.due, m.cpu.Seconds(), mib(m.rssKiB), mib(m.anonKiB), mib(m.peakKiB), ms(m.p99Lag))
}

func mib(kib int) float64 { return float64(kib) / 1024 }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// median takes each figure's median on its own.
func median(ms []measured) measured {
	pick := func(f func(measured) int64) int64 {
		v := make([]int64, len(ms))
		for i, m := range ms {
			v[i] = f(m)
		}
		slices.Sort(v)
		return v[(len(v)-1)/2]
	}
	// CPU per check is the median of the ratio, not the ratio of medians: pick the round.
	sorted := slices.Clone(ms)
	slices.SortFunc(sorted, func(a, b measured) int { return int(a.perCheck() - b.perCheck()) })
	m := sorted[(len(sorted)-1)/2]
	m.rssKiB = int(pick(func(m measured) int64 { return int64(m.rssKiB) }))
	m.anonKiB = int(pick(func(m measured) int64 { return int64(m.anonKiB) }))
	m.peakKiB = int(pick(func(m measured) int64 { return int64(m.peakKiB) }))
	m.p99Lag = time.Duration(pick(func(m measured) int64 { return int64(m.p99Lag) }))
	return m
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

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
	for i := range sc.checks {
		fmt.Fprintf(&cfg, "  - {name: c%d, kind: http, every: %s, timeout: 2s, retries: 0, request: {url: %q}}\n", i, sc.every, url)
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
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		return cmd.Wait()
	}
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
	if profDone != nil {
		if err := <-profDone; err != nil {
			return measured{}, "", fmt.Errorf("profile: %w", err)
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
	samplePath := filepath.Join(dir, "sample.json")
	if err := saveSample(db, samplePath); err != nil {
		return measured{}, "", err
	}
	return measured{cpu: cpu1 - cpu0, runs: runs, due: due(sc, to.Sub(from)), rssKiB: rss, anonKiB: anon, peakKiB: peak,
		p99Lag: lag1.minus(lag0).quantile(.99), profiled: profile != "", scrape: scrape, scrapeBytes: lag1.bytes,
		skipped: int(lag1.minus(lag0).skips)}, samplePath, nil
}

func due(sc scenario, window time.Duration) int {
	return int(float64(sc.checks) * window.Seconds() / sc.every.Seconds())
}

func runFloorProcess(self, dir, sample, url string, sc scenario) (measured, error) {
	db := filepath.Join(dir, "floor.db")
	start := time.Now()
	from, to := start.Add(sc.warm), start.Add(sc.warm+sc.window)
	cmd := exec.Command(self, "-floor", db, "-sample", sample, "-checks", strconv.Itoa(sc.checks), "-every", sc.every.String(),
		"-target", url, "-from", strconv.FormatInt(from.UnixNano(), 10), "-to", strconv.FormatInt(to.UnixNano(), 10))
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return measured{}, err
	}
	time.Sleep(time.Until(from))
	cpu0, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return measured{}, err
	}
	time.Sleep(time.Until(to))
	cpu1, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return measured{}, err
	}
	rss, anon, peak := procMem(cmd.Process.Pid)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	var rep floorReport
	if err := json.NewDecoder(out).Decode(&rep); err != nil {
		return measured{}, fmt.Errorf("floor report: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		return measured{}, fmt.Errorf("floor: %w", err)
	}
	runs, err := countRuns(db, from, to)
	if err != nil {
		return measured{}, err
	}
	return measured{cpu: cpu1 - cpu0, runs: runs, due: due(sc, sc.window), rssKiB: rss, anonKiB: anon, peakKiB: peak, p99Lag: rep.P99}, nil
}

// bareLoop is the least a request costs: one kept-alive connection, requests back to back,
// no timers, no concurrency, nothing stored. It prints the CPU per request in µs.
func bareLoop(target string, n int) error {
	client := &http.Client{Timeout: 2 * time.Second}
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	for range n {
		resp, err := client.Get(target)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	fmt.Printf("%.1f\n", float64(cpu.Nanoseconds())/1000/float64(n))
	return nil
}

// bareCost runs bareLoop in a process of its own.
func bareCost(self, target string) (float64, error) {
	out, err := exec.Command(self, "-bare", "20000", "-target", target).Output()
	if err != nil {
		return 0, fmt.Errorf("bare loop: %w", err)
	}
	return strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
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

// procCPU is the user and system time pid has used (/proc/PID/stat, clock ticks of 10 ms).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// the command name may hold spaces: fields count from the last ')'
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// procMem is pid's resident set, its private (anonymous) part and its peak, in KiB.
func procMem(pid int) (rss, anon, peak int) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss, _ = strconv.Atoi(f[1])
		case "VmHWM:":
			peak, _ = strconv.Atoi(f[1])
		case "RssAnon:":
			anon, _ = strconv.Atoi(f[1])
		}
	}
	return rss, anon, peak
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

// countRuns counts the runs stored in the database at path that started in [from, to).
func countRuns(path string, from, to time.Time) (int, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	err = db.QueryRow(`SELECT count(*) FROM runs WHERE started_at >= ? AND started_at < ?`, from.UnixNano(), to.UnixNano()).Scan(&n)
	return n, err
}

// row is a stored run's columns the floor inserts again.
type row struct {
	Kind, Outcome, Reasons, Vars, Transcript string
}

func saveSample(db, to string) error {
	d, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		return err
	}
	defer d.Close()
	var r row
	if err := d.QueryRow(`SELECT kind, outcome, reasons, vars, transcript FROM runs ORDER BY id DESC LIMIT 1`).
		Scan(&r.Kind, &r.Outcome, &r.Reasons, &r.Vars, &r.Transcript); err != nil {
		return fmt.Errorf("a sample run from %s: %w", db, err)
	}
	b, _ := json.Marshal(r)
	return os.WriteFile(to, b, 0o644)
}

type floorReport struct {
	P99 time.Duration
}

// runFloor is the floor: a timer per check, first due at an even spread over the first
// interval (as vigil spreads checks), 32 requests at once through one kept-alive client, and
// the rows inserted every 100 ms in one transaction through a prepared statement. It runs
// until SIGTERM, then prints the p99 start lag of the ticks due in [from, to) as JSON.
func runFloor(path, samplePath string, checks int, every time.Duration, target string, from, to time.Time) error {
	b, err := os.ReadFile(samplePath)
	if err != nil {
		return err
	}
	var sample row
	if err := json.Unmarshal(b, &sample); err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	if p := os.Getenv("BENCHLOAD_FLOOR_PROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	st, err := store.Open(ctx, path) // vigil's schema and indexes, then closed: the floor writes with plain SQL
	if err != nil {
		return err
	}
	st.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		return err
	}
	defer db.Close()

	results := make(chan done, 4096)
	lags := make(chan time.Duration, 4096)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 2 * time.Second}
	sem := make(chan struct{}, 32)
	start := time.Now()
	for i := range checks {
		name := "c" + strconv.Itoa(i)
		next := start.Add(time.Duration(int64(every) * int64(i) / int64(checks)))
		go func() {
			t := time.NewTimer(time.Until(next))
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				began := time.Now()
				if !next.Before(from) && next.Before(to) {
					lags <- began.Sub(next)
				}
				if resp, err := client.Get(target); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				<-sem
				results <- done{check: name, started: began, duration: time.Since(began)}
				next = next.Add(every)
				t.Reset(time.Until(next))
			}
		}()
	}
	var all []time.Duration
	tick := time.NewTicker(100 * time.Millisecond)
	var batch []done
	for {
		select {
		case <-ctx.Done():
			for len(results) > 0 { // the runs that ended before the signal are stored, as vigil stores its own
				batch = append(batch, <-results)
			}
			if len(batch) > 0 {
				if err := insert(db, batch, sample); err != nil {
					return err
				}
			}
			slices.Sort(all)
			rep := floorReport{}
			if len(all) > 0 {
				rep.P99 = all[min(len(all)-1, int(.99*float64(len(all))))]
			}
			return json.NewEncoder(os.Stdout).Encode(rep)
		case l := <-lags:
			all = append(all, l)
		case d := <-results:
			batch = append(batch, d)
		case <-tick.C:
			if len(batch) == 0 {
				continue
			}
			if err := insert(db, batch, sample); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
}

// done is one finished request of the floor.
type done struct {
	check    string
	started  time.Time
	duration time.Duration
}

func insert(db *sql.DB, batch []done, r row) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	ins, err := tx.Prepare(`INSERT INTO runs(check_name, kind, started_at, duration_ns, outcome, attempts, reasons, vars, transcript, location)
		VALUES (?,?,?,?,?,1,?,?,?,'local')`)
	if err != nil {
		_ = tx.Rollback()
		return err
	}
	for _, d := range batch {
		if _, err := ins.Exec(d.check, r.Kind, d.started.UnixNano(), int64(d.duration), r.Outcome, r.Reasons, r.Vars, r.Transcript); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	ins.Close()
	return tx.Commit()
}
