package checks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
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
//   - compression at rotation (app.log.1.gz at once): the gzip copy beside a file gone or
//     truncated that holds the bytes before its checkpoint is read on from there, once
//     (gzipCopy);
//   - a file renamed or deleted between the listing and the read: read under its new
//     name, or passed over (openTarget);
//   - the first time a file is read, only timestamped lines can be dated; a file not
//     modified within the window is skipped whole;
//   - a timestamp later than when vigil looked at the file (by more than logClockSlack) is
//     wrong, a zone the line does not name: the line is dated as if it had none.
//   - when a deploy is registered, the agent has each file's size noted just before and
//     just after the deploy's time (markDeploy): bytes past a mark were written after
//     it, bytes before it before; an undated line still placed only between two looks
//     with the cutoff in between is counted as undated, not dated by the earlier look.
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
	marks   []fileMark    // sizes seen since the last run, when a deploy was registered (markDeploy)
	hitLog

	// opening, when set, is called just before a listed file is opened to be read: tests
	// rotate or delete it there, as logrotate can between vigil's listing and its read.
	opening func(path string)
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
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	return tailAt(f, offset)
}

// tailAt is the checkpointTail bytes (fewer at the start) before offset in f; nil when
// they cannot be read.
func tailAt(f io.ReaderAt, offset int64) []byte {
	n := min(offset, checkpointTail)
	if n <= 0 {
		return nil
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, offset-n); err != nil {
		return nil
	}
	return b
}

// sameTail says whether path still has cp's tail just before cp's offset (true when the
// checkpoint has none to compare, or it cannot be read).
func (cp *checkpoint) sameTail(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return true
	}
	defer f.Close()
	return cp.sameTailAt(f)
}

// sameTailAt is sameTail of the file open as f.
func (cp *checkpoint) sameTailAt(f io.ReaderAt) bool {
	if len(cp.tail) == 0 {
		return true
	}
	now := tailAt(f, cp.offset)
	return now == nil || bytes.Equal(now, cp.tail)
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
			if err != nil || !info.Mode().IsRegular() || compressed(p) || !os.SameFile(cp.info, info) || info.ModTime().Before(keepFrom) {
				continue // (a compressed file is a new one: its identity, one reused; gzipCopy)
			}
			claimed[cp] = true
			targets = append(targets, &logTarget{path: p, info: info, statAt: at, cp: cp})
			if p != cp.path {
				t.Printf("%s was rotated to %s; reading what was written before the rotation", cp.path, p)
			}
			break
		}
	}
	targets, uncopied := findCopies(targets, t)
	defer func() {
		for _, tg := range targets {
			tg.close()
		}
	}()
	r := &logRead{q: q, t: t, tally: tally, lastRun: s.lastRun, keepFrom: keepFrom, now: now,
		budget: q.maxBytes, matched: make([]int, 0, len(q.patterns))}
	if d, ok := ctx.Deadline(); ok {
		r.gzipBy = time.Now().Add(time.Until(d) / 2)
	}
	// Files gone, and files truncated without a plain copy beside them: logrotate's
	// compress may have made the copy a .gz at once.
	for _, cp := range s.cps {
		if !claimed[cp] {
			uncopied = append(uncopied, cp)
		}
	}
	for _, cp := range uncopied {
		tg, err := r.gzipCopy(ctx, cp)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the compressed copies of %s: %w", cp.path, err)
		}
		if tg != nil {
			claimed[cp] = true
			targets = append(targets, tg)
		}
	}

	if len(targets) == 0 {
		// Not a pass: a glob that matches nothing (a typo, logs moved) would pass forever.
		return nil, nil, Inconclusivef("no file matches source.file %q: no log to read", s.glob)
	}
	var next []*checkpoint
	for i, tg := range targets {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", tg.path, err)
		}
		if tg.gz == nil {
			f, err := s.openTarget(tg, t)
			if err != nil {
				return nil, nil, fmt.Errorf("reading %s: %w", tg.path, err)
			}
			if f != nil {
				cp, err := r.plain(f, tg, s.marksOf(tg.info))
				f.Close()
				if err != nil {
					return nil, nil, fmt.Errorf("reading %s: %w", tg.path, err)
				}
				next = append(next, cp)
				continue
			}
			if tg.cp == nil {
				continue
			}
			// Gone between the listing and now, and not beside its old name: compressed
			// at once, or deleted.
			gz, err := r.gzipCopy(ctx, tg.cp)
			if err != nil {
				return nil, nil, fmt.Errorf("reading the compressed copies of %s: %w", tg.cp.path, err)
			}
			if gz == nil {
				delete(claimed, tg.cp) // remembered as a file that left the glob
				continue
			}
			targets[i], tg = gz, gz
		}
		if err := r.compressed(ctx, tg); err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", tg.path, err)
		}
	}
	s.away = leftTheGlob(s.away, s.cps, claimed, listed, keepFrom)
	s.cps = next
	s.lastRun = listed
	s.marks = nil // the checkpoints are later than any of them
	s.merge(&r.noted, q.samples)
	counts, samples, unplaced := s.count(len(q.patterns), cutoff, keepFrom, q.samples)
	if unplaced > 0 {
		tally.undated += unplaced
		t.Printf("%d matching lines were written at a time vigil can only bound, from before %s to after it (lines without a timestamp, appended between two looks at the files with the cutoff between them): not counted, in undated", unplaced, cutoff.Format(time.RFC3339Nano))
	}
	return counts, samples, nil
}

// count forgets matches older than keepFrom and counts those since cutoff, and those
// that may or may not be (unplaced: written at a time bounded from before cutoff to after).
func (s *fileSource) count(patterns int, cutoff, keepFrom time.Time, samples int) (counts []int, out []string, unplaced int) {
	kept := s.hits[:0]
	counts = make([]int, patterns)
	for _, h := range s.hits {
		if h.upto.Before(keepFrom) {
			continue
		}
		kept = append(kept, h)
		switch {
		case !h.at.Before(cutoff):
			counts[h.pattern] += h.n
		case !h.upto.Before(cutoff):
			unplaced += h.n
		}
	}
	s.hits = kept
	out = []string{}
	for _, h := range s.recent {
		if !h.at.Before(cutoff) {
			out = append(out, h.line)
		}
	}
	if len(out) > samples {
		out = out[len(out)-samples:]
	}
	return counts, out, unplaced
}
