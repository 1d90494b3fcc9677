package agent

// The uptime board saved at a clean stop and read back at start. An agent stopping writes
// its board (every check's buckets with runs) to the store with the id of the newest run
// stored then; restarted under the same name and location, it reads that back and then
// only the runs stored after that id, along the runs' primary key, instead of the week's
// runs by time. A board saved, then runs written by anyone, then a restart: the board plus
// those runs is what reading the week would count. Anything that does not fit (no board,
// another location, a store whose runs end before the saved id, a board this vigil cannot
// decode) is a full read of the week (board_history.go).

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/store"
)

// boardMagic starts an encoded board; the rings' widths follow it, so that a vigil whose
// rings differ reads the week instead.
const boardMagic = "vigil-board\x01"

// savedBucket is a bucket of an encoded board.
type savedBucket struct {
	check string
	ring  int
	num   int64 // start / the ring's width
	runs  boardRuns
}

// encode returns the board's buckets with runs, check by check, oldest first in each ring;
// ok is false while it does not hold every run of its windows (its history is not read).
func (bd *board) encode() (data []byte, ok bool) {
	ok, _ = bd.encodeParts(store.BoardPart, func(part []byte) error {
		data = append(data, part...)
		return nil
	})
	return data, ok
}

// encodeParts is encode a part at a time: part gets each size bytes or so of it in turn (in
// one buffer, reused once part returns), and the rest last; nothing while the board does
// not hold its week (ok false). A board of ten thousand checks and a week is 12 MB; the
// agent saves it straight into the store, a part at a time, rather than whole first.
func (bd *board) encodeParts(size int, part func([]byte) error) (ok bool, err error) {
	bd.mu.RLock()
	defer bd.mu.RUnlock()
	if bd.from != math.MinInt64 {
		return false, nil
	}
	b := append(make([]byte, 0, size+4<<10), boardMagic...)
	for _, w := range ringWidth {
		b = binary.AppendUvarint(b, uint64(w/time.Second))
	}
	var kept []int32
	for name, cb := range bd.checks {
		if len(b) >= size { // between checks: a check's buckets are a few kilobytes at most
			if err := part(b); err != nil {
				return true, err
			}
			b = b[:0]
		}
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		for r := range 3 {
			kept = kept[:0]
			cb.each(r, math.MinInt32, math.MaxInt32, func(num, i int32) {
				if s, _ := cb.bucket(r, i); s.runs > 0 {
					kept = append(kept, num)
				}
			})
			b = binary.AppendUvarint(b, uint64(len(kept)))
			for _, num := range kept {
				i := num % ringSlots[r]
				var t runTotals
				cb.addTo(&t, r, i)
				b = binary.AppendVarint(b, int64(num))
				for _, n := range t.runs {
					b = binary.AppendUvarint(b, uint64(n))
				}
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(t.sumMS))
				if r == dayRing {
					b = binary.LittleEndian.AppendUint32(b, math.Float32bits(t.maxMS))
				}
			}
		}
	}
	return true, part(b)
}

// decodeBoard reads an encoded board, checking every field, and calls each (if not nil)
// with every bucket in turn. A board of ten thousand checks and a week holds more than a
// million buckets: as a slice they took 180 MB more than the encoding. To use nothing of
// a board that does not decode whole, decode it once with each nil, then with it.
func decodeBoard(data []byte, each func(savedBucket)) error {
	rest, ok := bytes.CutPrefix(data, []byte(boardMagic))
	if !ok {
		return errors.New("not a board this vigil wrote")
	}
	uvarint := func(limit uint64, what string) (uint64, error) {
		v, n := binary.Uvarint(rest)
		if n <= 0 || v > limit {
			return 0, fmt.Errorf("bad %s", what)
		}
		rest = rest[n:]
		return v, nil
	}
	float := func(what string) (float32, error) {
		if len(rest) < 4 {
			return 0, fmt.Errorf("bad %s", what)
		}
		f := math.Float32frombits(binary.LittleEndian.Uint32(rest))
		rest = rest[4:]
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) || f < 0 {
			return 0, fmt.Errorf("bad %s", what)
		}
		return f, nil
	}
	for _, w := range ringWidth {
		if s, err := uvarint(math.MaxUint32, "ring width"); err != nil || s != uint64(w/time.Second) {
			return errors.New("its rings are not this vigil's")
		}
	}
	for len(rest) > 0 {
		n, err := uvarint(math.MaxUint16, "check name")
		if err != nil || n > uint64(len(rest)) {
			return errors.New("bad check name")
		}
		var name string
		if each != nil { // a string per check, not per bucket; none to validate
			name = string(rest[:n])
		}
		rest = rest[n:]
		for r := range 3 {
			count, err := uvarint(uint64(ringSlots[r]), "bucket count")
			if err != nil {
				return err
			}
			for range count {
				// A bucket of a time a ring can hold: a ring's numbers are int32 and its
				// start in nanoseconds an int64, and a ring's buckets are numbered from its
				// size on (its newest, less its size, is its oldest).
				num, k := binary.Varint(rest)
				if k <= 0 || num < int64(ringSlots[r]) || num > min(math.MaxInt32, math.MaxInt64/int64(ringWidth[r])) {
					return errors.New("bad bucket number")
				}
				rest = rest[k:]
				sb := savedBucket{check: name, ring: r, num: num}
				for o := range sb.runs.runs {
					v, err := uvarint(math.MaxUint16, "run count")
					if err != nil {
						return err
					}
					sb.runs.runs[o] = uint32(v)
				}
				if sb.runs.sumMS, err = float("duration"); err != nil {
					return err
				}
				if r == dayRing {
					if sb.runs.maxMS, err = float("duration"); err != nil {
						return err
					}
				}
				if each != nil {
					each(sb)
				}
			}
		}
	}
	return nil
}

