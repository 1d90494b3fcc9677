// Package golden pins a test's output to a file under testdata/golden, so formats people
// and machines read (Slack messages, webhook bodies, the terminal report, /metrics) change
// only on purpose: `go test ./PKG -run TEST -update` rewrites the files, and the diff is
// reviewed like code.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden with what the tests produce")

// Assert compares got with testdata/golden/NAME, or writes it there with -update.
func Assert(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file %s: %v (run the test with -update to write it)", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s changed; if on purpose, run the test with -update and review the diff.\n%s", path, diff(string(want), string(got)))
	}
}

// diff shows the first lines that differ, with a little context.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 10; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
			shown++
		}
	}
	return b.String()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for n > 0 {
		d = append([]byte{byte('0' + n%10)}, d...)
		n /= 10
	}
	return string(d)
}

// Updating reports whether the test runs with -update: tests that pin other outputs
// (the README's screenshots of the status page) rewrite them then.
func Updating() bool { return *update }
