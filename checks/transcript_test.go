package checks

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/configs"
)

// Lines are made when read, and read as they were printed: a plain argument is kept, one
// that could change is formatted at once; a secret learned after a line was printed is
// masked in it; Later's lines are redacted too; the whole stays within its bound.
func TestTranscriptMadeWhenRead(t *testing.T) {
	tr := newRunTranscript(configs.NewRedactor("config-secret"))
	buf := []byte("before")
	tr.Printf("> GET %s in %s (%d, %v)", "/login?k=config-secret", 1500*time.Microsecond, 200, true)
	tr.Printf("bytes %s", buf) // a []byte may change: formatted now
	buf[0] = 'X'
	tr.Printf("token %s", "learned-later")
	tr.Later(40, func(red *configs.Redactor) []string {
		return []string{"< Server: x", "< body: " + excerpt(red, "has learned-later and config-secret", 400)}
	})
	tr.Mask("learned-later")
	got := strings.Join(tr.Lines(), "\n")
	want := strings.Join([]string{
		"> GET /login?k=" + configs.Masked + " in 1.5ms (200, true)",
		"bytes before",
		"token " + configs.Masked,
		"< Server: x",
		"< body: has " + configs.Masked + " and " + configs.Masked,
	}, "\n")
	if got != want {
		t.Errorf("lines:\n%s\nwant:\n%s", got, want)
	}
	// read twice: the same; a secret learned after the first read is masked in the second
	tr.Mask("Server")
	if again := tr.Lines(); !strings.Contains(strings.Join(again, "\n"), "< "+configs.Masked+": x") || len(again) != 5 {
		t.Errorf("second read: %q", again)
	}
}

func TestTranscriptBounded(t *testing.T) {
	tr := newRunTranscript(nil)
	var wg sync.WaitGroup
	for g := range 4 { // sla and fleet print from many goroutines
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				if i%2 == 0 {
					tr.Printf("goroutine %d line %d %s", g, i, strings.Repeat("x", 100))
				} else {
					tr.Later(120, func(*configs.Redactor) []string {
						return []string{fmt.Sprint(g, " later ", i, strings.Repeat("y", 100))}
					})
				}
			}
		}()
	}
	wg.Wait()
	lines := tr.Lines()
	size := 0
	for _, l := range lines[:len(lines)-1] {
		size += len(l)
		if len(l) > transcriptLineMax {
			t.Fatalf("a line of %d bytes", len(l))
		}
	}
	if size > transcriptMaxBytes || size < transcriptMaxBytes/2 {
		t.Errorf("kept %d bytes; bound %d", size, transcriptMaxBytes)
	}
	last := lines[len(lines)-1]
	var dropped int
	if _, err := fmt.Sscanf(last, "... %d more lines not kept", &dropped); err != nil || dropped+len(lines)-1 != 2000 {
		t.Errorf("last line %q; %d kept", last, len(lines)-1)
	}
}
