// Package report prints check results for people and machines: live progress on a
// terminal, one line per check otherwise, JSON, and JUnit XML that CI systems read.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/internal/text"
)

// Summary counts outcomes.
type Summary struct {
	Total        int `json:"total"`
	Passed       int `json:"passed"`
	Failed       int `json:"failed"`
	Errors       int `json:"errors"`
	Inconclusive int `json:"inconclusive"`
	// NotRun counts the checks an interruption kept from starting (not in Errors).
	NotRun   int           `json:"not_run,omitempty"`
	Duration time.Duration `json:"-"` // JSON: duration_seconds (MarshalJSON)
}

// Summarize counts the outcomes of results.
func Summarize(results []*checks.Result, took time.Duration) Summary {
	s := Summary{Total: len(results), Duration: took}
	for _, r := range results {
		switch {
		case r.NotRun:
			s.NotRun++
			continue
		}
		switch r.Outcome {
		case checks.Pass:
			s.Passed++
		case checks.Fail:
			s.Failed++
		case checks.Error:
			s.Errors++
		case checks.Inconclusive:
			s.Inconclusive++
		}
	}
	return s
}

// OK reports whether every check passed.
func (s Summary) OK() bool { return s.Passed == s.Total }

// MarshalJSON writes the summary with its duration in seconds (duration_seconds).
func (s Summary) MarshalJSON() ([]byte, error) {
	type plain Summary
	return json.Marshal(struct {
		plain
		DurationSeconds float64 `json:"duration_seconds"`
	}{plain(s), s.Duration.Seconds()})
}

func (s Summary) String() string {
	notRun := ""
	if s.NotRun > 0 {
		notRun = fmt.Sprintf(", %d not run (interrupted)", s.NotRun)
	}
	return fmt.Sprintf("%d checks: %d passed, %d failed, %d errors, %d inconclusive%s in %s",
		s.Total, s.Passed, s.Failed, s.Errors, s.Inconclusive, notRun, s.Duration.Round(time.Millisecond))
}

// Printer reports progress while checks run. On a terminal it keeps a status line of
// what is running below the finished results; otherwise it prints one line per check as
// it finishes, with its reasons indented below.
type Printer struct {
	w        io.Writer
	tty      bool
	verbose  bool
	mu       sync.Mutex
	running  []string
	done     int
	total    int
	statusOn bool
}

// NewPrinter writes to w; tty enables the live status line, verbose prints transcripts of
// checks that did not pass.
func NewPrinter(w io.Writer, tty, verbose bool, total int) *Printer {
	return &Printer{w: w, tty: tty, verbose: verbose, total: total}
}

// IsTerminal reports whether f is a character device (an interactive terminal).
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}

// Start notes that a check began.
func (p *Printer) Start(c *checks.Check) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running = append(p.running, c.Name)
	p.status()
}

// Done prints a finished check.
func (p *Printer) Done(c *checks.Check, r *checks.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, n := range p.running {
		if n == c.Name {
			p.running = append(p.running[:i], p.running[i+1:]...)
			break
		}
	}
	p.done++
	p.clearStatus()
	WriteResult(p.w, r, p.verbose)
	p.status()
}

// Finish clears the status line.
func (p *Printer) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearStatus()
}

func (p *Printer) clearStatus() {
	if p.tty && p.statusOn {
		fmt.Fprint(p.w, "\r\033[K")
		p.statusOn = false
	}
}

func (p *Printer) status() {
	if !p.tty {
		return
	}
	p.clearStatus()
	names := strings.Join(p.running, ", ")
	if len(names) > 60 {
		names = names[:57] + "..."
	}
	fmt.Fprintf(p.w, "  [%d/%d] running: %s", p.done, p.total, names)
	p.statusOn = true
}

var marks = map[checks.Outcome]string{checks.Pass: "PASS", checks.Fail: "FAIL", checks.Error: "ERROR", checks.Inconclusive: "INCONCLUSIVE"}

// WriteResult prints one result: a line, then its reasons and artifacts indented, and in
// verbose mode the transcript of a run that did not pass.
func WriteResult(w io.Writer, r *checks.Result, verbose bool) {
	extra := ""
	if r.Attempts > 1 {
		extra = fmt.Sprintf("  (%d attempts: retried after error)", r.Attempts)
	}
	// Reasons and transcripts quote what the service answered: printed inert, so that a
	// hostile or broken answer can neither drive the terminal nor forge lines of a CI log.
	fmt.Fprintf(w, "%-12s %-24s %-11s %8s%s\n", marks[r.Outcome], text.Inert(r.Check), r.Kind, fmtDuration(r.Duration), extra)
	for _, reason := range r.Reasons {
		fmt.Fprintf(w, "    %s\n", text.Inert(reason))
	}
	for _, a := range r.Artifacts {
		if a.Path != "" {
			fmt.Fprintf(w, "    %s: %s\n", text.Inert(a.Name), text.Inert(a.Path))
		}
	}
	if verbose && r.Outcome != checks.Pass {
		for _, line := range r.Transcript {
			fmt.Fprintf(w, "      | %s\n", text.Inert(line))
		}
	}
}

func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// WriteJSON writes results and their summary as one JSON document.
func WriteJSON(w io.Writer, results []*checks.Result, s Summary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Summary Summary          `json:"summary"`
		Results []*checks.Result `json:"results"`
	}{s, results})
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// SaveArtifacts writes every result's artifacts under dir and records their paths.
func SaveArtifacts(dir string, results []*checks.Result) error {
	var any bool
	for _, r := range results {
		any = any || len(r.Artifacts) > 0
	}
	if !any {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("artifacts folder: %w", err)
	}
	for _, r := range results {
		stamp := r.Started.UTC().Format("20060102T150405")
		for _, a := range r.Artifacts {
			if a.Path != "" || a.Data == nil {
				continue
			}
			name := unsafeName.ReplaceAllString(r.Check+"-"+stamp+"-"+a.Name, "_")
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, a.Data, 0o644); err != nil {
				return fmt.Errorf("writing artifact: %w", err)
			}
			a.Path = p
		}
	}
	return nil
}

// SortByName orders results by check name (stable output for files).
func SortByName(results []*checks.Result) {
	sort.SliceStable(results, func(i, j int) bool { return results[i].Check < results[j].Check })
}
