// Command benchload measures what a running `vigil agent` costs with many scheduled HTTP
// checks: CPU per check, memory, start lag and runs that never happened. Beside each figure
// it measures a floor in the same run, on the same machine, against the same target: a plain
// Go process that does the least the same schedule needs (a timer per check, 32 requests at
// once over kept-alive connections, the body read, and the same rows inserted into a SQLite
// store of vigil's schema in one transaction every 100 ms, through a prepared statement).
//
// Each process runs alone (vigil, then the floor, then again): the target is a third
// process, so the CPU counted is the client's alone. Where cloudprober is given, each round
// then runs it, a second vigil and a second floor at the same time, each with the same
// schedule, so that the three are compared over the same seconds of a machine whose speed
// moves from minute to minute (see cloudprober.go). CPU and memory are read from /proc; the
// runs are counted in each process's store after it stopped, so a run that was not stored
// does not count. scripts/bench load runs it.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

var vigilEnv *string

// scenario is one row of the table: checks every interval, measured for window after warm.
type scenario struct {
	name         string
	checks       int
	every        time.Duration
	warm, window time.Duration
	goal         string
	history      int  // runs of each check already in the store (aged.go); 0: an empty store
	peer         bool // cloudprober runs it too, when given (-cloudprober)
	parts        bool // the floor's parts, side by side (parts.go); not in "all"
	tls          bool // against the target's HTTPS listener (tls.go); not in "all"
}

var scenarios = []scenario{
	{name: "busy", checks: 1000, every: time.Second, warm: 6 * time.Second, window: 20 * time.Second,
		goal: "CPU per check <= 0.15 ms and half of cloudprober's, RSS <= 40 MiB", peer: true},
	{name: "aged", checks: 1000, every: time.Second, warm: 6 * time.Second, window: 20 * time.Second, history: 1000,
		goal: "as busy, on a store that already holds 1,000 runs of each check"},
	{name: "idle", checks: 100, every: 30 * time.Second, warm: 35 * time.Second, window: 60 * time.Second,
		goal: "RSS <= 25 MiB, CPU <= 0.5% of a core", peer: true},
	{name: "parts", checks: 1000, every: time.Second, warm: 6 * time.Second, window: 20 * time.Second, parts: true,
		goal: "none: where the floor's CPU per check goes, and what is left without the store and net/http's transport"},
	{name: "tls", checks: 1000, every: time.Second, warm: 6 * time.Second, window: 20 * time.Second, tls: true, peer: true,
		goal: "none: the busy row against an HTTPS target, as most are, over HTTP/2 as Go's client, vigil and cloudprober all speak it"},
	{name: "10k", checks: 10000, every: 10 * time.Second, warm: 25 * time.Second, window: 40 * time.Second,
		goal: "start lag p99 <= 50 ms, no skipped runs, RSS <= 100 MiB", peer: true},
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
	syncClient := flag.Bool("sync", false, "(internal, floor) requests through the bench's own synchronous client, not net/http's transport (the parts scenario)")
	noStore := flag.Bool("nostore", false, "(internal, floor) store no run (the parts scenario)")
	tlsCert := flag.String("tls-cert", "", "(internal, serve) also serve HTTPS with this certificate (PEM), printing its URL second")
	tlsKey := flag.String("tls-key", "", "(internal, serve) the certificate's key (PEM)")
	ca := flag.String("ca", "", "(internal, floor) trust this certificate (PEM) for an HTTPS target (the tls scenario)")

	vigil := flag.String("vigil", "", "the vigil binary")
	peer := flag.String("cloudprober", "", "a cloudprober binary (scripts/cloudprober/build) to run beside vigil where the scenario compares (busy, idle, 10k)")
	only := flag.String("scenario", "all", "busy, aged, idle, 10k, all (those four), parts or tls")
	rounds := flag.Int("rounds", 3, "rounds of each (vigil, then the floor, then the two and cloudprober side by side where given); the medians are printed")
	vigilEnv = flag.String("env", "", "an environment variable to run vigil with, e.g. GOMEMLIMIT=90MiB")
	profile := flag.String("profile", "", "write a CPU profile of vigil's last busy window to this file (the aged scenario's to its name plus -aged), and its allocations to the file's name plus .allocs (it costs a little CPU)")
	flag.Parse()
	log.SetFlags(0)
	switch {
	case *serve:
		serveTarget(*tlsCert, *tlsKey)
	case *bare > 0:
		if err := bareLoop(*target, *bare); err != nil {
			log.Fatal(err)
		}
	case *floorDB != "":
		if err := runFloor(*floorDB, *sample, *checks, *every, *target, time.Unix(0, *from), time.Unix(0, *to),
			floorPart{sync: *syncClient, noStore: *noStore}, *ca); err != nil {
			log.Fatal(err)
		}
	default:
		if *vigil == "" {
			log.Fatal("benchload: -vigil PATH is required")
		}
		if err := bench(*vigil, *peer, *only, *rounds, *profile); err != nil {
			log.Fatal(err)
		}
	}
}

