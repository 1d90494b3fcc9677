package checks

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// hitLog is the matches remembered for the window.
type hitLog struct {
	hits   []logHit // oldest first, roughly
	recent []logHit // the latest matching lines, with their text
}

// lineHit is a pattern a line matched and the text it matched in (for samples).
type lineHit struct {
	pattern int
	text    []byte
}

type logHit struct {
	at      time.Time
	upto    time.Time // the latest the line can have been written (at, when it was dated exactly)
	pattern int
	n       int
	line    string
}

// logRead is one run's reading of a fileSource's files: what it may still read, and the
// matches it noted, remembered only if the run ends well (a run that fails part way leaves
// the checkpoints where they were, and the next reads the same bytes again).
type logRead struct {
	q        *logQuery
	t        *Transcript
	tally    *logScan
	lastRun  time.Time // when the previous run listed the files; zero before the first
	keepFrom time.Time
	now      time.Time
	budget   int64     // what is left of max_bytes
	gzipBy   time.Time // when to give up on compressed copies (gzipCopy); zero: no deadline
	noted    hitLog
	matched  []int
}

// plain reads what tg's file, open as f, holds past its checkpoint, and returns the
// checkpoint the next run goes on from.
func (r *logRead) plain(f *os.File, tg *logTarget, marks []fileMark) (*checkpoint, error) {
	size := tg.info.Size()
	var from int64
	var lower time.Time
	flush, ownTime := false, false
	switch {
	case tg.cp != nil && size >= tg.cp.offset && tg.cp.sameTailAt(f):
		from, lower = tg.cp.offset, tg.cp.at
		// A last line without a newline that stayed as it was for a whole run is not
		// being written: its writer was killed or moved on. It is a line; read it.
		flush = size == tg.cp.info.Size() && tg.info.ModTime().Equal(tg.cp.info.ModTime())
	case tg.cp != nil && size >= tg.cp.offset:
		// Truncated and written past the old offset since (copytruncate, then a burst), or
		// a new file that got the old one's inode: the bytes before the checkpoint are not
		// those read there.
		lower = tg.cp.at
		r.t.Printf("%s was truncated and written again (%d bytes; the bytes before offset %d changed); reading it from the start", tg.path, size, tg.cp.offset)
	case tg.cp != nil:
		lower = tg.cp.at
		r.t.Printf("%s was truncated (%d bytes, %d before); reading it from the start", tg.path, size, tg.cp.offset)
	case !r.lastRun.IsZero() && !tg.info.ModTime().Before(r.lastRun.Add(-logMtimeSlack)):
		// New under the glob and written since the last run: the new file after a
		// rotation, a new pod's; or an old file come back (a release directory swapped
		// in on a rollback) and written again. Its first bytes may be older than the
		// last run: a line with a timestamp of its own is dated by it.
		lower, ownTime = r.lastRun, true
	case tg.info.ModTime().Before(r.keepFrom):
		from = size // untouched within the window: nothing in it can count
	}
	d := dating{lower: lower, ownTime: ownTime, upper: tg.statAt}
	if tg.cp == nil || from == tg.cp.offset {
		d.marks = marks // (not after a truncation: the offsets marked are another content's)
	}
	skipFirst := false
	if size-from > r.budget {
		skipped := size - from - r.budget
		r.tally.truncated = true
		r.tally.notes = append(r.tally.notes, fmt.Sprintf("%s: %d bytes skipped (max_bytes %d per run)", tg.path, skipped, r.q.maxBytes))
		from, skipFirst = size-r.budget, true
	}
	offset := from
	if size > from {
		if _, err := f.Seek(from, io.SeekStart); err != nil {
			return nil, err
		}
		d.base = from
		n, err := r.read(tg, io.LimitReader(f, size-from), skipFirst, flush, &d)
		r.budget -= size - from
		offset = from + n
		if err != nil {
			return nil, err
		}
	}
	r.tally.files++
	cp := &checkpoint{path: tg.path, info: tg.info, offset: offset, at: tg.statAt}
	if tg.cp != nil && offset == tg.cp.offset && from == offset {
		cp.tail = tg.cp.tail // nothing read: the same bytes end at the offset
	} else {
		cp.tail = tailAt(f, offset)
	}
	return cp, nil
}

