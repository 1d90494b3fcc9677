// Package binpages keeps a long-running process's own binary mapped only where it runs.
//
// A Go binary is mapped from its file, and the kernel maps more of it than a process runs:
// every page fault on the binary also maps the cached pages around it (fault-around, 64
// KiB), and a read from the file reads ahead. A vigil agent with no checks ran code in
// enough of its 35 MB binary (every package's initialiser, the config loader, the store's
// migrations) to have 25 MiB of it mapped, four times the memory it allocated, and those
// pages count in its RSS and in its container's memory.
//
// Drop(true), as the process starts, asks for no read-ahead on the binary's read-only
// mappings (those the process has not written to: see binarySpans), unmaps them, and
// drops the binary's pages no process maps from the page cache: from then on the process
// maps what it runs, a page at a time, each read from the file once (a cold start without
// read-ahead). Drop(false) later unmaps them again without
// touching the cache: the pages still in use come straight back, from the cache, and the
// ones only the start used (and the pages cached around them) are left to the kernel to
// reclaim when memory is short. Neither changes what the process computes: the pages are
// the file's, unchanged, and read-only. Writable mappings (the binary's data) are never
// touched.
package binpages

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Result is what one Drop did: the mappings it unmapped and the process's file-backed
// resident memory (RssFile) before and right after.
type Result struct {
	Mappings      int
	Bytes         uint64 // the size of the mappings unmapped
	Before, After uint64 // RssFile, bytes
	Evicted       bool   // the page cache was asked to drop the binary's unmapped pages
}

// ErrUnsupported is returned where the operating system gives no way to do it.
var ErrUnsupported = errors.New("binpages: not supported on this operating system")

// KeepFirst and KeepEvery are when a long-running process drops the binary's pages again
// (Keep), without touching the cache: a while after its start (what only the start ran),
// then now and then (what a reload or an incident ran once).
const (
	KeepFirst = 10 * time.Second
	KeepEvery = 10 * time.Minute
)

// Keep drops the binary's pages from the process (Drop(false)) after first, then every
// every, until ctx ends, and reports each drop.
func Keep(ctx context.Context, first, every time.Duration, report func(Result, error)) {
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r, err := Drop(false)
			report(r, err)
			t.Reset(every)
		}
	}
}

// span is one mapping: its address range.
type span struct{ start, end uintptr }

// binarySpans reads /proc/self/smaps-formatted data and returns the read-only private
// mappings of the file that holds pc (an address in the binary's code) that hold no page of
// their own (Anonymous: 0 kB). A read-only mapping can hold such pages: the dynamic
// linker's relocations (RELRO, in a binary linked with cgo or as PIE), written and then
// made read-only, or a debugger's breakpoints; unmapping them would lose them, so such a
// mapping is left alone. The file is known by its device and inode, not its name: a
// binary replaced on disk while it runs is listed as "path (deleted)", and an overlay
// filesystem's may be listed under the file beneath it.
func binarySpans(smaps []byte, pc uintptr) ([]span, error) {
	type mapping struct {
		span
		perms, file string // file: device and inode
		anonymous   int64  // kB; -1 when not listed
	}
	var all []*mapping
	var cur *mapping // the mapping the fields that follow belong to
	var dev string
	for len(smaps) > 0 {
		var line []byte
		line, smaps, _ = bytes.Cut(smaps, []byte("\n"))
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		if bytes.HasSuffix(f[0], []byte(":")) { // a field of the mapping above
			if cur != nil && string(f[0]) == "Anonymous:" {
				if len(f) != 3 || string(f[2]) != "kB" {
					return nil, fmt.Errorf("binpages: smaps line %q: bad size", line)
				}
				// Digits only, as the kernel writes them ("-0" or "+0" is not its).
				kb, err := strconv.ParseUint(string(f[1]), 10, 62)
				if err != nil {
					return nil, fmt.Errorf("binpages: smaps line %q: bad size", line)
				}
				cur.anonymous = int64(kb)
			}
			continue
		}
		cur = nil
		if len(f) < 5 { // no mapping a field after it belongs to
			continue
		}
		lo, hi, ok := bytes.Cut(f[0], []byte("-"))
		if !ok {
			return nil, fmt.Errorf("binpages: smaps line %q: no address range", line)
		}
		start, err1 := strconv.ParseUint(string(lo), 16, 64)
		end, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || end <= start || uint64(uintptr(end)) != end {
			return nil, fmt.Errorf("binpages: smaps line %q: bad address range", line)
		}
		m := &mapping{span{uintptr(start), uintptr(end)}, string(f[1]), string(f[3]) + " " + string(f[4]), -1}
		if string(f[4]) == "0" { // anonymous: no file
			m.file = ""
		}
		all, cur = append(all, m), m
		if m.start <= pc && pc < m.end {
			dev = m.file
		}
	}
	if dev == "" {
		return nil, fmt.Errorf("binpages: no file mapping holds the code at %#x", pc)
	}
	var out []span
	for _, m := range all {
		if m.file == dev && len(m.perms) == 4 && m.perms[0] == 'r' && m.perms[1] == '-' && m.perms[3] == 'p' && m.anonymous == 0 {
			out = append(out, m.span)
		}
	}
	return out, nil
}

// rssFile reads the RssFile line of /proc/self/status-formatted data, in bytes.
func rssFile(status []byte) (uint64, bool) {
	for len(status) > 0 {
		var line []byte
		line, status, _ = bytes.Cut(status, []byte("\n"))
		v, ok := bytes.CutPrefix(line, []byte("RssFile:"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))
		kb, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil || kb > 1<<44 {
			return 0, false
		}
		return kb << 10, true
	}
	return 0, false
}
