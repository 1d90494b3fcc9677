package binpages

import (
	"errors"
	"os"
	"reflect"

	"golang.org/x/sys/unix"
)

// Drop unmaps the binary's read-only mappings from this process (see the package comment);
// with evict it first asks for no read-ahead on them and afterwards asks the page cache to
// drop the binary's pages that no process maps. It never touches a writable mapping.
func Drop(evict bool) (Result, error) {
	var r Result
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return r, err
	}
	spans, err := binarySpans(smaps, reflect.ValueOf(Drop).Pointer())
	if err != nil {
		return r, err
	}
	r.Before = readRSSFile()
	var errs []error
	for _, s := range spans {
		// The range is a whole mapping of the binary, read-only, with no page written to
		// (binarySpans): unmapping it loses nothing, the next access maps the file's page.
		if evict {
			if err := madvise(s, unix.MADV_RANDOM); err != nil {
				errs = append(errs, err)
			}
		}
		if err := madvise(s, unix.MADV_DONTNEED); err != nil {
			errs = append(errs, err)
			continue
		}
		r.Mappings++
		r.Bytes += uint64(s.end - s.start)
	}
	if evict {
		if err := fadviseDontNeed(); err != nil {
			errs = append(errs, err)
		} else {
			r.Evicted = true
		}
	}
	r.After = readRSSFile()
	return r, errors.Join(errs...)
}

// madvise advises on an address range that is not Go memory (the binary's mapping), so it
// goes by address: unix.Madvise takes a slice.
func madvise(s span, advice int) error {
	if _, _, e := unix.Syscall(unix.SYS_MADVISE, s.start, s.end-s.start, uintptr(advice)); e != 0 {
		return e
	}
	return nil
}

// fadviseDontNeed asks the page cache to drop the binary's pages that no process maps.
// A page not yet written back (a binary built or copied just before it started) is not
// dropped, so they are written back first; for a binary that has been on disk for more
// than a few seconds there is nothing to write. /proc/self/exe opens the running binary
// even when it has been replaced on disk.
func fadviseDontNeed() error {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return err
	}
	defer f.Close()
	_ = unix.Fdatasync(int(f.Fd())) // a read-only filesystem may refuse it; it has nothing to write then
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

func readRSSFile() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	v, _ := rssFile(b)
	return v
}
