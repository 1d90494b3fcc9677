package main

// The floor: the least the same schedule needs, as a process of its own, and the bare loop.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vigil-monitor/vigil/internal/binpages"
	"github.com/vigil-monitor/vigil/store"
)

// floorPart says which of its two parts a floor leaves out, for the parts scenario
// (parts.go): the zero value is the floor itself.
type floorPart struct {
	sync    bool // requests through a syncPool (syncclient.go), not net/http's transport
	noStore bool // no run stored: the runs are those the floor counted as answered
}

func runFloorProcess(self, dir, sample, url string, sc scenario, part floorPart) (measured, error) {
	db := filepath.Join(dir, "floor.db")
	start := time.Now()
	from, to := start.Add(sc.warm), start.Add(sc.warm+sc.window)
	args := []string{"-floor", db, "-sample", sample, "-checks", strconv.Itoa(sc.checks), "-every", sc.every.String(),
		"-target", url, "-from", strconv.FormatInt(from.UnixNano(), 10), "-to", strconv.FormatInt(to.UnixNano(), 10)}
	if part.sync {
		args = append(args, "-sync")
	}
	if part.noStore {
		args = append(args, "-nostore")
	}
	if sc.tls {
		args = append(args, "-ca", targetCA)
	}
	cmd := exec.Command(self, args...)
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
	runs := rep.Answered
	if !part.noStore { // a run that was not stored does not count
		if runs, err = countRuns(db, from, to); err != nil {
			return measured{}, err
		}
	}
	return measured{cpu: cpu1 - cpu0, runs: runs, due: due(sc, sc.window), rssKiB: rss, anonKiB: anon, peakKiB: peak, p99Lag: rep.P99,
		failed: rep.Failed}, nil
}

// floorReport is what the floor prints as it stops.
type floorReport struct {
	P99      time.Duration // start lag of the runs due in the window
	Answered int           // runs due in the window that were answered 200
	Failed   int           // runs of its whole life that were not
}

// runFloor is the floor: a timer per check, first due at a random instant of a grid of
// about ten checks an instant over the first interval (as vigil batches checks), 32
// requests at once through one kept-alive client, and the rows inserted every 100 ms in
// one transaction through a prepared statement (part leaves out the one or the other). It
// runs until SIGTERM, then prints its floorReport as JSON.
func runFloor(path, samplePath string, checks int, every time.Duration, target string, from, to time.Time, part floorPart, ca string) error {
	sample, err := readSample(samplePath)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	// As vigil agent does (--lazy-binary-pages): only the binary's pages it runs are mapped
	// (dropped as it starts, again once set up, then now and then).
	_, _ = binpages.Drop(true)
	go binpages.Keep(ctx, binpages.KeepFirst, binpages.KeepEvery, func(binpages.Result, error) {})
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
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"+
		"&_pragma=wal_autocheckpoint("+strconv.Itoa(store.WALCheckpointPages)+")&_txlock=immediate") // as vigil's store writes
	if err != nil {
		return err
	}
	defer db.Close()

	_, _ = binpages.Drop(true) // set up, before the first request, as the agent once it listens
	results := make(chan done, 4096)
	lags := make(chan time.Duration, 4096)
	var answered, failed atomic.Int64
	pool := newSyncPool(target, 64) // dials nothing unless part.sync asks through it
	defer pool.close()
	transport := &http.Transport{MaxIdleConnsPerHost: 64}
	if ca != "" { // an HTTPS target: HTTP/2, as vigil's transport attempts it
		tc, err := trusting(ca)
		if err != nil {
			return err
		}
		transport.TLSClientConfig, transport.ForceAttemptHTTP2 = tc, true
	}
	client := &http.Client{Transport: transport, Timeout: 2 * time.Second}
	sem := make(chan struct{}, 32)
	start := time.Now()
	grain := max(10*time.Millisecond, every/time.Duration(max(1, checks/10))) // as vigil's scheduler batches (agent/phases.go)
	for i := range checks {
		name := "c" + strconv.Itoa(i)
		// A random instant of the grid, as vigil's scheduler gives each check. Not in name
		// order: then a batch's runs were neighbours in the (check_name, started_at) index,
		// a few pages written per commit where vigil's random phases write one per run.
		next := onGrid(start.Add(time.Duration(rand.Int64N(int64(every)))), grain)
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
				inWindow := !next.Before(from) && next.Before(to)
				if inWindow {
					lags <- began.Sub(next)
				}
				var status int
				if part.sync {
					status, _ = pool.get()
				} else if resp, err := client.Get(target); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				switch {
				case status != http.StatusOK:
					failed.Add(1)
				case inWindow:
					answered.Add(1)
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
			if len(batch) > 0 && !part.noStore {
				if err := insert(db, batch, sample); err != nil {
					return err
				}
			}
			slices.Sort(all)
			rep := floorReport{Answered: int(answered.Load()), Failed: int(failed.Load())}
			if len(all) > 0 {
				rep.P99 = all[min(len(all)-1, int(.99*float64(len(all))))]
			}
			return json.NewEncoder(os.Stdout).Encode(rep)
		case l := <-lags:
			all = append(all, l)
		case d := <-results:
			batch = append(batch, d)
		case <-tick.C:
			if part.noStore {
				batch = batch[:0]
			}
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

// onGrid rounds t up to a multiple of grain: vigil's scheduler puts the phases of checks
// of one interval on such a grid, about ten checks to an instant, and the timers due at
// the same instant fire on one wake-up.
func onGrid(t time.Time, grain time.Duration) time.Time {
	if r := time.Duration(t.UnixNano() % int64(grain)); r != 0 {
		t = t.Add(grain - r)
	}
	return t
}
