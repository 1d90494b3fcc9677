// Command relro drops its binary's pages (binpages.Drop) and then runs code that reads
// what the dynamic linker relocated at start (in a PIE binary: the type and interface
// tables behind every interface value, made read-only after). A drop that unmapped those
// pages would take the relocations with it, and this would crash. It prints how many of
// its binary's read-only mappings hold pages of their own (the relocations), so the test
// knows the case is there.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/vigil-monitor/vigil/internal/binpages"
)

func main() {
	for _, evict := range []bool{true, false} {
		r, err := binpages.Drop(evict)
		if err != nil || r.Mappings == 0 {
			fmt.Fprintf(os.Stderr, "Drop(%v) = %+v, %v\n", evict, r, err)
			os.Exit(1)
		}
	}
	var values []any = []any{errors.New("e"), strings.NewReader("r"), bytes.NewBufferString("b"), 1.5, map[string]int{"a": 1}}
	names := make([]string, 0, len(values))
	for _, v := range values {
		names = append(names, fmt.Sprintf("%T", v))
	}
	sort.Strings(names)
	fmt.Printf("written read-only mappings: %d\n%s\n", writtenReadOnly(), strings.Join(names, " "))
}

// writtenReadOnly counts this binary's read-only private mappings with pages of their own.
func writtenReadOnly() int {
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return -1
	}
	exe, _ := os.Readlink("/proc/self/exe")
	n, mine := 0, false
	for _, line := range strings.Split(string(smaps), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case strings.HasSuffix(f[0], ":"):
			if mine && f[0] == "Anonymous:" && f[1] != "0" {
				n++
			}
		default:
			mine = len(f) >= 6 && f[5] == exe && f[1] == "r--p"
		}
	}
	return n
}
