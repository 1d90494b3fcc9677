package agent

// Runs: executing one with its deadline and retries, recording it (metrics, last result),
// and the batched writer scheduled runs go through.

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/store"
)

// scheduledRun is one scheduled run of c.
func (a *Agent) scheduledRun(ctx context.Context, c *checks.Check, due time.Time) {
	res, ok := a.execute(ctx, c, checks.Input{TranscriptOnFailure: true}, "")
	if !ok {
		return
	}
	a.onScheduledResult(ctx, c, res, toStoreRun(res, ""))
}

// execute runs c with its retries inside a hard deadline and records the result in memory
// and metrics. Persisting is the caller's choice. ok is false when ctx was cancelled
// before the run ended (its verification was decided or superseded, the check was
// reloaded away, the agent is shutting down): such a run measured nothing about the
// target, so it changes no metric, no last result, no incident and no history.
func (a *Agent) execute(ctx context.Context, c *checks.Check, in checks.Input, deployID string) (res *checks.Result, ok bool) {
	res = a.attempt(ctx, c, in)
	if ctx.Err() != nil {
		a.log.Debug("run cancelled; not recorded", "check", c.Name, "deploy", deployID, "cause", context.Cause(ctx))
		return res, false
	}
	return a.record(ctx, c, res, deployID), true
}