// serveTarget answers every request with a short 200 over kept-alive connections: over
// plain HTTP, and with a certificate also over HTTPS (tls.go), its URL printed second. The
// two count the requests at peerPath together.
func serveTarget(certPath, keyPath string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("http://%s/\n", ln.Addr())
	go func() { // the parent closes stdin (or dies): stop
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	h := targetHandler()
	if certPath != "" {
		go func() { log.Fatal(serveTLS(h, certPath, keyPath)) }()
	}
	log.Fatal(http.Serve(ln, h))
}

// targetHandler answers "ok" to every path, and at servedPath how many requests it
// answered at peerPath.
func targetHandler() http.Handler {
	body := []byte("ok")
	var count atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		switch r.URL.Path {
		case servedPath:
			fmt.Fprintln(w, count.Load())
			return
		case peerPath:
			count.Add(1)
		}
		_, _ = w.Write(body)
	})
}

// A peer that stores no run (cloudprober) asks for peerPath, and its runs are counted at
// servedPath: vigil, running beside it, asks for "/", which is not counted.
const (
	peerPath   = "/peer"
	servedPath = "/_served"
)

// measured is one process's figures over one window.
type measured struct {
	cpu      time.Duration // user + system over the window
	runs     int           // stored runs that started in the window
	due      int           // runs due in the window, from its length: the window's edges may hold a few more or fewer
	missing  int           // due runs a check is short of in its store (vigil)
	rssKiB   int           // at the end of the window
	anonKiB  int           // of which private memory (the rest: the binary's pages, shared and reclaimable)
	peakKiB  int           // VmHWM
	p99Lag   time.Duration
	profiled bool
	noLag    bool // the process does not say when its runs were due (cloudprober)
	failed   int  // runs that failed, where only the process's own counters say (cloudprober, over its whole run)
	// scrape is how long a /metrics scrape took (after the window), scrapeBytes its size
	scrape      time.Duration
	scrapeBytes int
	skipped     int // vigil_scheduler_skipped_runs_total over the window
	// view is the slowest of pageViews views of the status page after the window, viewBytes
	// what one sent (gzipped), viewPeakKiB the process's peak after them (vigil alone)
	view        time.Duration
	viewBytes   int
	viewPeakKiB int
	// viewAtOnce is the slowest of viewsAtOnce views asked for at once after those,
	// atOncePeakKiB the process's peak after them
	viewAtOnce    time.Duration
	atOncePeakKiB int
}

func (m measured) perCheck() time.Duration {
	if m.runs == 0 {
		return 0
	}
	return m.cpu / time.Duration(m.runs)
}

