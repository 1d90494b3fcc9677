package checks

import (
	"regexp"
	"time"
)

const (
	logLineMax   = 64 << 10 // longer lines are read in pieces of this size
	logSampleMax = 300      // bytes of a sample line
)

// logQuery is what a logscan run asks its source (the file follower or Loki): the lines
// written since a cutoff that match any of the patterns and none of the exclude ones,
// counted per pattern, with a few samples, reading at most maxBytes.
type logQuery struct {
	patterns []*regexp.Regexp
	exclude  []*regexp.Regexp // a line any of these match is not counted
	window   time.Duration    // matches older than this are forgotten
	samples  int
	maxBytes int64
}

// match returns the indexes of the patterns line matches.
func (q *logQuery) match(line []byte, into []int) []int {
	into = into[:0]
	for i, re := range q.patterns {
		if re.Match(line) {
			into = append(into, i)
		}
	}
	return into
}

// excludes reports whether line matches an exclude pattern.
func (q *logQuery) excludes(line []byte) bool {
	for _, re := range q.exclude {
		if re.Match(line) {
			return true
		}
	}
	return false
}

// logScan is what a source tallies as it reads, for the run's variables and notes.
type logScan struct {
	lines, undated int
	excluded       int // lines a pattern matched that an exclude pattern left out
	bytes          int64
	files          int
	truncated      bool
	notes          []string
}
