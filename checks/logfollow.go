package checks

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

const (
	logClockSlack = time.Minute // how far ahead of vigil's clock a line's timestamp is still believed
	logMaxFiles   = 1000        // files one glob may follow
	logMtimeSlack = time.Second // a file's modification time comes from a coarser clock than vigil's
	logMaxHits    = 200_000     // remembered match records
)

// fileSource follows the files a glob matches, across runs, like tail -F.
//
// When was a line written? vigil keeps, per file, a checkpoint: the file's identity
// (device and inode), how far it has read, and when it looked at the file's size. Bytes
// past a checkpoint were written after that moment. A line's time is the later of that
// bound and the timestamp the line starts with (or, for continuation lines such as stack
// traces, the last timestamp before it). A match counts when that time is at or after the
// cutoff: vigil never blames a deploy for a line it cannot place after it.
//
//   - appended lines: read from the checkpoint, dated no earlier than the last run;
//   - rotation (rename + new file): the renamed file is found again by identity, under the
//     glob or as a sibling such as app.log.1, and read to its end; the new file's lines are
//     dated by their timestamps, undated ones no earlier than the last run (a file that
//     comes back under the glob holds old lines); one not modified since is read as a first
//     time;
//   - truncation (size below the checkpoint, copytruncate): read again from the start,
//     and the copy beside it read on from the checkpoint (findCopies);
//   - the first time a file is read, only timestamped lines can be dated; a file not
//     modified within the window is skipped whole;
//   - a timestamp later than when vigil looked at the file (by more than logClockSlack) is
//     wrong, a zone the line does not name: the line is dated as if it had none.
//
// Matches are remembered (time, pattern) for the window, so a run counts every match since
// the cutoff even though it reads each byte once. At most max_bytes are read per run; past
// that the oldest unread bytes are skipped, and the run says so.
type fileSource struct {
	glob string

	mu      sync.Mutex
	lastRun time.Time // when the previous run listed the files; zero before the first
	cps     []*checkpoint
	away    []*checkpoint // files that left the glob, kept for the window (leftTheGlob)
	hitLog
}

// hitLog is the matches remembered for the window.
type hitLog struct {
	hits   []logHit // oldest first, roughly
	recent []logHit // the latest matching lines, with their text
}

type checkpoint struct {
	path   string
	info   os.FileInfo
	offset int64
	at     time.Time // when the size that offset reached was observed
	// tail is the bytes just before offset: a file truncated and written past the offset
	// again between two runs has its size and identity, not these bytes.
	tail []byte
	left time.Time // when the file was last seen under the glob, once it has left it
}

// checkpointTail is how many bytes before its offset a checkpoint keeps.
const checkpointTail = 64

// tailBefore is the checkpointTail bytes (fewer at a file's start) before offset in path;
// nil when they cannot be read.
func tailBefore(path string, offset int64) []byte {
	n := min(offset, checkpointTail)
	if n <= 0 {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, offset-n); err != nil {
		return nil
	}
	return b
}

// sameTail says whether path still has cp's tail just before cp's offset (true when the
// checkpoint has none to compare).
func (cp *checkpoint) sameTail(path string) bool {
	if len(cp.tail) == 0 {
		return true
	}
	now := tailBefore(path, cp.offset)
	return now == nil || bytes.Equal(now, cp.tail)
}

// lineHit is a pattern a line matched and the text it matched in (for samples).
type lineHit struct {
	pattern int
	text    []byte
}

type logHit struct {
	at      time.Time
	pattern int
	n       int
	line    string
}