func bench(vigil, peer, only string, rounds int, profile string) error {
	tmp, err := os.MkdirTemp("", "benchload")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	certPath, keyPath, err := newTargetCert(tmp)
	if err != nil {
		return err
	}
	targetCA = certPath
	tgt := exec.Command(self, "-serve", "-tls-cert", certPath, "-tls-key", keyPath)
	tgt.Stderr = os.Stderr
	stdin, _ := tgt.StdinPipe()
	out, _ := tgt.StdoutPipe()
	if err := tgt.Start(); err != nil {
		return err
	}
	defer func() { stdin.Close(); _ = tgt.Wait() }()
	said := bufio.NewReader(out)
	url, err := said.ReadString('\n')
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	tlsURL, err := said.ReadString('\n')
	if err != nil {
		return fmt.Errorf("target, over TLS: %w", err)
	}
	url, tlsURL = strings.TrimSpace(url), strings.TrimSpace(tlsURL)

	if bare, err := bareCost(self, url); err == nil {
		fmt.Printf("== for scale: one kept-alive connection, 20,000 requests back to back (no timers, no concurrency, nothing stored): %.3f ms CPU per request\n", bare/1000)
	} else {
		return err
	}
	if rss, anon, err := emptyAgent(vigil, filepath.Join(tmp, "empty"), 10*time.Second); err == nil {
		fmt.Printf("== for scale: vigil agent with no checks, 10 s after it was ready: RSS %.1f MiB (%.1f private; the rest is the binary's pages mapped from its file)\n",
			float64(rss)/1024, float64(anon)/1024)
	} else {
		return fmt.Errorf("agent with no checks: %w", err)
	}
	for _, sc := range scenarios {
		if only != sc.name && (only != "all" || sc.parts || sc.tls) {
			continue
		}
		kind := "HTTP"
		url := url
		if sc.tls {
			kind, url = "HTTPS (HTTP/2)", tlsURL
		}
		fmt.Printf("== %d %s checks every %s, a %s window after %s (load average %s); goal: %s\n",
			sc.checks, kind, sc.every, sc.window, sc.warm, loadavg(), sc.goal)
		if sc.parts {
			if err := runParts(vigil, self, peer, tmp, url, sc, rounds); err != nil {
				return err
			}
			continue
		}
		aged := ""
		if sc.history > 0 {
			t0 := time.Now()
			if aged, err = agedStore(tmp, sc); err != nil {
				return err
			}
			fi, _ := os.Stat(aged)
			fmt.Printf("   each process starts on a copy of one store of %d runs (%d of each check, %.0f MB; made in %s)\n",
				sc.checks*sc.history, sc.history, float64(fi.Size())/1e6, time.Since(t0).Round(time.Second))
		}
		var vs, fs, pvs, pfs, cs []measured
		for r := range rounds {
			dir := filepath.Join(tmp, fmt.Sprintf("%s-%d", sc.name, r))
			if aged != "" {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				for _, name := range []string{"vigil.db", "floor.db"} {
					if err := copyFile(aged, filepath.Join(dir, name)); err != nil {
						return err
					}
				}
			}
			prof := ""
			if profile != "" && sc.checks == 1000 && r == rounds-1 {
				prof = strings.TrimSuffix(profile+"-"+sc.name, "-busy")
			}
			v, samplePath, err := runVigil(vigil, dir, url, sc, prof)
			if err != nil {
				return err
			}
			if sc.tls {
				if err := spokeHTTP2(samplePath); err != nil {
					return err
				}
			}
			f, err := runFloorProcess(self, dir, samplePath, url, sc, floorPart{})
			if err != nil {
				return err
			}
			vs, fs = append(vs, v), append(fs, f)
			if aged != "" {
				_ = os.RemoveAll(dir) // two copies of the aged store a round
			}
			fmt.Printf("   round %d: vigil %s | floor %s\n", r+1, v, f)
			if peer != "" && sc.peer {
				pv, pf, c, err := sideBySide(vigil, self, peer, dir, samplePath, url, sc)
				if err != nil {
					return err
				}
				pvs, pfs, cs = append(pvs, pv), append(pfs, pf), append(cs, c)
				fmt.Printf("   round %d, side by side: vigil %s | floor %s | cloudprober %s\n", r+1, pv, pf, c)
			}
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
		due, missing := 0, 0 // of all the rounds: one lost run is one too many, in any round
		for _, r := range append(slices.Clone(vs), pvs...) {
			due, missing = due+r.due, missing+r.missing
		}
		fmt.Printf("  vigil: CPU per check %.3f ms, %.2f%% of a core, RSS %.1f MiB (%.1f private), start lag p99 %.1f ms, %d of %d due runs not stored (all its rounds)\n",
			ms(v.perCheck()), 100*v.cpu.Seconds()/sc.window.Seconds(), mib(v.rssKiB), mib(v.anonKiB), ms(v.p99Lag), missing, due)
		if len(cs) > 0 {
			printPeer(pvs, pfs, cs, sc)
		}
		fmt.Printf("  vigil: %d runs skipped in the window (vigil_scheduler_skipped_runs_total); a /metrics scrape after it: %.1f MB in %s\n",
			v.skipped, float64(v.scrapeBytes)/1e6, v.scrape.Round(time.Millisecond))
		peaks, atOnce := make([]float64, len(vs)), make([]float64, len(vs))
		for i, r := range vs {
			peaks[i], atOnce[i] = mib(r.viewPeakKiB), mib(r.atOncePeakKiB)
		}
		fmt.Printf("  vigil: then the status page, %d views one after the other as a browser asks: %.0f KiB sent, the slowest in %s; the agent's peak after them %.1f-%.1f MiB (each round)\n",
			pageViews, float64(v.viewBytes)/1024, v.view.Round(time.Millisecond), slices.Min(peaks), slices.Max(peaks))
		fmt.Printf("  vigil: then %d views at once: the slowest in %s; the agent's peak after them %.1f-%.1f MiB (each round)\n",
			viewsAtOnce, v.viewAtOnce.Round(time.Millisecond), slices.Min(atOnce), slices.Max(atOnce))
	}
	return nil
}

func (m measured) String() string {
	s := fmt.Sprintf("%6.3f ms CPU/check (%5d of %5d runs, %6.2f s CPU)  RSS %5.1f MiB (%5.1f private, peak %5.1f)",
		ms(m.perCheck()), m.runs, m.due, m.cpu.Seconds(), mib(m.rssKiB), mib(m.anonKiB), mib(m.peakKiB))
	if m.noLag {
		return s + fmt.Sprintf("  %d failed", m.failed)
	}
	return s + fmt.Sprintf("  lag p99 %6.1f ms", ms(m.p99Lag))
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
