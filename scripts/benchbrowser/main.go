// Command benchbrowser measures browser checks the way the agent runs them: one shared
// Chromium, a fresh browser context per run, against a local page. It prints the latency
// percentiles of the check and the memory of this process plus every Chromium process
// under it after the first runs and after all of them, to show whether memory grows with
// the number of runs. scripts/bench browser runs it.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-monitor/vigil/browser"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
)

func main() {
	runs := flag.Int("runs", 500, "browser check runs in all")
	early := flag.Int("early", 50, "memory is also measured after this many runs")
	conc := flag.Int("concurrency", 2, "runs at once (agent.browser_concurrency)")
	paced := flag.Int("paced", 40, "then this many runs one at a time, a second apart (as a scheduled check runs), with and without a tab opened ahead of need")
	flag.Parse()
	if err := bench(*runs, *early, *conc); err != nil {
		log.Fatal(err)
	}
	if *paced > 0 {
		if err := benchPaced(*paced); err != nil {
			log.Fatal(err)
		}
	}
}

// benchPaced measures a scheduled browser check's latency: one run a second, so the spare
// tab is opened between runs, off the critical path. The same runs without spare tabs (a
// context opened per run, as before) are measured in the same process, interleaved.
func benchPaced(n int) error {
	target, stop, err := serveShop()
	if err != nil {
		return err
	}
	defer stop()
	fmt.Printf("  %d paced runs (one a second, as a scheduled check): %d with tabs opened ahead of need, then %d opening a tab per run (a new Chromium each), then %d bare visits\n", 3*n, n, n, n)
	var with, without []time.Duration
	for _, spare := range []bool{true, false} {
		pool := browser.NewPool(browser.Options{Concurrency: 1, NoSpareTab: !spare})
		defer pool.Close()
		if err := pool.Start(context.Background()); err != nil {
			return err
		}
		check, err := buildCheck(target, pool)
		if err != nil {
			return err
		}
		for range n {
			time.Sleep(time.Second)
			r := check.Run(context.Background(), checks.Input{})
			if r.Outcome != checks.Pass {
				return fmt.Errorf("paced run: %s %v", r.Outcome, r.Reasons)
			}
			if spare {
				with = append(with, r.Duration)
			} else {
				without = append(without, r.Duration)
			}
		}
	}
	// The floor: the same page visited through the same pool (an isolated context opened
	// ahead of need, the same wait), with no check around it: no assertions, no report
	// read, no evidence kept, no result.
	var visits []time.Duration
	pool := browser.NewPool(browser.Options{Concurrency: 1})
	defer pool.Close()
	if err := pool.Start(context.Background()); err != nil {
		return err
	}
	for range n {
		time.Sleep(time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		start := time.Now()
		_, err := pool.Visit(ctx, &browser.Visit{URL: target + "/", WaitFor: "#app[data-ready]", Evidence: func(*browser.Report) bool { return false }})
		visits = append(visits, time.Since(start))
		cancel()
		if err != nil {
			return fmt.Errorf("paced visit: %w", err)
		}
	}
	fmt.Printf("  latency, tab opened ahead of need: p50 %s  p95 %s\n", pct(with, 50), pct(with, 95))
	fmt.Printf("  latency, tab opened per run:       p50 %s  p95 %s\n", pct(without, 50), pct(without, 95))
	fmt.Printf("  floor, the visit alone (same pool, tab ahead of need, no check around it): p50 %s  p95 %s\n", pct(visits, 50), pct(visits, 95))
	fmt.Printf("  ratio p50 (ahead / per run): %.2fx; (ahead / floor): %.2fx; goal: p50 <= 600ms\n",
		float64(pct(with, 50))/float64(pct(without, 50)), float64(pct(with, 50))/float64(pct(visits, 50)))
	return nil
}

const page = `<!doctype html><html><head><title>Shop</title><link rel=stylesheet href=/app.css></head>
<body><div id=app></div><script src=/app.js></script></body></html>`

const script = `const app = document.getElementById('app');
for (let i = 0; i < 200; i++) { const li = document.createElement('li'); li.textContent = 'item ' + i; app.appendChild(li); }
fetch('/api/items').then(r => r.json()).then(items => { app.dataset.items = items.length; app.dataset.ready = '1'; });`

// serveShop serves the benchmark's page on a loopback port.
func serveShop() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	serve := func(path, ctype, body string) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			fmt.Fprint(w, body)
		})
	}
	serve("/{$}", "text/html", page)
	serve("/app.js", "application/javascript", script)
	serve("/app.css", "text/css", "li { font: 14px sans-serif }")
	serve("/api/items", "application/json", "[1,2,3]")
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// buildCheck builds the benchmark's browser check against target, on pool.
func buildCheck(target string, pool *browser.Pool) (*checks.Check, error) {
	dir, err := os.MkdirTemp("", "vigil-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfgPath := filepath.Join(dir, "vigil.yaml")
	cfgText := fmt.Sprintf("checks:\n  - {name: home, kind: browser, url: \"%s/\", wait_for: \"#app[data-ready]\", timeout: 20s}\n", target)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return nil, err
	}
	cfg, err := configs.Load(cfgPath, configs.Options{})
	if err != nil {
		return nil, err
	}
	list, err := checks.Build(cfg, checks.Deps{Browser: pool})
	if err != nil {
		return nil, err
	}
	return list[0], nil
}

