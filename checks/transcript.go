package checks

import (
	"fmt"
	"strings"
	"sync"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/text"
)

// Transcript records what a run sent and what came back, trimmed, so a failure explains
// itself. It is safe for concurrent use (sla and fleet write from many goroutines) and
// bounded: past its limit it counts what it dropped.
//
// It is also where a run's redaction lives: every line is redacted with the config's
// secrets plus those the run learned (Mask), before it is trimmed.
type Transcript struct {
	mu      sync.Mutex
	lines   []string
	size    int
	dropped int
	red     *configs.Redactor
	// redacted is how many of lines were redacted with red as it is now; lines after it
	// were printed before the run learned a secret, and Lines redacts them again.
	redacted int
}

const (
	transcriptMaxBytes = 16 << 10
	transcriptLineMax  = 512
)

// newRunTranscript returns a transcript that also masks the config's secrets.
func newRunTranscript(red *configs.Redactor) *Transcript { return &Transcript{red: red} }

// Mask adds values the run learned are secret (a Set-Cookie, a token in an answer, a
// credential header rendered from a template): from now on they are masked in the
// transcript and in the result.
func (t *Transcript) Mask(values ...string) {
	if len(values) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if red := t.red.With(values...); red != t.red {
		t.red, t.redacted = red, 0
	}
}

// Redactor is the run's redactor as it stands: the config's secrets and what the run
// learned.
func (t *Transcript) Redactor() *configs.Redactor {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.red
}

// Excerpt is s redacted and trimmed to n bytes without ever cutting through a secret.
func (t *Transcript) Excerpt(s string, n int) string {
	return flatten(t.Redactor().Excerpt(s, n))
}

// Printf adds one line.
func (t *Transcript) Printf(format string, args ...any) {
	red := t.Redactor()
	line := Trim(red.String(fmt.Sprintf(format, args...)), transcriptLineMax)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.size+len(line) > transcriptMaxBytes {
		t.dropped++
		return
	}
	if red == t.red && t.redacted == len(t.lines) {
		t.redacted++
	}
	t.lines = append(t.lines, line)
	t.size += len(line)
}

// Lines returns the transcript, redacted with everything the run learned.
func (t *Transcript) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, len(t.lines), len(t.lines)+1)
	for i, l := range t.lines {
		if i >= t.redacted {
			l = t.red.String(l)
		}
		out[i] = l
	}
	if t.dropped > 0 {
		out = append(out, fmt.Sprintf("... %d more lines not kept", t.dropped))
	}
	return out
}

// Trim shortens s to at most n bytes on a rune boundary, marking the cut, and flattens
// newlines so one value stays on one line.
func Trim(s string, n int) string { return text.Clip(flatten(s), n) }

func flatten(s string) string {
	s = strings.ReplaceAll(s, "\r", "")
	return strings.ReplaceAll(s, "\n", "\\n")
}
