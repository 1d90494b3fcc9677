package checks

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/text"
)

// Transcript records what a run sent and what came back, trimmed, so a failure explains
// itself. It is safe for concurrent use (sla and fleet write from many goroutines) and
// bounded: past its limit it counts what it dropped.
//
// It is also where a run's redaction lives: every line is redacted with the config's
// secrets plus those the run learned (Mask), before it is trimmed.
//
// Lines are made when they are read, not when they are printed: a scheduled run that
// passes keeps no transcript, and formatting and redacting every line of every run was a
// large part of what a run cost. Printf keeps its arguments when they are plain values
// (strings, numbers, durations), which cannot change before they are read; anything else is
// formatted at once. Later takes a function that makes lines from values the caller no
// longer changes.
type Transcript struct {
	mu      sync.Mutex
	pending []entry
	lines   []string
	// size is the bytes of lines plus an estimate of pending's, to bound what is kept
	// before it is made; kept is the bytes of lines alone.
	size, kept int
	dropped    int
	red        *configs.Redactor
	// redacted is how many of lines were redacted with red as it is now; lines after it
	// were made before the run learned a secret, and Lines redacts them again.
	redacted int
	// first holds the first entries: an http run makes two (what it sent, what came back),
	// and a run's transcript then allocates nothing more.
	first [2]entry
}

// entry is a line (or lines) not made yet.
type entry struct {
	text   string // a line as printed, when format and later are not set
	format string
	args   []any
	later  func(red *configs.Redactor) []string
}

const (
	transcriptMaxBytes = 16 << 10
	transcriptLineMax  = 512
)

// newRunTranscript returns a transcript that also masks the config's secrets.
func newRunTranscript(red *configs.Redactor) *Transcript {
	t := &Transcript{red: red}
	t.pending = t.first[:0]
	return t
}

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
func (t *Transcript) Excerpt(s string, n int) string { return excerpt(t.Redactor(), s, n) }

func excerpt(red *configs.Redactor, s string, n int) string { return flatten(red.Excerpt(s, n)) }

// Printf adds one line.
func (t *Transcript) Printf(format string, args ...any) {
	est, plain := len(format), true
	for _, a := range args {
		switch v := a.(type) {
		case string:
			est += len(v)
		case int, int64, uint64, float64, bool, time.Duration:
			est += 24
		default:
			plain = false
		}
	}
	e := entry{format: format, args: args}
	if !plain { // it could change before the line is made: make it now
		e = entry{text: fmt.Sprintf(format, args...)}
		est = len(e.text)
	}
	t.add(e, est)
}

// Later adds the lines fn makes when the transcript is read; about is an estimate of
// their bytes, to bound the transcript before they are made. fn must only read values
// that no longer change, and gets the run's redactor as it is then (what it returns is
// redacted again).
func (t *Transcript) Later(about int, fn func(red *configs.Redactor) []string) {
	t.add(entry{later: fn}, about)
}

func (t *Transcript) add(e entry, est int) {
	est = min(est, transcriptLineMax)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.size+est > transcriptMaxBytes {
		t.dropped++
		return
	}
	t.size += est
	t.pending = append(t.pending, e)
}

// Lines returns the transcript, redacted with everything the run learned.
func (t *Transcript) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, l := range t.lines[t.redacted:] {
		t.lines[t.redacted+i] = t.red.String(l)
	}
	for _, e := range t.pending {
		var made []string
		switch {
		case e.later != nil:
			made = e.later(t.red)
		case e.format != "":
			made = []string{fmt.Sprintf(e.format, e.args...)}
		default:
			made = []string{e.text}
		}
		for _, l := range made {
			l = Trim(t.red.String(l), transcriptLineMax)
			if t.kept+len(l) > transcriptMaxBytes {
				t.dropped++
				continue
			}
			t.kept += len(l)
			t.lines = append(t.lines, l)
		}
	}
	t.pending = nil
	t.size = t.kept
	t.redacted = len(t.lines)
	out := make([]string, len(t.lines), len(t.lines)+1)
	copy(out, t.lines)
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
