package main

// The peer: cloudprober, built from source (scripts/cloudprober/build), given the same
// schedule against the same target. Issue 16's goal for vigil is half of its CPU per check.
//
// It is configured as lightly as it goes while still probing as vigil does: one HTTP probe
// per check (one target each), kept-alive connections, and only the Prometheus surfacer
// (its default adds a file surfacer that writes every probe's metrics to stdout, which costs
// more). It stores no run; vigil stores every run in SQLite.
//
// Its runs are the requests the target served at peerPath in the window (the target counts
// them), not its own counters, which it exports every 10 s per probe; its failures are read
// from those counters, over the whole run, to show it was not failing its way to a low figure.
//
// It runs at the same time as a second vigil and a second floor (sideBySide), not after them: on this shared
// machine the CPU a request costs moves by a third from one minute to the next, and a ratio of
// two windows measured a minute apart moved with it (one peer measured after the other, the
// same builds gave vigil 0.56x cloudprober's CPU per check in one round and 1.10x in another).
// Side by side, the two share the same seconds, and each other's company, for the same time.

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// runCloudprober runs cloudprober on sc's checks against target and measures its window.
func runCloudprober(bin, dir, target string, sc scenario) (measured, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return measured{}, err
	}
	u, err := url.Parse(target)
	if err != nil {
		return measured{}, err
	}
	addr, err := freeAddr()
	if err != nil {
		return measured{}, err
	}
	_, port, _ := strings.Cut(addr, ":")
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "host: \"127.0.0.1\"\nport: %s\nsurfacer { type: PROMETHEUS }\n", port)
	timeout := min(sc.every, 2*time.Second) // vigil's checks have 2s; cloudprober's may not exceed the interval
	tlsOpts := ""
	if sc.tls {
		tlsOpts = fmt.Sprintf(" scheme: HTTPS tls_config { ca_cert_file: %q }", targetCA)
	}
	for i := range sc.checks {
		fmt.Fprintf(&cfg, "probe { name: \"c%d\" type: HTTP targets { host_names: %q } interval_msec: %d timeout_msec: %d "+
			"http_probe { port: %s relative_url: %q keep_alive: true%s } }\n",
			i, u.Hostname(), sc.every.Milliseconds(), timeout.Milliseconds(), u.Port(), peerPath, tlsOpts)
	}
	path := filepath.Join(dir, "cloudprober.cfg")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		return measured{}, err
	}
	logs, err := os.Create(filepath.Join(dir, "cloudprober.log"))
	if err != nil {
		return measured{}, err
	}
	defer logs.Close()
	cmd := exec.Command(bin, "--config_file", path)
	cmd.Stdout, cmd.Stderr = logs, logs // it logs every probe it creates at INFO
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return measured{}, err
	}
	stop := stopper(cmd)
	defer func() { _ = stop() }()
	base := "http://" + addr
	if err := waitReady(base+"/metrics", 30*time.Second); err != nil {
		return measured{}, fmt.Errorf("cloudprober (its log: %s): %w", logs.Name(), err)
	}
	time.Sleep(time.Until(start.Add(sc.warm)))
	served0, err := served(target)
	if err != nil {
		return measured{}, err
	}
	cpu0, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return measured{}, err
	}
	from := time.Now()
	time.Sleep(sc.window)
	cpu1, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return measured{}, err
	}
	window := time.Since(from)
	served1, err := served(target)
	if err != nil {
		return measured{}, err
	}
	rss, anon, peak := procMem(cmd.Process.Pid)
	total, success, err := probeCounters(base + "/metrics")
	if err != nil {
		return measured{}, err
	}
	_ = stop() // its exit status after SIGTERM says nothing of the window; the target's count does
	return measured{cpu: cpu1 - cpu0, runs: served1 - served0, due: due(sc, window), rssKiB: rss, anonKiB: anon, peakKiB: peak,
		noLag: true, failed: total - success}, nil
}