// scan reads what was written since the last run and returns the counts per pattern since
// cutoff, and sample lines.
func (s *fileSource) scan(ctx context.Context, q *logQuery, t *Transcript, cutoff, now time.Time, tally *logScan) ([]int, []string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keepFrom := now.Add(-q.window)
	listed := time.Now()
	paths, err := filepath.Glob(s.glob)
	if err != nil {
		return nil, nil, fmt.Errorf("source.file %q: %w", s.glob, err)
	}
	sort.Strings(paths)
	if len(paths) > logMaxFiles {
		tally.truncated = true
		tally.notes = append(tally.notes, fmt.Sprintf("the glob matches %d files; only the %d modified last are followed", len(paths), logMaxFiles))
		paths = newest(paths, logMaxFiles)
	}

	var targets []*logTarget
	claimed := map[*checkpoint]bool{}
	known := s.cps
	if len(s.away) > 0 {
		known = append(slices.Clip(s.cps), s.away...)
	}
	for _, p := range paths {
		at := time.Now()
		info, err := os.Stat(p)
		if err != nil || !info.Mode().IsRegular() || compressed(p) {
			continue
		}
		tg := &logTarget{path: p, info: info, statAt: at}
		for _, cp := range known {
			if !claimed[cp] && os.SameFile(cp.info, info) && (cp.left.IsZero() || info.Size() >= cp.offset && cp.sameTail(p)) {
				// (a file back under the glob must hold what vigil read: not an inode reused)
				tg.cp, claimed[cp] = cp, true
				break
			}
		}
		targets = append(targets, tg)
	}
	// Files followed before and no longer under the glob: rotated out (app.log -> app.log.1).
	// Find them by identity next to their old name and read what was appended before the
	// rename; keep following them, under the name they were found by, while they are
	// recent: the writer goes on in the renamed file until it reopens its log.
	for _, cp := range s.cps {
		if claimed[cp] {
			continue
		}
		siblings, _ := filepath.Glob(escapeGlob(cp.path) + "?*")
		for _, p := range append([]string{cp.path}, siblings...) {
			at := time.Now()
			info, err := os.Stat(p)
			if err != nil || !info.Mode().IsRegular() || !os.SameFile(cp.info, info) || info.ModTime().Before(keepFrom) {
				continue
			}
			claimed[cp] = true
			targets = append(targets, &logTarget{path: p, info: info, statAt: at, cp: cp})
			if p != cp.path {
				t.Printf("%s was rotated to %s; reading what was written before the rotation", cp.path, p)
			}
			break
		}
	}
	targets = findCopies(targets, t)

	if len(targets) == 0 {
		// Not a pass: a glob that matches nothing (a typo, logs moved) would pass forever.
		return nil, nil, Inconclusivef("no file matches source.file %q: no log to read", s.glob)
	}
	budget := q.maxBytes
	var next []*checkpoint
	// This run's matches, remembered only if it ends well: a run that fails part way
	// leaves the checkpoints where they were, and the next reads the same bytes again.
	var noted hitLog
	matched := make([]int, 0, len(q.patterns))
	for _, tg := range targets {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", tg.path, err)
		}
		size := tg.info.Size()
		var from int64
		var lower time.Time
		flush, ownTime := false, false
		switch {
		case tg.cp != nil && size >= tg.cp.offset && tg.cp.sameTail(tg.path):
			from, lower = tg.cp.offset, tg.cp.at
			// A last line without a newline that stayed as it was for a whole run is not
			// being written: its writer was killed or moved on. It is a line; read it.
			flush = size == tg.cp.info.Size() && tg.info.ModTime().Equal(tg.cp.info.ModTime())
		case tg.cp != nil && size >= tg.cp.offset:
			// Truncated and written past the old offset since (copytruncate, then a burst):
			// the bytes before the checkpoint are not those read there.
			lower = tg.cp.at
			t.Printf("%s was truncated and written again (%d bytes; the bytes before offset %d changed); reading it from the start", tg.path, size, tg.cp.offset)
		case tg.cp != nil:
			lower = tg.cp.at
			t.Printf("%s was truncated (%d bytes, %d before); reading it from the start", tg.path, size, tg.cp.offset)
		case !s.lastRun.IsZero() && !tg.info.ModTime().Before(s.lastRun.Add(-logMtimeSlack)):
			// New under the glob and written since the last run: the new file after a
			// rotation, a new pod's; or an old file come back (a release directory swapped
			// in on a rollback) and written again. Its first bytes may be older than the
			// last run: a line with a timestamp of its own is dated by it.
			lower, ownTime = s.lastRun, true
		case tg.info.ModTime().Before(keepFrom):
			from = size // untouched within the window: nothing in it can count
		}
		// A line was written before vigil saw the file hold it: a timestamp later than that
		// (a zone the line does not name, ahead of vigil's) is wrong, and would date old
		// lines after a deploy still to come.
		notAfter := tg.statAt.Add(logClockSlack)
		skipFirst := false
		if size-from > budget {
			skipped := size - from - budget
			tally.truncated = true
			tally.notes = append(tally.notes, fmt.Sprintf("%s: %d bytes skipped (max_bytes %d per run)", tg.path, skipped, q.maxBytes))
			from, skipFirst = size-budget, true
		}
		offset := from
		if size > from {
			var hits []lineHit // the patterns the line being read matched, in its pieces so far
			future := 0
			n, err := s.readFile(tg.path, from, size, skipFirst, flush, notAfter, &future, func(piece []byte, ts time.Time, end bool) {
				for _, i := range q.match(piece, matched) {
					if !slices.ContainsFunc(hits, func(h lineHit) bool { return h.pattern == i }) {
						text := piece
						if !end { // the reader's buffer is reused for the next piece
							text = bytes.Clone(piece[:min(len(piece), 2*logSampleMax)])
						}
						hits = append(hits, lineHit{pattern: i, text: text})
					}
				}
				if !end {
					return
				}
				tally.lines++
				at := ts
				if lower.After(at) && (!ownTime || at.IsZero()) {
					at = lower
				}
				for _, h := range hits {
					switch {
					case at.IsZero():
						tally.undated++
					case !at.Before(keepFrom):
						noted.remember(at, h.pattern, h.text, q.samples)
					}
				}
				hits = hits[:0]
			}, now)
			if future > 0 {
				t.Printf("%s: %d lines carry a timestamp later than when vigil read them (a time zone the lines do not name?); they are placed by when vigil saw the file grow, as if they had none", tg.path, future)
			}
			tally.bytes += n
			budget -= size - from
			offset = from + n
			if err != nil {
				return nil, nil, fmt.Errorf("reading %s: %w", tg.path, err)
			}
		}
		tally.files++
		cp := &checkpoint{path: tg.path, info: tg.info, offset: offset, at: tg.statAt}
		if tg.cp != nil && offset == tg.cp.offset && from == offset {
			cp.tail = tg.cp.tail // nothing read: the same bytes end at the offset
		} else {
			cp.tail = tailBefore(tg.path, offset)
		}
		next = append(next, cp)
	}
	s.away = leftTheGlob(s.away, s.cps, claimed, listed, keepFrom)
	s.cps = next
	s.lastRun = listed
	s.merge(&noted, q.samples)
	return s.count(len(q.patterns), cutoff, keepFrom, q.samples)
}

