package binpages

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A process's smaps as Linux lists them (fields trimmed): the binary (code, read-only
// data, relocations written at start and made read-only, data), the heap, another file, a
// shared mapping of the binary, a stack and the vDSO.
const sampleSmaps = `00400000-013b3000 r-xp 00000000 fe:00 9978007                            /opt/vigil/bin/vigil
Size:              16076 kB
Rss:               12912 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me dw sd
013b3000-02528000 r--p 00fb3000 fe:00 9978007                            /opt/vigil/bin/vigil
Size:              18900 kB
Anonymous:             0 kB
02528000-02529000 r--p 02128000 fe:00 9978007                            /opt/vigil/bin/vigil
Size:                  4 kB
Anonymous:             4 kB
02529000-025ea000 rw-p 02129000 fe:00 9978007                            /opt/vigil/bin/vigil
Anonymous:           120 kB
025ea000-0463c000 rw-p 00000000 00:00 0
Anonymous:           232 kB
c000000000-c004000000 rw-p 00000000 00:00 0
Anonymous:          2896 kB
7f07d00d0000-7f07d0290000 r--p 00000000 fe:00 1234                       /usr/lib/locale/C.utf8/LC_CTYPE
Anonymous:             0 kB
7f07d0290000-7f07d0291000 r--s 00000000 fe:00 9978007                    /opt/vigil/bin/vigil
Anonymous:             0 kB
7ffd1c5e1000-7ffd1c602000 rw-p 00000000 00:00 0                          [stack]
Anonymous:           132 kB
7ffd1c7f4000-7ffd1c7f6000 r-xp 00000000 00:00 0                          [vdso]
Anonymous:             0 kB
`

func TestBinarySpans(t *testing.T) {
	got, err := binarySpans([]byte(sampleSmaps), 0x401000)
	if err != nil {
		t.Fatal(err)
	}
	want := []span{{0x400000, 0x13b3000}, {0x13b3000, 0x2528000}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("spans = %x, want the code and the read-only data only (never relocations written at start, the data, a shared mapping, another file or an anonymous one): %x", got, want)
	}
	// A mapping whose pages of its own are not listed is not known to have none.
	unlisted := strings.Replace(sampleSmaps, "Size:              18900 kB\nAnonymous:             0 kB\n", "", 1)
	if got, err := binarySpans([]byte(unlisted), 0x401000); err != nil || len(got) != 1 || got[0] != want[0] {
		t.Fatalf("a mapping with no Anonymous line: %x, %v; want the code alone", got, err)
	}

	// Replaced on disk while it runs: the name changes, the device and inode do not; a new
	// file at the same path is another file.
	deleted := strings.ReplaceAll(sampleSmaps, "/opt/vigil/bin/vigil", "/opt/vigil/bin/vigil (deleted)") +
		"7f0800000000-7f0800100000 r--p 00000000 fe:00 777 /opt/vigil/bin/vigil\nAnonymous: 0 kB\n"
	got, err = binarySpans([]byte(deleted), 0x13b3000)
	if err != nil || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("a deleted binary: %x, %v; want %x", got, err, want)
	}

	for name, c := range map[string]struct {
		maps string
		pc   uintptr
	}{
		"code in no mapping":       {sampleSmaps, 0x10},
		"code in an anonymous one": {sampleSmaps, 0xc000000100},
		"a size not in kB":         {strings.Replace(sampleSmaps, "Anonymous:             4 kB", "Anonymous:             4 MB", 1), 0x401000},
		"a negative size":          {strings.Replace(sampleSmaps, "Anonymous:             4 kB", "Anonymous:            -4 kB", 1), 0x401000},
		"no address range":         {"zzz r-xp 00000000 fe:00 1 /x\n", 0x10},
		"a reversed range":         {"2000-1000 r-xp 00000000 fe:00 1 /x\n", 0x1800},
		"not hex":                  {"10g0-2000 r-xp 00000000 fe:00 1 /x\n", 0x1800},
		"empty":                    {"", 0x1000},
	} {
		if got, err := binarySpans([]byte(c.maps), c.pc); err == nil {
			t.Errorf("%s: spans %x, want an error", name, got)
		}
	}
	// Short lines (a kernel's future fields aside) are skipped, not misread.
	if got, err := binarySpans([]byte("1000-2000 r-xp\n"+sampleSmaps), 0x401000); err != nil || len(got) != 2 {
		t.Errorf("a short line: %x, %v", got, err)
	}
}

