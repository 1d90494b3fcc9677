package checks

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/expr-lang/expr/types"
	"github.com/vigil-monitor/vigil/configs"
)

// logscanVars are the logscan kind's variables.
var logscanVars = types.Map{
	"matches":    types.Int,
	"by_pattern": types.TypeOf(map[string]int{}),
	"samples":    types.Array(types.String),
	"lines":      types.Int,
	"bytes":      types.Int,
	"files":      types.Int,
	"undated":    types.Int,
	"truncated":  types.Bool,
}

// Logscan is the logscan kind, for failures that show only in the logs (a connection leak
// that warns "Possible connection leak detected" long before it exhausts a pool). It
// counts lines matching any of its regexes among the lines written since max(deploy
// start, now - window): run.Input.Since is the deploy start during a verification and zero
// otherwise.
//
// A url source asks Loki's query_range API for exactly that interval: Loki knows when each
// line arrived. A file source has to work out when a line was written; see fileSource.
type Logscan struct {
	logQuery
	names []string // the patterns as configured, for by_pattern
	files *fileSource
	loki  *lokiSource
}

// Probe implements Prober.
func (l *Logscan) Probe(ctx context.Context, run *Run) error {
	now := time.Now()
	cutoff := now.Add(-l.window)
	if run.Since.After(cutoff) {
		cutoff = run.Since
	}
	var (
		tally   logScan
		counts  []int
		samples []string
		err     error
	)
	if l.loki != nil {
		counts, samples, err = l.loki.scan(ctx, &l.logQuery, run, cutoff, now, &tally)
	} else {
		counts, samples, err = l.files.scan(ctx, &l.logQuery, run.Transcript, cutoff, now, &tally)
	}
	if err != nil {
		return err
	}
	byPattern := make(map[string]int, len(l.names))
	total := 0
	for i, n := range counts {
		byPattern[l.names[i]] = n
		total += n
	}
	v := run.Vars
	v["matches"] = total
	v["by_pattern"] = byPattern
	v["samples"] = samples
	v["lines"] = tally.lines
	v["bytes"] = int(tally.bytes)
	v["files"] = tally.files
	v["undated"] = tally.undated
	v["truncated"] = tally.truncated

	since := "the last " + l.window.String()
	if cutoff.Equal(run.Since) {
		since = "the deploy started (" + run.Since.Format(time.RFC3339) + ")"
	}
	expl := fmt.Sprintf("in lines written since %s", since)
	if len(samples) > 0 {
		expl += "; e.g. " + formatValue(samples[len(samples)-1])
	}
	run.Explain("matches", expl)
	run.Explain("by_pattern", expl)
	if tally.undated > 0 {
		run.Explain("undated", "matching lines without a timestamp (or with one later than when vigil read them) that vigil read for the first time, or that were written between two of its looks at the files with the cutoff in between: their age is unknown, so they are not counted")
	}
	if tally.truncated {
		run.Explain("truncated", strings.Join(tally.notes, "; "))
		run.Explain("matches", expl+"; a lower bound: "+strings.Join(tally.notes, "; "))
		if tally.lines == 0 {
			// Cut before a single line was read (a Loki page larger than max_bytes): 0 is
			// no count at all, and matches == 0 must not pass on it.
			run.Unmeasured("no line was read within max_bytes: "+strings.Join(tally.notes, "; "), "matches", "by_pattern", "samples")
		}
	}
	run.Transcript.Printf("%d matching lines since %s (%s); read %d lines, %d bytes", total, cutoff.Format(time.RFC3339Nano),
		formatStatuses(byPattern), tally.lines, tally.bytes)
	if tally.excluded > 0 {
		run.Transcript.Printf("%d lines read matched a pattern and an exclude pattern: not counted", tally.excluded)
	}
	for _, n := range tally.notes {
		run.Transcript.Printf("note: %s", n)
	}
	return nil
}

// logscanKind registers the logscan kind (kinds.go).
type logscanKind struct{}

func (logscanKind) vars() types.Map { return logscanVars }

func (logscanKind) build(b *builder, c *configs.Check) Prober {
	s := c.Spec.(*configs.LogscanSpec)
	l := &Logscan{logQuery: logQuery{exclude: s.ExcludeRegexps(), window: s.Window, samples: *s.Samples, maxBytes: s.MaxBytes}}
	srcs := s.Patterns
	if s.Pattern != "" {
		srcs = append([]string{s.Pattern}, srcs...)
	}
	l.patterns, l.names = s.Regexps(), srcs // compiled once, when the config was validated
	if s.Source.URL != "" {
		var err error
		if l.loki, err = newLokiSource(b.deps.HTTP, &s.Source, srcs, s.Exclude, c.Timeout); err != nil {
			b.errf(c.Path()+".source.query", "a query can name the deploy it verifies: "+deployQueryFields+" (empty outside a deploy), e.g. {app=\"web\", version=\"{{ .Deploy.Version }}\"}", "%v", err)
			return nil
		}
	} else {
		l.files = &fileSource{glob: s.Source.File}
	}
	return l
}
