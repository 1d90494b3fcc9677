package checks

import (
	"os"
	"path/filepath"
	"time"
)

// logMaxMarks bounds the sizes a fileSource remembers between two runs (markDeploy).
const logMaxMarks = 4 * logMaxFiles

// fileMark is a file's size seen between two runs: its bytes before size were written
// before done, those past it after at.
type fileMark struct {
	info     os.FileInfo
	size     int64
	at, done time.Time // just before and just after the size was read
}

// dating is what a read knows of when the bytes it reads were written.
type dating struct {
	lower   time.Time  // after this: a checkpoint's time, the last run (zero: unknown)
	ownTime bool       // a timestamped line may be older than lower (a file new under the glob)
	upper   time.Time  // before this: when vigil saw the file hold them
	base    int64      // the file offset the read starts at
	marks   []fileMark // the file's sizes seen in between
}

// bounds are the times an undated line from offset start to end was written between: a
// mark the line starts at or after raises the lower bound, one it ends before lowers the
// upper. A zero lower bound: vigil cannot tell (a first read).
func (d *dating) bounds(start, end int64) (lower, upper time.Time) {
	lower, upper = d.lower, d.upper
	for _, m := range d.marks {
		if m.size <= start && m.at.After(lower) {
			lower = m.at
		}
		if end <= m.size && m.done.Before(upper) {
			upper = m.done
		}
	}
	return lower, upper
}

// deployMarker is implemented by probers that note where things stand when a deploy is
// registered, so that their next run tells what came before it from what came after.
type deployMarker interface {
	markDeploy()
}

// MarkDeploy tells the check a deploy is being registered. The agent calls it just before
// it takes the deploy's time and again just after (and when a verification starts after a
// restart). A logscan file source notes how far each of its files has grown: a line
// written past that point is dated after it, a line before it before it, although its
// first run after the deploy comes minutes later and the line has no timestamp. Without
// the marks, such lines could only be dated by the run before the deploy. A line with a
// timestamp is dated as before: by it, and no earlier than vigil's look before it.
func (c *Check) MarkDeploy() {
	if m, ok := c.prober.(deployMarker); ok {
		m.markDeploy()
	}
}

func (l *Logscan) markDeploy() {
	if l.files != nil {
		l.files.markDeploy()
	}
}

// markDeploy notes the size of each file the glob matches and each file followed.
func (s *fileSource) markDeploy() {
	s.mu.Lock()
	defer s.mu.Unlock()
	paths, _ := filepath.Glob(s.glob)
	if len(paths) > logMaxFiles {
		paths = newest(paths, logMaxFiles)
	}
	for _, cp := range s.cps {
		paths = append(paths, cp.path) // (a file rotated out of the glob, still written)
	}
	seen := make([]os.FileInfo, 0, len(paths))
	for _, p := range paths {
		at := time.Now()
		info, err := os.Stat(p)
		done := time.Now()
		if err != nil || !info.Mode().IsRegular() || compressed(p) || sameAsAny(info, seen) {
			continue
		}
		seen = append(seen, info)
		s.marks = append(s.marks, fileMark{info: info, size: info.Size(), at: at, done: done})
	}
	if len(s.marks) > logMaxMarks {
		s.marks = s.marks[len(s.marks)-logMaxMarks:]
	}
}

// marksOf are the marks of the file info describes.
func (s *fileSource) marksOf(info os.FileInfo) []fileMark {
	var out []fileMark
	for _, m := range s.marks {
		if os.SameFile(m.info, info) && m.size <= info.Size() {
			out = append(out, m)
		}
	}
	return out
}

func sameAsAny(info os.FileInfo, list []os.FileInfo) bool {
	for _, o := range list {
		if os.SameFile(o, info) {
			return true
		}
	}
	return false
}