// savedBoardStore is what saving and reading back a board takes of the store.
type savedBoardStore interface {
	SaveBoardParts(ctx context.Context, b *store.Board, write func(put func(part []byte) error) error) error
	SavedBoard(ctx context.Context, agent string) (*store.Board, error)
	LastRunID(ctx context.Context) (int64, error)
	RunBucketsByID(ctx context.Context, location string, after, upTo int64, from, to time.Time, width time.Duration, fn func(store.BucketRow)) error
}

// restoreIDs is how many run ids restore reads at a time.
const restoreIDs = 20000

// restore reads back the board agent saved in location and the runs stored after it that
// started in [now - 7 d, until), paced as seed is. used is false when there is no board to
// use (then nothing was changed, and the week is to be read); an error after it was used
// leaves the board's windows partial, not to be read again.
func (bd *board) restore(ctx context.Context, st savedBoardStore, agent, location string, now, until time.Time) (used bool, err error) {
	saved, err := st.SavedBoard(ctx, agent)
	if err != nil || saved == nil || saved.Location != location {
		return false, err
	}
	last, err := st.LastRunID(ctx)
	if err != nil {
		return false, err
	}
	if last < saved.LastRun { // the runs it counted are gone (another store, or emptied)
		return false, nil
	}
	if err := decodeBoard(saved.Data, nil); err != nil {
		return false, fmt.Errorf("the board saved at %s: %w", saved.SavedAt.UTC().Format(time.RFC3339), err)
	}
	bd.readFrom(until.UnixNano(), true)
	complete := false
	defer func() { bd.finish(complete) }()
	bd.mu.Lock()
	var cb *checkBoard
	var name string
	_ = decodeBoard(saved.Data, func(b savedBucket) { // it decoded whole above
		if cb == nil || b.check != name {
			cb, name = bd.check(b.check), b.check
		}
		cb.put(b.ring, b.num*int64(ringWidth[b.ring]), 0, b.runs)
	})
	bd.mu.Unlock()
	oldest := now.Add(-ringWindow[weekRing] - weekWidth)
	fold, pace := bd.folder(now), pacer{}
	for after := saved.LastRun; after < last; after += restoreIDs {
		began := time.Now()
		if err := st.RunBucketsByID(ctx, location, after, min(after+restoreIDs, last), oldest, until, hourWidth, fold); err != nil {
			return true, err
		}
		if err := pace.after(ctx, began); err != nil {
			return true, err
		}
	}
	complete = true
	return true, nil
}

// readHistory fills the board with the runs from before the agent started: the board it
// saved at its last stop and the runs stored since, or else the store's week.
func (a *Agent) readHistory(ctx context.Context) {
	now, began := a.clock.Now(), time.Now()
	used, err := a.board.restore(ctx, a.store, a.name, a.location, now, a.boardFrom)
	switch {
	case ctx.Err() != nil:
		return
	case used && err != nil:
		a.log.Warn("reading the runs stored since the uptime board was saved failed; the status page's figures count from the start", "error", err)
		return
	case used:
		a.log.Info("uptime board read back with the runs stored since it was saved", "took", time.Since(began).Round(time.Millisecond))
		return
	case err != nil:
		a.log.Warn("the uptime board saved at the last stop cannot be used; reading the store's week instead", "error", err)
	}
	switch err := a.board.seed(ctx, a.store, a.location, now, a.boardFrom); {
	case ctx.Err() != nil:
	case err != nil:
		a.log.Warn("reading the history for the status page's uptime figures failed; they count from where the reading stopped", "error", err)
	default:
		a.log.Info("uptime board read from the store's week", "took", time.Since(began).Round(time.Millisecond))
	}
}

// boardKeeper is the board as the run writer keeps it: each run counted as it is handed
// over to be stored, and the board saved every so often with the newest run id (and as the
// agent stops), once the runs it counts are written.
func (a *Agent) boardKeeper(every time.Duration) boardKeeper {
	return boardKeeper{
		count: func(r *store.RunRecord) {
			a.board.add(r.Check, r.Started, r.Duration, checks.Outcome(r.Outcome), a.clock.Now())
		},
		save: func(ctx context.Context) (saved bool, size int, err error) {
			if !a.board.holdsWeek() { // the one saved before stays
				return false, 0, nil
			}
			last, err := a.store.LastRunID(ctx)
			if err != nil {
				return false, 0, err
			}
			// Encoded into the store a part at a time, in the store's transaction.
			b := &store.Board{Agent: a.name, Location: a.location, SavedAt: a.clock.Now(), LastRun: last}
			err = a.store.SaveBoardParts(ctx, b, func(put func([]byte) error) error {
				held, err := a.board.encodeParts(store.BoardPart, func(part []byte) error {
					size += len(part)
					return put(part)
				})
				if err == nil && !held {
					err = errors.New("the board stopped holding its week while it was saved")
				}
				return err
			})
			return err == nil, size, err
		},
		every: every,
		now:   a.clock.Now,
	}
}