// attempt runs c with its retries inside a hard deadline, and records nothing.
func (a *Agent) attempt(ctx context.Context, c *checks.Check, in checks.Input) *checks.Result {
	retries := *c.Config.Retries
	// Every attempt has its own timeout; the whole run, retries and backoff included, has
	// one more bound so nothing can hold a concurrency slot forever.
	// (Without retries the attempt's own timeout is that bound: no second timer.)
	runCtx := ctx
	if retries > 0 {
		limit := time.Duration(retries+1)*c.Timeout + time.Duration(retries)*5*time.Second + time.Second
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	return checks.RunWithRetries(runCtx, c, in, checks.Retry{Attempts: retries})
}

// record keeps the result of a run that ended in memory and metrics, and returns it.
func (a *Agent) record(ctx context.Context, c *checks.Check, res *checks.Result, deployID string) *checks.Result {
	res.Location = a.location
	a.metrics.observe(res)
	if !a.inConfig(c.Name, c.Kind) {
		// A reload removed the check while it ran (the scheduler does not cancel such a
		// run; an API or verification run is not the scheduler's): the run is stored by
		// the caller, as history, but it is no longer the newest result of a configured
		// check, and its streak and incident are the reload's to end (onScheduledResult).
		a.log.Info("a reload removed the check while it ran: the run is stored, but changes no last result, streak or incident",
			"check", c.Name, "kind", c.Kind, "outcome", res.Outcome, "deploy", deployID)
		return res
	}
	a.mu.Lock()
	a.last[c.Name] = summaryOf(res)
	a.mu.Unlock()
	if a.log.Enabled(ctx, slog.LevelDebug) { // the arguments alone are allocated for every run
		a.log.Debug("run", "check", c.Name, "outcome", res.Outcome, "duration", res.Duration, "deploy", deployID)
	}
	return res
}

// inConfig says whether the config in force has a check of that name and kind ("" any
// kind). A run of a check that is not, which ended after a reload removed it, changes no
// last result, streak, incident or metric: nothing would ever end what it started (the
// reload closed the check's incident and dropped its streak before it ended). A check the
// reload kept under its name and kind but changed (its URL, assertions, thresholds) still
// records the run: it is the same check, its next runs judge the new definition, and they
// close what this one opens.
func (a *Agent) inConfig(name, kind string) bool {
	c := a.Runtime().Checks[name]
	return c != nil && (kind == "" || c.Kind == kind)
}

// summaryOf is what the agent keeps in memory of a check's newest result: the outcome,
// reasons, timing and artifact names the status page, badges and check list show, without
// the variables, transcript or evidence (the store has them, with the run): at ten thousand
// checks those were a tenth of the agent's memory.
func summaryOf(r *checks.Result) *checks.Result {
	s := *r
	s.Vars, s.Transcript, s.Artifacts = nil, nil, nil
	for _, art := range r.Artifacts {
		s.Artifacts = append(s.Artifacts, &checks.Artifact{Name: art.Name, ContentType: art.ContentType})
	}
	return &s
}

// lastResult returns a summary of the newest result of a check (see summaryOf).
func (a *Agent) lastResult(name string) *checks.Result {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last[name]
}

func (a *Agent) loadLatest(ctx context.Context) {
	runs, err := a.store.LatestRuns(ctx, a.location)
	if err != nil {
		a.log.Warn("could not load the latest results", "error", err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range runs {
		a.last[r.Check] = summaryOf(fromStoreRun(r))
	}
}

func toStoreRun(r *checks.Result, deployID string) *store.RunRecord {
	sr := &store.RunRecord{Check: r.Check, Kind: r.Kind, Started: r.Started, Duration: r.Duration, Outcome: string(r.Outcome),
		Attempts: r.Attempts, DeployID: deployID, Reasons: r.Reasons, Vars: r.Vars, Transcript: r.Transcript,
		TraceID: r.TraceID, Halt: r.Halt, Location: r.Location}
	for _, art := range r.Artifacts {
		sr.Artifacts = append(sr.Artifacts, &store.Artifact{Name: art.Name, ContentType: art.ContentType, Data: art.Data})
	}
	return sr
}

func fromStoreRun(sr *store.RunRecord) *checks.Result {
	r := &checks.Result{Check: sr.Check, Kind: sr.Kind, Outcome: checks.Outcome(sr.Outcome), Reasons: sr.Reasons, Vars: sr.Vars,
		Started: sr.Started, Duration: sr.Duration, Attempts: sr.Attempts, Transcript: sr.Transcript, TraceID: sr.TraceID,
		Location: sr.Location, Halt: sr.Halt}
	for _, art := range sr.Artifacts {
		r.Artifacts = append(r.Artifacts, &checks.Artifact{Name: art.Name, ContentType: art.ContentType})
	}
	return r
}

// runWriter batches scheduled runs into one transaction at most every 100ms: a thousand
// runs a second cost a few commits, not a thousand. It sleeps while there is nothing to
// write (an idle agent has no writer waking ten times a second): the first run of a batch
// wakes it, and it writes 100ms later, or at once when 512 runs are waiting. A batch the
// store refuses (a database restarting, a full disk) is kept and written with the next
// one, up to maxUnwritten runs.
//
// Every run stored goes through it (saveNow writes one at once, outside the batches) and
// is counted on the uptime board as it is handed over; every board.every it saves the board
// with the batch it writes, so that a start after a crash reads back the board and the runs
// stored since it, not the week (board_saved.go).
type runWriter struct {
	store interface {
		SaveRuns(ctx context.Context, runs []*store.RunRecord) error
	}
	log  *slog.Logger
	mu   sync.Mutex
	buf  []*store.RunRecord
	kick chan struct{} // a batch is full
	wake chan struct{} // a batch has begun
	// order keeps a saved board and the runs' ids in step: saveNow and an ordinary batch
	// hold it to read, the batch that saves the board holds it to write. So every run
	// counted before the board was encoded (under mu, with the batch taken) is stored with
	// an id up to the newest one read once that batch is written, and every run counted
	// after it with a greater id: the board and the runs after that id count each run once.
	order sync.RWMutex
	board boardKeeper
	saved time.Time // when the board was last saved
	// While the board is encoded (milliseconds to tens of them), runs handed over wait in
	// pending, to be counted once it is: the hand-over does not wait for the encoding.
	cutting bool
	pending []*store.RunRecord
	// grown runs when the runs written since it last ran add up to a twentieth of
	// maxSize: it keeps the store under store.max_size. It runs in the writer, before the
	// next batch, so that the store cannot outgrow it however busy the machine is.
	grown   func(context.Context)
	maxSize func() int64
	written int64
	// refused is set while the store refuses batches (a full disk): the writer waits
	// longer between tries, from 200 ms up to 10 s, not every 100 ms.
	refused bool
}

// runWriterRetry bounds the wait between tries while the store refuses batches.
const runWriterRetry = 10 * time.Second

// boardKeeper is what the writer does with the uptime board: count each run handed over,
// and every so often save it as it holds the runs counted so far, with the newest run id
// (saved is false, and nothing changed, while it does not hold its week; size is what it
// took in the store).
type boardKeeper struct {
	count func(*store.RunRecord)
	save  func(ctx context.Context) (saved bool, size int, err error)
	every time.Duration
	now   func() time.Time
}

// maxUnwritten bounds the runs kept while the store refuses them: about a minute and a
// half of a thousand checks a second. Past it the oldest are dropped, and the log says so.
const maxUnwritten = 100_000

func newRunWriter(s Store, log *slog.Logger, board boardKeeper, maxSize func() int64, grown func(context.Context)) *runWriter {
	return &runWriter{store: s, log: log, kick: make(chan struct{}, 1), wake: make(chan struct{}, 1),
		board: board, saved: board.now(), grown: grown, maxSize: maxSize}
}

// add hands r to the next batch.
func (w *runWriter) add(r *store.RunRecord) {
	w.mu.Lock()
	w.count(r)
	w.buf = append(w.buf, r)
	n := len(w.buf)
	w.mu.Unlock()
	signal := func(ch chan struct{}) {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	if n == 1 {
		signal(w.wake)
	}
	if n >= 512 {
		signal(w.kick)
	}
}

// saveNow writes r at once, outside the batches: a run whose id is needed now (a
// verification round's, a manual run's, one that changes an incident). It sets r.ID. A run
// the store refuses (locked, full, gone for a moment) is not lost: it goes to the next
// batch, which keeps it until the store takes it, as it keeps its own; the error says
// that r has no id yet. It was counted on the board already, as the batch's runs are
// when handed over, and a board is saved only once the batch before it is written.
func (w *runWriter) saveNow(ctx context.Context, r *store.RunRecord) error {
	w.order.RLock()
	defer w.order.RUnlock()
	w.mu.Lock()
	w.count(r)
	w.mu.Unlock()
	err := w.store.SaveRuns(ctx, []*store.RunRecord{r})
	if err == nil {
		return nil
	}
	r.ID = 0
	w.mu.Lock()
	w.buf = append(w.buf, r)
	n := len(w.buf)
	w.mu.Unlock()
	if n == 1 {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return fmt.Errorf("%w (kept for the next batch)", err)
}

// count counts r on the board, or after it is encoded; w.mu is held.
func (w *runWriter) count(r *store.RunRecord) {
	if w.cutting {
		w.pending = append(w.pending, r)
		return
	}
	w.board.count(r)
}

func (w *runWriter) run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	var backoff time.Duration
	for {
		full := false
		select { // nothing to write: sleep until a batch begins
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-w.kick:
			full = true
		}
		if !full {
			t.Reset(100 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			case <-w.kick:
				t.Stop()
			}
		}
		w.write(ctx, w.board.now().Sub(w.saved) >= w.board.every)
		w.mu.Lock()
		more := len(w.buf) > 0 // kept after a refused write, or added while writing
		refused := w.refused
		w.mu.Unlock()
		if !refused {
			backoff = 0
		} else { // the runs wait in the buffer (at most maxUnwritten, the oldest dropped)
			backoff = min(max(2*backoff, 200*time.Millisecond), runWriterRetry)
			t.Reset(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if more {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
}

// flush writes the runs handed over so far.
func (w *runWriter) flush(ctx context.Context) { w.write(ctx, false) }

// flushAndSave writes the runs handed over so far and saves the board as it holds them
// (the agent stopping).
func (w *runWriter) flushAndSave(ctx context.Context) { w.write(ctx, true) }

// write writes the runs handed over so far; with saveBoard it also saves the board as it
// held exactly those runs, once they are written (a board that does not hold its week
// yet, or whose runs were refused, is not saved: the one saved before stays). Runs handed
// over from the moment the batch is taken until the board is saved are counted once it
// is: the board is encoded straight into the store, a part at a time, not copied whole
// first (at ten thousand checks a copy was 12 MB, and the store's of it more).
func (w *runWriter) write(ctx context.Context, saveBoard bool) {
	if saveBoard {
		w.order.Lock()
		defer w.order.Unlock()
	} else {
		w.order.RLock()
		defer w.order.RUnlock()
	}
	w.mu.Lock()
	batch := w.buf
	w.buf = nil
	w.cutting = saveBoard
	w.mu.Unlock()
	if saveBoard {
		defer func() {
			w.mu.Lock()
			w.cutting = false
			for _, r := range w.pending {
				w.board.count(r)
			}
			w.pending = nil
			w.mu.Unlock()
		}()
	}
	if len(batch) > 0 && !w.writeBatch(ctx, batch) {
		return
	}
	if !saveBoard {
		return
	}
	w.saved = w.board.now()
	began := time.Now()
	saved, size, err := w.board.save(context.WithoutCancel(ctx))
	switch {
	case err != nil:
		w.log.Warn("saving the uptime board failed; the next start reads back the one saved before (or the store's week) and the runs stored since", "error", err)
	case saved:
		w.log.Debug("uptime board saved", "bytes", size, "took", time.Since(began))
	}
}

// writeBatch stores batch; a batch the store refuses is kept for the next write.
func (w *runWriter) writeBatch(ctx context.Context, batch []*store.RunRecord) bool {
	if err := w.store.SaveRuns(context.WithoutCancel(ctx), batch); err != nil {
		w.mu.Lock()
		w.buf = append(batch, w.buf...)
		dropped := len(w.buf) - maxUnwritten
		if dropped > 0 {
			w.buf = w.buf[dropped:]
		}
		kept := len(w.buf)
		first := !w.refused
		w.refused = true
		w.mu.Unlock()
		if first || dropped > 0 {
			w.log.Error("saving runs failed; kept for the next try", "runs", len(batch), "kept", kept, "dropped", max(dropped, 0), "error", err)
		} else {
			w.log.Debug("saving runs failed again", "kept", kept, "error", err)
		}
		return false
	}
	w.mu.Lock()
	if w.refused {
		w.log.Info("runs are saved again")
	}
	w.refused = false
	for _, r := range batch {
		w.written += approxSize(r)
	}
	full := w.written >= w.maxSize()/20
	if full {
		w.written = 0
	}
	w.mu.Unlock()
	if full && w.grown != nil {
		w.grown(ctx)
	}
	return true
}

// approxSize is about what a run takes in the store: its evidence, transcript and a row.
func approxSize(r *store.RunRecord) int64 {
	n := int64(1 << 10)
	for _, a := range r.Artifacts {
		n += int64(len(a.Data))
	}
	for _, l := range r.Transcript {
		n += int64(len(l))
	}
	return n
}
