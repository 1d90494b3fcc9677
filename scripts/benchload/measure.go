package main

// What both sides are measured with: /proc, and the runs in each store.

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

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

// viewPage asks for url n times, one after the other, as a browser does (gzip), and
// returns the slowest answer's time and the bytes of the last; any status but 200 fails.
func viewPage(url string, n int) (slowest time.Duration, size int, err error) {
	client := &http.Client{Timeout: 30 * time.Second}
	for range n {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Accept-Encoding", "gzip") // set here, the transport hands the body back as sent
		began := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, err
		}
		k, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, 0, fmt.Errorf("%s: %s", url, resp.Status)
		}
		slowest, size = max(slowest, time.Since(began)), int(k)
	}
	return slowest, size, nil
}

// viewPageAtOnce asks for url k times at once, as k readers do (gzip); it returns the
// slowest view and the first error.
func viewPageAtOnce(url string, k int) (slowest time.Duration, err error) {
	type view struct {
		took time.Duration
		err  error
	}
	views := make(chan view, k)
	for range k {
		go func() {
			took, _, err := viewPage(url, 1)
			views <- view{took, err}
		}()
	}
	for range k {
		v := <-views
		slowest = max(slowest, v.took)
		if err == nil {
			err = v.err
		}
	}
	return slowest, err
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

// missingRuns counts the runs of checks checks, each due every every, that the store at
// path is short of in [from, to): each check is due at least as many times in a window as
// the whole intervals the window spans, whatever the instant its grid places it at, so a
// check with fewer stored has lost one. (The window's length over the interval only
// estimates the runs due: a window a millisecond longer than 20 s holds 20 runs of a check
// or 21, and counting against it would take the window's edges for lost runs.) A run is
// stored with the instant it started, not the one it was due at, so the runs that started
// up to edgeLag after the window are counted in it: a run due in its last milliseconds
// that started a few late is not lost. A run later than that is, at the lag goal's bound.
func missingRuns(path string, from, to time.Time, checks int, every time.Duration) (int, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	least := int(to.Sub(from) / every)
	var short, seen int
	err = db.QueryRow(`SELECT coalesce(sum(max(? - n, 0)), 0), count(*) FROM
		(SELECT count(*) AS n FROM runs WHERE started_at >= ? AND started_at < ? GROUP BY check_name)`,
		least, from.UnixNano(), to.Add(edgeLag).UnixNano()).Scan(&short, &seen)
	return short + max(checks-seen, 0)*least, err
}

// edgeLag is how late a run may start after the window it was due in and still count in
// it: the start lag goal's 50 ms (p99).
const edgeLag = 50 * time.Millisecond

// row is a stored run's columns the floor inserts again.
// readSample reads the run of vigil's that saveSample wrote as JSON.
func readSample(path string) (row, error) {
	var r row
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

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

// stopper returns a function that stops the started cmd with SIGTERM and waits for it,
// once: later calls return nil (it is deferred, and called on the way too).
func stopper(cmd *exec.Cmd) func() error {
	stopped := false
	return func() error {
		if stopped {
			return nil
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		return cmd.Wait()
	}
}
