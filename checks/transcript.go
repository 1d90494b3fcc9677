package checks

import (
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// Transcript records what a run sent and what came back, trimmed, so a failure explains
// itself. It is safe for concurrent use (sla and fleet write from many goroutines) and
// bounded: past its limit it counts what it dropped.
type Transcript struct {
	mu      sync.Mutex
	lines   []string
	size    int
	dropped int
}

const (
	transcriptMaxBytes = 16 << 10
	transcriptLineMax  = 512
)

// NewTranscript returns an empty transcript.
func NewTranscript() *Transcript { return &Transcript{} }

// Printf adds one line.
func (t *Transcript) Printf(format string, args ...any) {
	line := Trim(fmt.Sprintf(format, args...), transcriptLineMax)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.size+len(line) > transcriptMaxBytes {
		t.dropped++
		return
	}
	t.lines = append(t.lines, line)
	t.size += len(line)
}

// Lines returns the transcript.
func (t *Transcript) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.lines...)
	if t.dropped > 0 {
		out = append(out, fmt.Sprintf("... %d more lines not kept", t.dropped))
	}
	return out
}

// Trim shortens s to at most n bytes on a rune boundary, marking the cut, and flattens
// newlines so one value stays on one line.
func Trim(s string, n int) string {
	s = strings.ReplaceAll(s, "\r", "")
	s = strings.ReplaceAll(s, "\n", "\\n")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("...(%d bytes)", len(s))
}
