// Package browser runs page visits in a real headless Chromium for vigil's browser checks.
//
// A Pool owns one Chromium process per vigil process, started on first use and shared by
// every visit; each visit gets its own isolated browser context (cookies, storage, cache),
// closed afterwards, and at most Options.Concurrency visits run at once. A visit records what
// the page did from the first byte of its first script (uncaught exceptions and unhandled
// rejections, console errors, failed requests, the document status, timings) and keeps a
// screenshot as evidence. A visit never outlives its context's deadline: a page that never
// loads, a script stuck in a loop, a crashed renderer or a killed browser all end it in time,
// and the next visit gets a fresh browser when the old one died.
//
// The package imports no other vigil package: the checks package turns a Report into
// variables and verdicts.
package browser

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
)

// Options configure a Pool.
type Options struct {
	// Path is the Chromium binary; "" finds one (see Find).
	Path string
	// Flags are extra command-line switches ("--lang=de", "--proxy-server=..."); a switch
	// given as "--name=false" removes one of vigil's defaults.
	Flags []string
	// Concurrency is the most visits at once; below 1 means 1.
	Concurrency int
	// Logger receives browser starts, exits and restarts; nil discards them.
	Logger *slog.Logger
	// LookupEnv reads VIGIL_BROWSER; nil is os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// StartTimeout bounds one browser start; 0 is 30s.
	StartTimeout time.Duration
	// NoSpareTab opens every visit's tab when the visit starts instead of ahead of need
	// (spare.go): what a visit costs without the spare, for scripts/bench browser.
	NoSpareTab bool
	// Reap makes vigil a child subreaper (Linux) and reaps the Chromium helper processes
	// the kernel then re-parents to it when a browser dies. It is always on when vigil runs
	// as PID 1 (a container without an init), where nothing else would reap them.
	Reap bool
}

// ErrClosed is returned by visits after Close.
var ErrClosed = errors.New("the browser pool is closed")

// Pool shares one Chromium between visits. Its zero value is not usable: build it with NewPool.
type Pool struct {
	opts  Options
	log   *slog.Logger
	slots chan struct{}

	// closing is cancelled by Close: it ends visits in flight and a start in progress.
	closing context.Context
	close   context.CancelFunc

	mu  sync.Mutex
	cur *instance
	// spare is a tab opened ahead of need in cur (spare.go); nil when none is open or opening.
	spare *tab
	// pids are the browser processes os/exec still has to wait for.
	pids     map[int]bool
	starting *startAttempt
	closed   bool
	// tabs counts visits whose tab is still open (a visit returns before its tab is closed).
	tabs sync.WaitGroup
	// bg counts background work: browser shutdowns, watchers, the reaper.
	bg     sync.WaitGroup
	reaper *reaper
}

// instance is one running Chromium.
type instance struct {
	ctx         context.Context // chromedp's browser context: Done when the browser is gone
	browser     *chromedp.Browser
	cancel      context.CancelFunc
	allocCancel context.CancelFunc
	pid         int
	started     time.Time
	// held routes the new pages Chromium holds to their runs (held.go).
	held heldPages

	// Guarded by Pool.mu.
	refs    int
	retired bool // no new visits; shut down when the last one ends
	down    bool // shutdown started
	// stuck counts consecutive visits that could not open a tab in time.
	stuck int
}

// gone reports whether the browser died or its connection dropped. chromedp closes
// LostConnection before it cancels the browser's context, so a visit that fails in
// between must look at both to know the browser, not the page, was the cause.
func (inst *instance) gone() bool {
	if inst.ctx.Err() != nil {
		return true
	}
	if inst.browser != nil {
		select {
		case <-inst.browser.LostConnection:
			return true
		default:
		}
	}
	return false
}

type startAttempt struct {
	done chan struct{}
	err  error
}

// NewPool returns a pool. It starts nothing: the browser starts with the first visit, so a
// vigil without browser checks, or without Chromium, never notices.
func NewPool(opts Options) *Pool {
	if opts.Concurrency < 1 {
		opts.Concurrency = 1
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{opts: opts, log: log, slots: make(chan struct{}, opts.Concurrency), pids: map[int]bool{}}
	p.closing, p.close = context.WithCancel(context.Background())
	if opts.Reap || os.Getpid() == 1 {
		p.reaper = startReaper(p.closing, &p.bg, log, p.isBrowserPID)
	}
	return p
}

// BrowserPID is the running browser's process id, 0 when none runs.
func (p *Pool) BrowserPID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil || p.cur.gone() {
		return 0
	}
	return p.cur.pid
}

func (p *Pool) isBrowserPID(pid int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pids[pid]
}

