package binpages

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
)

// A process's maps as Linux lists them: the binary (code, read-only data, data), the
// heap, another file, a stack and the vDSO.
const sampleMaps = `00400000-013b3000 r-xp 00000000 fe:00 9978007                            /opt/vigil/bin/vigil
013b3000-02528000 r--p 00fb3000 fe:00 9978007                            /opt/vigil/bin/vigil
02528000-025ea000 rw-p 02128000 fe:00 9978007                            /opt/vigil/bin/vigil
025ea000-0463c000 rw-p 00000000 00:00 0
c000000000-c004000000 rw-p 00000000 00:00 0
7f07d00d0000-7f07d0290000 r--p 00000000 fe:00 1234                       /usr/lib/locale/C.utf8/LC_CTYPE
7f07d0290000-7f07d0291000 r--s 00000000 fe:00 9978007                    /opt/vigil/bin/vigil
7ffd1c5e1000-7ffd1c602000 rw-p 00000000 00:00 0                          [stack]
7ffd1c7f4000-7ffd1c7f6000 r-xp 00000000 00:00 0                          [vdso]
`

func TestBinarySpans(t *testing.T) {
	got, err := binarySpans([]byte(sampleMaps), 0x401000)
	if err != nil {
		t.Fatal(err)
	}
	want := []span{{0x400000, 0x13b3000}, {0x13b3000, 0x2528000}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("spans = %x, want the code and the read-only data only (never the data, a shared mapping, another file or an anonymous one): %x", got, want)
	}

	// Replaced on disk while it runs: the name changes, the device and inode do not; a new
	// file at the same path is another file.
	deleted := strings.ReplaceAll(sampleMaps, "/opt/vigil/bin/vigil", "/opt/vigil/bin/vigil (deleted)") +
		"7f0800000000-7f0800100000 r--p 00000000 fe:00 777 /opt/vigil/bin/vigil\n"
	got, err = binarySpans([]byte(deleted), 0x13b3000)
	if err != nil || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("a deleted binary: %x, %v; want %x", got, err, want)
	}

	for name, c := range map[string]struct {
		maps string
		pc   uintptr
	}{
		"code in no mapping":       {sampleMaps, 0x10},
		"code in an anonymous one": {sampleMaps, 0xc000000100},
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
	if got, err := binarySpans([]byte("1000-2000 r-xp\n"+sampleMaps), 0x401000); err != nil || len(got) != 2 {
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
	f.Add([]byte(sampleMaps), uint64(0x401000))
	f.Add([]byte("1000-2000 r-xp 0 fe:00 1 /x\n2000-3000 rw-p 0 fe:00 1 /x"), uint64(0x1800))
	f.Fuzz(func(t *testing.T, maps []byte, pc uint64) {
		spans, err := binarySpans(maps, uintptr(pc))
		if err != nil {
			return
		}
		// Every span is a read-only private mapping of the file holding pc, as listed.
		for _, s := range spans {
			line := findLine(maps, s)
			f := bytes.Fields(line)
			if len(f) < 5 || string(f[1][:2]) != "r-" || f[1][3] != 'p' || string(f[4]) == "0" {
				t.Fatalf("span %x from line %q", s, line)
			}
		}
	})
}

// findLine returns the maps line a span was read from.
func findLine(maps []byte, s span) []byte {
	for _, line := range bytes.Split(maps, []byte("\n")) {
		if one, err := binarySpans(append(line, '\n'), s.start); err == nil && len(one) == 1 && one[0] == s {
			return line
		}
	}
	return nil
}