func bench(runs, early, conc int) error {
	target, stop, err := serveShop()
	if err != nil {
		return err
	}
	defer stop()
	pool := browser.NewPool(browser.Options{Concurrency: conc})
	defer pool.Close()
	check, err := buildCheck(target, pool)
	if err != nil {
		return err
	}
	begin := time.Now()
	if err := pool.Start(context.Background()); err != nil {
		return err
	}
	fmt.Printf("  Chromium started in %s (not counted below)\n", time.Since(begin).Round(time.Millisecond))

	fmt.Printf("  %d runs of a browser check (local page: 200 list items, a stylesheet, a fetch), %d at once, one shared Chromium\n", runs, conc)
	var (
		mu        sync.Mutex
		durations []time.Duration
		outcomes  = map[checks.Outcome]int{}
	)
	runBatch := func(n int) {
		work := make(chan struct{})
		var wg sync.WaitGroup
		for range conc {
			wg.Go(func() {
				for range work {
					r := check.Run(context.Background(), checks.Input{})
					mu.Lock()
					durations = append(durations, r.Duration)
					outcomes[r.Outcome]++
					if r.Outcome != checks.Pass && outcomes[r.Outcome] <= 3 {
						fmt.Fprintf(os.Stderr, "  run %s: %v\n", r.Outcome, r.Reasons)
					}
					mu.Unlock()
				}
			})
		}
		for range n {
			work <- struct{}{}
		}
		close(work)
		wg.Wait()
	}
	start := time.Now()
	runBatch(early)
	settle()
	m1 := memory()
	runBatch(runs - early)
	settle()
	m2 := memory()
	took := time.Since(start)

	fmt.Printf("  outcomes: %v in %s (%.1f runs/s)\n", outcomes, took.Round(time.Second), float64(runs)/took.Seconds())
	fmt.Printf("  latency of the check: p50 %s  p95 %s  (first %d runs: p50 %s p95 %s; last %d: p50 %s p95 %s)\n",
		pct(durations, 50), pct(durations, 95), early, pct(durations[:early], 50), pct(durations[:early], 95),
		early, pct(durations[len(durations)-early:], 50), pct(durations[len(durations)-early:], 95))
	fmt.Printf("  memory after %3d runs: %s\n", early, m1)
	fmt.Printf("  memory after %3d runs: %s\n", runs, m2)
	if pool.BrowserPID() == 0 {
		return fmt.Errorf("no browser running at the end")
	}
	return nil
}

// settle gives closed tabs a moment to go away before memory is read.
func settle() { time.Sleep(2 * time.Second) }

func pct(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	i := (len(s)*p+99)/100 - 1
	return s[max(i, 0)].Round(time.Millisecond)
}

type mem struct {
	procs                int
	rssSelf, rss, pssAll int64 // KiB
}

func (m mem) String() string {
	return fmt.Sprintf("%d processes, RSS sum %.0f MiB (vigil %.0f MiB), PSS sum %.0f MiB",
		m.procs, float64(m.rss)/1024, float64(m.rssSelf)/1024, float64(m.pssAll)/1024)
}

// memory sums RSS and PSS over this process and its descendants. RSS counts the pages
// Chromium's processes share once per process; PSS splits them, so its sum is what the
// process tree really costs.
func memory() mem {
	self := os.Getpid()
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if end := bytes.LastIndexByte(b, ')'); end > 0 {
			if f := strings.Fields(string(b[end+1:])); len(f) > 1 {
				parent[pid], _ = strconv.Atoi(f[1])
			}
		}
	}
	var m mem
	for pid := range parent {
		under := pid == self
		for a := parent[pid]; !under && a > 1; a = parent[a] {
			under = a == self
		}
		if !under {
			continue
		}
		rss, pss := field(pid, "status", "VmRSS:"), field(pid, "smaps_rollup", "Pss:")
		if rss == 0 {
			continue // a zombie
		}
		m.procs++
		m.rss += rss
		m.pssAll += pss
		if pid == self {
			m.rssSelf = rss
		}
	}
	return m
}

// field reads a "Name: N kB" line of a /proc/PID file.
func field(pid int, file, name string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
