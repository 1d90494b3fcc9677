package checks

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// logGzipMax is how far into a compressed copy vigil decompresses to find where it had
// read the file: past it, the copy is not read (a run would spend its time there).
const logGzipMax = 1 << 30

// gzipStream is a compressed copy open for reading, decompressed, from where vigil had
// read the file it is a copy of. Reads fail once its context is done.
type gzipStream struct {
	f       *os.File
	in, out *ctxReader
}

func (z *gzipStream) Read(p []byte) (int, error) { return z.out.Read(p) }

func (z *gzipStream) Close() error { return z.f.Close() }

// ctxReader is a reader that stops when ctx is done: decompression works without waiting,
// and a hostile file can keep it busy.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// errNotCopy: a compressed file that does not hold what vigil read where it had read it.
var errNotCopy = errors.New("not a copy")

// gzipCopy finds the gzip copy that logrotate's compress (without delaycompress) made of
// the file of cp when it rotated it: a file beside it ending in .gz, modified since vigil
// read the file up to cp, whose content holds cp's tail just before cp's offset. It is
// returned open, decompressed up to that offset; nil when there is none. An error only
// when the run's ctx is done.
//
// The search is bounded: at most logGzipMax bytes are decompressed to find the offset,
// no more compressed bytes are read than that decompressed size and max_bytes could take,
// and all the compressed copies of a run get half the time it had left when it listed the
// files (r.gzipBy): a run that failed on its deadline there would leave its checkpoints
// as they were, and the next would meet the same copies with the same time, and fail too.
func (r *logRead) gzipCopy(ctx context.Context, cp *checkpoint) (*logTarget, error) {
	if len(cp.tail) == 0 {
		return nil, nil // vigil had read nothing of it: nothing to recognise it by
	}
	siblings, _ := filepath.Glob(escapeGlob(cp.path) + "?*")
	for _, p := range siblings {
		at := time.Now()
		info, err := os.Stat(p)
		if err != nil || !strings.EqualFold(filepath.Ext(p), ".gz") || !info.Mode().IsRegular() ||
			info.ModTime().Before(cp.at.Add(-logMtimeSlack)) {
			continue // made before vigil read the file up to cp: nothing written since is there
		}
		if cp.offset > logGzipMax {
			r.t.Printf("%s: not read: vigil had read %d bytes of %s, more than the %d it decompresses to find its place in a compressed copy", p, cp.offset, cp.path, logGzipMax)
			return nil, nil
		}
		z, err := r.openGzipAt(ctx, p, cp)
		if err != nil {
			return nil, err
		}
		if z != nil {
			return &logTarget{path: p, info: info, statAt: at, cp: cp, gz: z}, nil
		}
	}
	return nil, nil
}

// openGzipAt opens the gzip file path and decompresses it up to cp's offset; nil when its
// content there is not cp's tail (or it cannot be read, or is corrupt, or is too slow).
func (r *logRead) openGzipAt(ctx context.Context, path string, cp *checkpoint) (*gzipStream, error) {
	f, err := os.Open(path)
	if err != nil {
		r.t.Printf("%s: not read: %v", path, err)
		return nil, nil
	}
	find, cancel := context.WithCancel(ctx)
	if !r.gzipBy.IsZero() {
		find, cancel = context.WithDeadline(ctx, r.gzipBy)
	}
	defer cancel()
	n := cp.offset + r.q.maxBytes // the most decompressed bytes a run takes from it
	z := &gzipStream{f: f, in: &ctxReader{ctx: find, r: io.LimitReader(f, n+n/64+64<<10)}}
	zr, err := gzip.NewReader(z.in)
	if err == nil {
		z.out = &ctxReader{ctx: find, r: zr}
		_, err = io.CopyN(io.Discard, z.out, cp.offset-int64(len(cp.tail)))
	}
	if err == nil {
		tail := make([]byte, len(cp.tail))
		if _, err = io.ReadFull(z.out, tail); err == nil && !bytes.Equal(tail, cp.tail) {
			err = errNotCopy
		}
	}
	if err == nil {
		z.in.ctx, z.out.ctx = ctx, ctx // reading on is bounded by max_bytes, as for any file
		return z, nil
	}
	f.Close()
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case find.Err() != nil:
		r.t.Printf("%s: not read: vigil gave up finding where it had read %s in it (compressed copies may take half the time the run had when it listed the files)", path, cp.path)
	}
	return nil, nil
}

// compressed reads tg, a compressed copy open at its checkpoint, to its end or what is
// left of max_bytes. Its lines were written after vigil read up to the checkpoint. The
// copy is read once: no checkpoint follows it (nothing writes to it).
func (r *logRead) compressed(ctx context.Context, tg *logTarget) error {
	defer tg.close()
	limit := r.budget
	n, err := r.read(tg, io.LimitReader(tg.gz, limit), false, true, &dating{lower: tg.cp.at, upper: tg.statAt, base: tg.cp.offset})
	r.budget -= n
	r.tally.files++
	r.t.Printf("%s is a compressed copy of %s: read %d bytes from where vigil had read %s, offset %d", tg.path, tg.cp.path, n, tg.cp.path, tg.cp.offset)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		r.t.Printf("%s: reading stopped there: %v", tg.path, err)
	case n >= limit:
		if k, _ := io.ReadFull(tg.gz, make([]byte, 1)); k > 0 {
			r.tally.truncated = true
			r.tally.notes = append(r.tally.notes, fmt.Sprintf("%s: the bytes past the first %d after where vigil had read %s were not read (max_bytes %d per run)", tg.path, n, tg.cp.path, r.q.maxBytes))
		}
	}
	return nil
}