// sideBySide runs a vigil, the floor and cloudprober at the same time on sc's checks against
// target (the floor inserting the row in sample), each in its own subdirectory of dir, and
// measures the three over the same seconds.
func sideBySide(vigil, self, cloudprober, dir, sample, target string, sc scenario) (v, f, c measured, err error) {
	if err := os.MkdirAll(filepath.Join(dir, "side-floor"), 0o755); err != nil {
		return v, f, c, err
	}
	var ferr, cerr error
	var wg sync.WaitGroup
	wg.Go(func() { c, cerr = runCloudprober(cloudprober, filepath.Join(dir, "side-peer"), target, sc) })
	wg.Go(func() {
		f, ferr = runFloorProcess(self, filepath.Join(dir, "side-floor"), sample, target, sc, floorPart{})
	})
	v, _, err = runVigil(vigil, filepath.Join(dir, "side-vigil"), target, sc, "")
	wg.Wait()
	return v, f, c, errors.Join(err, ferr, cerr)
}

// served is the number of requests the target has answered (not counting this one).
func served(target string) (int, error) {
	resp, err := benchClient().Get(strings.TrimSuffix(target, "/") + servedPath)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var n int
	if _, err := fmt.Fscan(resp.Body, &n); err != nil {
		return 0, fmt.Errorf("the target's count: %w", err)
	}
	return n, nil
}

// probeCounters sums cloudprober's total and success counters over its probes.
func probeCounters(metrics string) (total, success int, err error) {
	resp, err := http.Get(metrics)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	seen := false
	for sc.Scan() {
		line := sc.Text()
		var into *int
		switch {
		case strings.HasPrefix(line, "total{"):
			into = &total
		case strings.HasPrefix(line, "success{"):
			into = &success
		default:
			continue
		}
		// name{labels} value [timestamp]
		var n float64
		f := strings.Fields(line[strings.LastIndexByte(line, '}')+1:])
		if len(f) > 0 {
			n, err = strconv.ParseFloat(f[0], 64)
		}
		if len(f) == 0 || err != nil {
			return 0, 0, fmt.Errorf("cloudprober metric %q: %w", line, err)
		}
		*into += int(n)
		seen = true
	}
	if !seen {
		return 0, 0, fmt.Errorf("no total or success counters in cloudprober's %s", metrics)
	}
	return total, success, sc.Err()
}

// printPeer prints the medians of the windows in which vigil, the floor and cloudprober ran
// side by side, and each one's ratio to cloudprober, round by round.
func printPeer(vs, fs, cs []measured, sc scenario) {
	perRound := func(xs []measured) (mid, lo, hi float64) {
		var r []float64
		for i := range cs {
			r = append(r, ratio(float64(xs[i].perCheck()), float64(cs[i].perCheck())))
		}
		slices.Sort(r)
		return r[(len(r)-1)/2], r[0], r[len(r)-1]
	}
	v, f, c := median(vs), median(fs), median(cs)
	fmt.Printf("  side by side: vigil       %s\n", v)
	fmt.Printf("  side by side: floor       %s\n", f)
	fmt.Printf("  side by side: cloudprober %s\n", c)
	goal := ""
	if sc.name == "busy" {
		goal = "; goal <= 0.50x"
	}
	mid, lo, hi := perRound(vs)
	fmt.Printf("  ratio (vigil / cloudprober): CPU per check %.2fx (per round %.2f-%.2fx%s), RSS %.2fx, private memory %.2fx\n",
		mid, lo, hi, goal, ratio(float64(v.rssKiB), float64(c.rssKiB)), ratio(float64(v.anonKiB), float64(c.anonKiB)))
	mid, lo, hi = perRound(fs)
	fmt.Printf("  ratio (floor / cloudprober): CPU per check %.2fx (per round %.2f-%.2fx)\n", mid, lo, hi)
	fmt.Printf("  cloudprober: CPU per check %.3f ms, %.2f%% of a core\n", ms(c.perCheck()), 100*c.cpu.Seconds()/sc.window.Seconds())
}
