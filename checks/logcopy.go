package checks

import (
	"bytes"
	"os"
	"path/filepath"
	"time"
)

// logTarget is a file a run reads: its path and what os.Stat said at statAt, and the
// checkpoint it goes on from (nil: vigil has not read it before).
type logTarget struct {
	path   string
	info   os.FileInfo
	statAt time.Time
	cp     *checkpoint
}

// findCopies recognises the copy that logrotate's copytruncate made of a followed file it
// then truncated: a file beside it, with another identity, that holds the bytes vigil
// read up to its checkpoint. The copy goes on from that checkpoint: under the glob, it is
// not read from its start as new lines (which dated the old ones after the last run and
// counted them twice); outside it, it is added, so that the lines written between vigil's
// last read and the copy, which are only there now, are read. Returns targets with copies
// found outside the glob appended.
func findCopies(targets []*logTarget, t *Transcript) []*logTarget {
	var truncated []*checkpoint
	have := make(map[string]bool, len(targets))
	for _, tg := range targets {
		have[tg.path] = true
		if cp := tg.cp; cp != nil && len(cp.tail) > 0 && (tg.info.Size() < cp.offset || !cp.sameTail(tg.path)) {
			truncated = append(truncated, cp)
		}
	}
	if len(truncated) == 0 {
		return targets
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
			have[p] = true
			targets = append(targets, &logTarget{path: p, info: info, statAt: at, cp: from(cp, p, info)})
			break
		}
	}
	return targets
}
