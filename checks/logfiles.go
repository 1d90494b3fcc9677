package checks

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// logTarget is a file a run reads: its path and what os.Stat said at statAt, and the
// checkpoint it goes on from (nil: vigil has not read it before).
type logTarget struct {
	path   string
	info   os.FileInfo
	statAt time.Time
	cp     *checkpoint
	gz     *gzipStream // a compressed copy, read on from cp (gzipCopy)
}

func (tg *logTarget) close() {
	if tg.gz != nil {
		tg.gz.Close()
		tg.gz = nil
	}
}

// openTarget opens tg's file to read it. logrotate may have renamed or deleted it since
// the listing: a file found by its identity beside its old name (app.log.1) is opened
// there, and tg.path becomes that name; one not found is noted, and nil returned. Any
// other failure to open it (permission denied, EIO) is an error.
func (s *fileSource) openTarget(tg *logTarget, t *Transcript) (*os.File, error) {
	if s.opening != nil {
		s.opening(tg.path)
	}
	if f, err := openSame(tg.path, tg.info); f != nil || err != nil {
		return f, err
	}
	siblings, _ := filepath.Glob(escapeGlob(tg.path) + "?*")
	for _, p := range siblings {
		if info, err := os.Stat(p); err != nil || compressed(p) || !os.SameFile(info, tg.info) {
			continue
		}
		f, err := openSame(p, tg.info)
		if f != nil {
			t.Printf("%s was rotated to %s after vigil listed it; reading it there", tg.path, p)
			tg.path = p
		}
		if f != nil || err != nil {
			return f, err
		}
	}
	t.Printf("%s was deleted or rotated away after vigil listed it, and no file beside it is the one listed: not read", tg.path)
	return nil, nil
}

// openSame opens path if it is the file info describes; nil, and no error, if path does
// not exist or is another file.
func openSame(path string, info os.FileInfo) (*os.File, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now, err := f.Stat()
	if err != nil || !os.SameFile(now, info) {
		f.Close()
		return nil, err
	}
	return f, nil
}

// findCopies recognises the copy that logrotate's copytruncate made of a followed file it
// then truncated: a file beside it, with another identity, that holds the bytes vigil
// read up to its checkpoint. The copy goes on from that checkpoint: under the glob, it is
// not read from its start as new lines (which dated the old ones after the last run and
// counted them twice); outside it, it is added, so that the lines written between vigil's
// last read and the copy, which are only there now, are read. Returns targets with copies
// found outside the glob appended, and the checkpoints of truncated files without a copy
// (logrotate may have compressed it: gzipCopy).
func findCopies(targets []*logTarget, t *Transcript) ([]*logTarget, []*checkpoint) {
	var truncated, uncopied []*checkpoint
	have := make(map[string]bool, len(targets))
	for _, tg := range targets {
		have[tg.path] = true
		if cp := tg.cp; cp != nil && len(cp.tail) > 0 && (tg.info.Size() < cp.offset || !cp.sameTail(tg.path)) {
			truncated = append(truncated, cp)
		}
	}
	if len(truncated) == 0 {
		return targets, nil
	}
	isCopy := func(path string, info os.FileInfo, cp *checkpoint) bool {
		return info.Mode().IsRegular() && !compressed(path) && info.Size() >= cp.offset && !os.SameFile(info, cp.info) &&
			filepath.Dir(path) == filepath.Dir(cp.path) && bytes.Equal(tailBefore(path, cp.offset), cp.tail)
	}
	from := func(cp *checkpoint, path string, info os.FileInfo) *checkpoint {
		t.Printf("%s is a copy of %s (copytruncate): reading it from where vigil had read %s, offset %d", path, cp.path, cp.path, cp.offset)
		return &checkpoint{path: path, info: info, offset: cp.offset, at: cp.at, tail: cp.tail}
	}
	for _, cp := range truncated {
		found := false
		for _, tg := range targets {
			if tg.cp == nil && isCopy(tg.path, tg.info, cp) {
				tg.cp, found = from(cp, tg.path, tg.info), true
				break
			}
		}
		if found {
			continue
		}
		siblings, _ := filepath.Glob(escapeGlob(cp.path) + "?*")
		for _, p := range siblings {
			at := time.Now()
			info, err := os.Stat(p)
			if have[p] || err != nil || !isCopy(p, info, cp) {
				continue
			}
			have[p], found = true, true
			targets = append(targets, &logTarget{path: p, info: info, statAt: at, cp: from(cp, p, info)})
			break
		}
		if !found {
			uncopied = append(uncopied, cp)
		}
	}
	return targets, uncopied
}

// leftTheGlob is what becomes of the checkpoints of files no longer under the glob nor
// found beside their old name (a release directory a symlink pointed away from): kept for
// the window, from when they left, so that a file that comes back (the rollback that
// points the symlink back) is read on from where vigil had read it, and its undated lines
// are not taken for lines written since the last run. At most logMaxFiles, the latest.
func leftTheGlob(away, cps []*checkpoint, claimed map[*checkpoint]bool, now, keepFrom time.Time) []*checkpoint {
	var out []*checkpoint
	for _, cp := range away {
		if !claimed[cp] && !cp.left.Before(keepFrom) {
			out = append(out, cp)
		}
	}
	for _, cp := range cps {
		if !claimed[cp] {
			cp.left = now
			out = append(out, cp)
		}
	}
	if len(out) > logMaxFiles {
		out = out[len(out)-logMaxFiles:]
	}
	return out
}

// newest is the n of paths modified last, in name order.
func newest(paths []string, n int) []string {
	type file struct {
		path string
		mod  time.Time
	}
	files := make([]file, 0, len(paths))
	for _, p := range paths {
		var mod time.Time
		if info, err := os.Stat(p); err == nil {
			mod = info.ModTime()
		}
		files = append(files, file{p, mod})
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].mod.After(files[j].mod) })
	out := make([]string, 0, n)
	for _, f := range files[:n] {
		out = append(out, f.path)
	}
	sort.Strings(out)
	return out
}

// compressed reports whether a path names a compressed (rotated) log, which logscan skips.
func compressed(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4":
		return true
	}
	return false
}

// escapeGlob quotes the glob metacharacters of a literal path.
func escapeGlob(p string) string {
	var b strings.Builder
	for _, r := range p {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