// readFile reads [from, to) of path line by line and returns the bytes consumed: up to the
// end of the last complete line, so a line still being written is read whole next time
// (unless flush: then the last line is read, newline or not). A timestamp after notAfter is not believed (counted in future): the line, and the
// continuation lines after it, are handed on as undated.
func (s *fileSource) readFile(path string, from, to int64, skipFirst, flush bool, notAfter time.Time, future *int,
	fn func(piece []byte, ts time.Time, end bool), now time.Time) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return 0, err
	}
	var last time.Time
	skip, start := skipFirst, true // start: the next piece begins a line
	return readLines(io.LimitReader(f, to-from), flush, func(piece []byte, end bool) {
		if skip {
			skip = !end
			return // cut at the byte cap: a partial line
		}
		if start {
			if ts, ok := ParseLogTime(piece, now, time.Local); ok {
				last = ts
				if ts.After(notAfter) {
					last = time.Time{}
					*future++
				}
			}
		}
		start = end
		fn(piece, last, end)
	})
}

// readLines calls fn for each complete line of r, without its newline, and returns the
// bytes consumed. A line longer than logLineMax comes in pieces of at most that, end true
// on its last (so a match anywhere in a long line is seen; one across two pieces is not).
// fn must not keep a piece: the buffer is reused. A final partial line is not consumed
// unless it is already longer than logLineMax (some of it was handed out) or flush is set.
func readLines(r io.Reader, flush bool, fn func(piece []byte, end bool)) (int64, error) {
	br := bufio.NewReaderSize(r, logLineMax)
	var consumed, pending int64
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			fn(trimEOL(chunk), true)
			consumed += pending + int64(len(chunk))
			pending = 0
		case errors.Is(err, bufio.ErrBufferFull):
			fn(chunk, false)
			pending += int64(len(chunk))
		case errors.Is(err, io.EOF):
			if pending > 0 || (flush && len(chunk) > 0) {
				fn(trimEOL(chunk), true)
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

// remember records a match for later runs within the window.
func (s *hitLog) remember(at time.Time, pattern int, line []byte, samples int) {
	s.add(logHit{at: at, pattern: pattern, n: 1})
	if samples > 0 {
		s.addRecent(logHit{at: at, pattern: pattern, line: Trim(strings.TrimSpace(string(line)), logSampleMax)}, samples)
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
	if n := len(s.hits); n > 0 && s.hits[n-1].at.Equal(h.at) && s.hits[n-1].pattern == h.pattern {
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

// count forgets matches older than keepFrom and counts those since cutoff.
func (s *fileSource) count(patterns int, cutoff, keepFrom time.Time, samples int) ([]int, []string, error) {
	kept := s.hits[:0]
	counts := make([]int, patterns)
	for _, h := range s.hits {
		if h.at.Before(keepFrom) {
			continue
		}
		kept = append(kept, h)
		if !h.at.Before(cutoff) {
			counts[h.pattern] += h.n
		}
	}
	s.hits = kept
	out := []string{}
	for _, h := range s.recent {
		if !h.at.Before(cutoff) {
			out = append(out, h.line)
		}
	}
	if len(out) > samples {
		out = out[len(out)-samples:]
	}
	return counts, out, nil
}