// read reads src, the bytes of tg past where reading starts, line by line, notes the
// matches, and returns the bytes consumed: up to the end of the last complete line, so a
// line still being written is read whole next time (unless flush: then the last line is
// read, newline or not). skipFirst: src starts in the middle of a line (the byte cap).
// A line is dated by its timestamp, or the last before it, and no earlier than d's lower
// bound (unless ownTime and it has one); one without a timestamp may have been written
// any time up to d's upper bound (dating.bounds). A timestamp later than when vigil saw the file hold the
// line (by more than logClockSlack) is not believed: a zone the line does not name, ahead
// of vigil's, would date old lines after a deploy still to come. The line, and the
// continuation lines after it, are then undated.
func (r *logRead) read(tg *logTarget, src io.Reader, skipFirst, flush bool, d *dating) (int64, error) {
	notAfter := tg.statAt.Add(logClockSlack)
	var hits []lineHit // the patterns the line being read matched, in its pieces so far
	excluded := false  // an exclude pattern matched one of the line's pieces so far
	var last time.Time
	future := 0
	skip, start := skipFirst, true // start: the next piece begins a line
	pos, lineAt := d.base, d.base  // file offsets: of the next piece, of the line's start
	n, err := readLines(src, flush, func(piece []byte, end bool, raw int) {
		pos += int64(raw)
		if skip {
			skip = !end
			return // cut at the byte cap: a partial line
		}
		if start {
			lineAt = pos - int64(raw)
			if ts, ok := ParseLogTime(piece, r.now, time.Local); ok {
				last = ts
				if ts.After(notAfter) {
					last = time.Time{}
					future++
				}
			}
		}
		whole := start && end
		start = end
		for _, i := range r.q.match(piece, r.matched) {
			if !slices.ContainsFunc(hits, func(h lineHit) bool { return h.pattern == i }) {
				text := piece
				if !end { // the reader's buffer is reused for the next piece
					text = bytes.Clone(piece[:min(len(piece), 2*logSampleMax)])
				}
				hits = append(hits, lineHit{pattern: i, text: text})
			}
		}
		// A line in pieces may match a pattern in one and an exclude pattern in another.
		if !excluded && (len(hits) > 0 || !whole) && r.q.excludes(piece) {
			excluded = true
		}
		if !end {
			return
		}
		if excluded && len(hits) > 0 {
			r.tally.excluded++
			hits = hits[:0]
		}
		excluded = false
		r.tally.lines++
		at, upto := last, last
		switch {
		case at.IsZero():
			// Undated: written between the bounds vigil has of the line's bytes.
			at, upto = d.bounds(lineAt, pos)
		case d.lower.After(at) && !d.ownTime:
			// Its timestamp says before the bound: the later of the two, and not later
			// than the bound. (The marks are not such a bound: an old version's buffered
			// lines, flushed as it stops after the deploy was registered, carry their
			// times from before it.)
			at, upto = d.lower, d.lower
		}
		for _, h := range hits {
			switch {
			case at.IsZero():
				r.tally.undated++
			case !upto.Before(r.keepFrom):
				r.noted.remember(at, upto, h.pattern, h.text, r.q.samples)
			}
		}
		hits = hits[:0]
	})
	if future > 0 {
		r.t.Printf("%s: %d lines carry a timestamp later than when vigil read them (a time zone the lines do not name?); they are placed by when vigil saw the file grow, as if they had none", tg.path, future)
	}
	r.tally.bytes += n
	return n, err
}

// readLines calls fn for each complete line of r, without its newline, and returns the
// bytes consumed. A line longer than logLineMax comes in pieces of at most that, end true
// on its last (so a match anywhere in a long line is seen; one across two pieces is not).
// fn must not keep a piece: the buffer is reused. A final partial line is not consumed
// unless it is already longer than logLineMax (some of it was handed out) or flush is set.
// raw is how many bytes of r the piece took, its line end included.
func readLines(r io.Reader, flush bool, fn func(piece []byte, end bool, raw int)) (int64, error) {
	br := bufio.NewReaderSize(r, logLineMax)
	var consumed, pending int64
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			fn(trimEOL(chunk), true, len(chunk))
			consumed += pending + int64(len(chunk))
			pending = 0
		case errors.Is(err, bufio.ErrBufferFull):
			fn(chunk, false, len(chunk))
			pending += int64(len(chunk))
		case errors.Is(err, io.EOF):
			if pending > 0 || (flush && len(chunk) > 0) {
				fn(trimEOL(chunk), true, len(chunk))
				consumed += pending + int64(len(chunk))
			}
			return consumed, nil
		default:
			return consumed, err
		}
	}
}

func trimEOL(b []byte) []byte {
	return bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
}

// remember records a match for later runs within the window. A sample is made valid
// UTF-8 (a Latin-1 name in a log line): it goes into JSON, the store and chat messages.
func (s *hitLog) remember(at, upto time.Time, pattern int, line []byte, samples int) {
	s.add(logHit{at: at, upto: upto, pattern: pattern, n: 1})
	if samples > 0 {
		text := strings.ToValidUTF8(strings.TrimSpace(string(line)), "\uFFFD")
		s.addRecent(logHit{at: at, pattern: pattern, line: Trim(text, logSampleMax)}, samples)
	}
}

// merge remembers what another log noted.
func (s *hitLog) merge(o *hitLog, samples int) {
	for _, h := range o.hits {
		s.add(h)
	}
	for _, h := range o.recent {
		s.addRecent(h, samples)
	}
}

func (s *hitLog) add(h logHit) {
	if n := len(s.hits); n > 0 && s.hits[n-1].at.Equal(h.at) && s.hits[n-1].upto.Equal(h.upto) && s.hits[n-1].pattern == h.pattern {
		s.hits[n-1].n += h.n
		return
	}
	if len(s.hits) >= logMaxHits {
		s.hits = append(s.hits[:0], s.hits[len(s.hits)/2:]...) // pathological logs: keep the newer half
	}
	s.hits = append(s.hits, h)
}

func (s *hitLog) addRecent(h logHit, samples int) {
	if samples <= 0 {
		return
	}
	if keep := samples * 4; len(s.recent) >= keep {
		s.recent = append(s.recent[:0], s.recent[len(s.recent)-keep+1:]...)
	}
	s.recent = append(s.recent, h)
}