func TestRSSFile(t *testing.T) {
	status := "Name:\tvigil\nVmRSS:\t   31388 kB\nRssAnon:\t    5868 kB\nRssFile:\t   25520 kB\nRssShmem:\t       0 kB\n"
	if v, ok := rssFile([]byte(status)); !ok || v != 25520<<10 {
		t.Errorf("RssFile = %d, %v; want %d", v, ok, 25520<<10)
	}
	for _, bad := range []string{"", "RssFile:\n", "RssFile:\tlots kB\n", "RssFile:\t-1 kB\n", "RssFile:\t99999999999999999999 kB\n"} {
		if v, ok := rssFile([]byte(bad)); ok {
			t.Errorf("%q: %d, want not ok", bad, v)
		}
	}
}

// written is a global the test writes while it runs: it lives in the binary's writable
// data, which a drop must never unmap (the file's original value would come back).
var written = []byte("as in the file")

func TestDropUnmapsOnlyTheReadOnlyBinary(t *testing.T) {
	if runtime.GOOS != "linux" {
		if _, err := Drop(false); err != ErrUnsupported {
			t.Fatalf("Drop = %v, want ErrUnsupported", err)
		}
		t.Skip("reads Linux's /proc")
	}
	copy(written, "changed at run")
	for _, evict := range []bool{false, true} {
		r, err := Drop(evict)
		if err != nil {
			t.Fatalf("Drop(%v): %v", evict, err)
		}
		if r.Mappings < 1 || r.Bytes == 0 || r.Evicted != evict {
			t.Errorf("Drop(%v) = %+v: want the binary's read-only mappings unmapped", evict, r)
		}
		if r.Before == 0 || r.After >= r.Before {
			t.Errorf("Drop(%v): RssFile %d before, %d after; want less after", evict, r.Before, r.After)
		}
		if !bytes.Equal(written, []byte("changed at run")) {
			t.Fatalf("Drop(%v) lost a write to the binary's data: %q", evict, written)
		}
	}
}

func TestKeep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	drops := make(chan Result, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Keep(ctx, time.Millisecond, 5*time.Millisecond, func(r Result, err error) {
			if err != nil && err != ErrUnsupported {
				t.Errorf("drop: %v", err)
			}
			select {
			case drops <- r:
			default:
			}
		})
	}()
	for range 3 {
		select {
		case <-drops:
		case <-time.After(10 * time.Second):
			t.Fatal("Keep did not drop again")
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Keep did not end with its context")
	}
}

func FuzzBinarySpans(f *testing.F) {
	f.Add([]byte(sampleSmaps), uint64(0x401000))
	f.Add([]byte("1000-2000 r-xp 0 fe:00 1 /x\nAnonymous: 0 kB\n2000-3000 rw-p 0 fe:00 1 /x"), uint64(0x1800))
	f.Fuzz(func(t *testing.T, smaps []byte, pc uint64) {
		spans, err := binarySpans(smaps, uintptr(pc))
		if err != nil {
			return
		}
		// Every span is listed as a read-only private mapping of a file, with no page of
		// its own.
		for _, s := range spans {
			if !listedUnwritten(smaps, s) {
				t.Fatalf("span %x is no read-only mapping listed with Anonymous: 0 kB in\n%s", s, smaps)
			}
		}
	})
}

// listedUnwritten reports whether smaps lists a mapping of the span's range, read-only,
// private, of a file, followed by "Anonymous: 0 kB".
func listedUnwritten(smaps []byte, s span) bool {
	ok := false
	for _, line := range bytes.Split(smaps, []byte("\n")) {
		f := bytes.Fields(line)
		switch {
		case len(f) == 0:
		case bytes.HasSuffix(f[0], []byte(":")):
			if ok && len(f) == 3 && string(f[0]) == "Anonymous:" && string(f[2]) == "kB" && strings.TrimLeft(string(f[1]), "+0") == "" {
				return true
			}
		default:
			lo, hi, _ := strings.Cut(string(f[0]), "-")
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			ok = err1 == nil && err2 == nil && uintptr(a) == s.start && uintptr(b) == s.end && len(f) >= 5 &&
				len(f[1]) == 4 && string(f[1][:2]) == "r-" && f[1][3] == 'p' && string(f[4]) != "0"
		}
	}
	return false
}

// In a binary linked as PIE the dynamic linker writes relocations into pages it then makes
// read-only: a drop must leave them, or the next interface value crashes the process.
func TestDropKeepsRelocations(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads Linux's /proc")
	}
	bin := filepath.Join(t.TempDir(), "relro")
	if out, err := exec.Command("go", "build", "-buildmode=pie", "-o", bin, "./testdata/relro").CombinedOutput(); err != nil {
		t.Skipf("this toolchain does not build PIE here: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil {
		t.Fatalf("the PIE binary failed after dropping its pages: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "*bytes.Buffer *errors.errorString *strings.Reader float64 map[string]int") {
		t.Fatalf("output %q", out)
	}
	if strings.Contains(string(out), "written read-only mappings: 0\n") {
		t.Fatalf("the PIE binary has no relocated read-only mapping: the test does not test what it says\n%s", out)
	}
	t.Logf("%s", out)
}