// Close ends visits in flight, closes the browser and waits for its processes to exit.
// It returns after at most a few seconds, whatever the browser does.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.close()
	p.dropSpareLocked(nil)
	p.mu.Unlock()

	p.tabs.Wait() // visits end within a second of p.close; their tab closes are bounded
	p.mu.Lock()
	if cur := p.cur; cur != nil {
		p.cur = nil
		cur.retired = true
		p.shutdownLocked(cur)
	}
	p.mu.Unlock()
	p.bg.Wait()
	return nil
}

// acquire takes a visit slot, waiting at most until ctx ends.
func (p *Pool) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	start := time.Now()
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-p.closing.Done():
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("waited %s for a free browser slot (%d visits at once); raise agent.browser_concurrency or spread the browser checks' schedules: %w",
			time.Since(start).Round(time.Millisecond), cap(p.slots), context.Cause(ctx))
	}
}

func (p *Pool) releaseSlot() { <-p.slots }

// get returns a running browser with a reference taken, starting one when none runs or
// the last one died. Concurrent callers share one start.
func (p *Pool) get(ctx context.Context) (*instance, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if cur := p.cur; cur != nil {
			if !cur.gone() && !cur.retired {
				cur.refs++
				p.mu.Unlock()
				return cur, nil
			}
			p.cur = nil
			cur.retired = true
			p.dropSpareLocked(cur)
			if cur.refs == 0 {
				p.shutdownLocked(cur)
			}
		}
		at := p.starting
		if at == nil {
			at = &startAttempt{done: make(chan struct{})}
			p.starting = at
			p.bg.Add(1)
			go p.start(at)
		}
		p.mu.Unlock()

		select {
		case <-at.done:
			if at.err != nil {
				return nil, at.err
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("the browser did not start in time: %w", context.Cause(ctx))
		}
	}
}

// release drops a reference taken by get.
func (p *Pool) release(inst *instance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	inst.refs--
	if inst.refs == 0 && (inst.retired || inst.gone()) && inst != p.cur {
		p.shutdownLocked(inst)
	}
}

// retire stops new visits from using inst; it shuts down once its visits end.
func (p *Pool) retire(inst *instance, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if inst.retired {
		return
	}
	p.log.Warn("replacing the browser", "pid", inst.pid, "reason", why)
	inst.retired = true
	p.dropSpareLocked(inst)
	if p.cur == inst {
		p.cur = nil
	}
	if inst.refs == 0 {
		p.shutdownLocked(inst)
	}
}

// noteTabOpen records whether a visit could open its tab in time. A browser that keeps
// failing to open tabs is alive but useless (hung); replace it rather than fail every check.
func (p *Pool) noteTabOpen(inst *instance, ok bool) {
	p.mu.Lock()
	if ok {
		inst.stuck = 0
		p.mu.Unlock()
		return
	}
	inst.stuck++
	n := inst.stuck
	p.mu.Unlock()
	if n >= 3 {
		p.retire(inst, fmt.Sprintf("%d visits in a row could not open a tab", n))
	}
}

// shutdownLocked stops inst in the background; p.mu must be held.
func (p *Pool) shutdownLocked(inst *instance) {
	if inst.down {
		return
	}
	inst.down = true
	p.bg.Go(func() {
		if !inst.gone() {
			// Ask politely first, so Chromium flushes and its helpers exit; the allocator's
			// cancel below kills whatever is left and removes the profile directory.
			ctx, cancel := context.WithTimeout(inst.ctx, 3*time.Second)
			_ = chromedp.Cancel(ctx)
			cancel()
		}
		inst.cancel()
		inst.allocCancel() // returns once the process was waited for and its profile removed
		p.mu.Lock()
		delete(p.pids, inst.pid)
		p.mu.Unlock()
		p.log.Debug("browser stopped", "pid", inst.pid, "ran", time.Since(inst.started).Round(time.Second))
		p.reaper.sweep()
	})
}

// Check is the readiness probe: nil when a Chromium binary is found and, if one runs, it
// still answers. It never starts a browser.
func (p *Pool) Check(ctx context.Context) error {
	if _, err := Find(p.opts.Path, p.opts.LookupEnv); err != nil {
		return err
	}
	p.mu.Lock()
	closed, cur := p.closed, p.cur
	p.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if cur == nil || cur.gone() {
		return nil // starts on the next visit
	}
	_, err := cdp.Call(ctx, cur.browser, cdpbrowser.GetVersion, cdp.Empty{})
	if err != nil {
		if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			p.noteTabOpen(cur, false) // as a tab that does not open: three in a row replace it
		}
		return fmt.Errorf("the running browser (pid %d) does not answer: %w", cur.pid, err)
	}
	return nil
}

// Start launches Chromium now rather than on the first visit, so the first browser check
// does not spend its timeout on the browser's start (1-2 s). It returns once the browser
// answers, or with the reason it cannot start; visits start it again if it dies later.
func (p *Pool) Start(ctx context.Context) error {
	inst, err := p.get(ctx)
	if err != nil {
		return err
	}
	p.release(inst)
	p.refill(inst) // the first visit finds its tab open
	return nil
}
