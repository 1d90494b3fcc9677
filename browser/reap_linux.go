//go:build linux

package browser

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// reaper waits for exited Chromium helpers that were re-parented to vigil. Chromium's
// helpers (zygotes, the network service, crashpad) outlive a browser that is killed; the
// kernel gives them to PID 1, or to the nearest child subreaper. When vigil is either, no
// one else will wait for them and each browser restart would leave zombies behind.
type reaper struct {
	kick  chan struct{}
	log   *slog.Logger
	owned func(pid int) bool
}

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from <linux/prctl.h>.
const prSetChildSubreaper = 36

// reapInterval is how often the reaper looks for zombies without being asked.
const reapInterval = 5 * time.Second

// startReaper runs the reaper until ctx ends. owned reports the pids os/exec waits for
// itself (the browser processes): reaping those would steal their exit status.
func startReaper(ctx context.Context, wg *sync.WaitGroup, log *slog.Logger, owned func(int) bool) *reaper {
	if os.Getpid() != 1 {
		// Not init: ask the kernel to re-parent our descendants' orphans to us rather than
		// to init, so they stay accounted to vigil and are reaped here.
		if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
			log.Warn("cannot become a child subreaper; Chromium's orphaned helpers go to init", "err", errno)
		}
	}
	r := &reaper{kick: make(chan struct{}, 1), log: log, owned: owned}
	wg.Go(func() {
		t := time.NewTicker(reapInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				r.reap()
				return
			case <-t.C:
			case <-r.kick:
			}
			r.reap()
		}
	})
	return r
}

// sweep asks the reaper to look now (after a browser stopped). Safe on a nil reaper.
func (r *reaper) sweep() {
	if r == nil {
		return
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// reap waits for every zombie child of ours that a Chromium left behind.
func (r *reaper) reap() {
	self := os.Getpid()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || r.owned(pid) {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		comm, state, ppid, ok := parseStat(stat)
		if !ok || state != 'Z' || ppid != self || !chromiumComm[comm] {
			continue
		}
		var ws syscall.WaitStatus
		if got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); err == nil && got == pid {
			n++
		}
	}
	if n > 0 {
		r.log.Debug("reaped exited Chromium helpers", "count", n)
	}
}

// chromiumComm are the process names (comm, at most 15 bytes) of Chromium's processes.
// Helpers that Chromium re-executes through /proc/self/exe are named "exe".
var chromiumComm = map[string]bool{"chromium": true, "chrome": true, "chrome_crashpad": true,
	"headless_shell": true, "exe": true}

// parseStat reads the name, state and parent pid from a /proc/PID/stat line:
// "PID (COMM) STATE PPID ...". COMM may hold spaces and parentheses, so it ends at the
// last ')'.
func parseStat(b []byte) (comm string, state byte, ppid int, ok bool) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", 0, 0, false
	}
	comm = string(b[open+1 : end])
	fields := bytes.Fields(b[end+1:])
	if len(fields) < 2 || len(fields[0]) != 1 {
		return "", 0, 0, false
	}
	ppid, err := strconv.Atoi(string(fields[1]))
	if err != nil {
		return "", 0, 0, false
	}
	return comm, fields[0][0], ppid, true
}
