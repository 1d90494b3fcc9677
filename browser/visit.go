package browser

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
)

// DefaultTimeout bounds a visit whose context has no deadline.
const DefaultTimeout = 30 * time.Second

// Evidence budget: the screenshot gets its own deadline, because a renderer that is busy
// (a script in a loop) never answers, and the visit must still end in time. It waits at
// least screenshotTimeout and, when the visit has more time left (it stopped early at a
// fatal error), up to screenshotMax of it: a renderer busy for a while after the error, or
// slow on a loaded machine, answers late, and the picture is the evidence people read first.
const (
	screenshotTimeout = time.Second
	screenshotMax     = 5 * time.Second
	collectTimeout    = 500 * time.Millisecond
	evidenceReserve   = 2 * time.Second
)

// Visit is one page load or journey.
type Visit struct {
	// URL is loaded first; "" when Steps start with a navigate.
	URL string
	// WaitFor is a CSS selector that proves the page rendered; it must become visible
	// after the first navigation.
	WaitFor string
	Steps   []Step
	// Headers are added to requests to the origins the visit navigates to, never to
	// third parties (an Authorization header must not leak to a CDN, and extra headers on
	// cross-origin requests trigger CORS preflights the page never asked for).
	Headers map[string]string
	// Revalidate asks the caches in front of the site (a CDN, Varnish, nginx) to revalidate
	// the main frame's documents with the origin (Cache-Control: no-cache, Pragma:
	// no-cache), unless Headers sets either: a deploy's verification must see the new
	// version's page, not a copy of the old one. Only those requests: the header on the
	// page's cross-origin fetches would be a CORS preflight the page never asked for.
	Revalidate bool
	Cookies    []Cookie
	// Viewport sets the window size; zero keeps Chromium's default.
	Viewport Viewport
	// Dialogs is how the page's JavaScript dialogs are answered: each one is recorded in
	// Report.Dialogs and answered at once, so none stalls the page.
	Dialogs DialogAnswer
	// VersionHeader names a response header in which the page's document says which
	// version of the service served it (Report.ServedVersion); "" reads none.
	VersionHeader string
	// VersionSelector, instead, finds an element of the page that names the version: its
	// text, or its VersionAttribute when set (meta[name="app-version"] and content). It is
	// read once the visit's work is done.
	VersionSelector, VersionAttribute string
	// NavigationTimeout bounds each navigation's wait for the load event; 0 means the time
	// left. A document that answers but never finishes loading is recorded (Report.Loaded
	// false, Report.Pending), not an error.
	NavigationTimeout time.Duration
	// Evidence is asked, once the visit's work is done and while the tab is still open,
	// whether to keep a screenshot. nil keeps one whenever the report shows a problem.
	// A visit that ends in an error always tries to keep one.
	Evidence func(*Report) bool
	// Stop, when set, is asked each time the page reports a problem (an exception, a
	// console error, a failed request), with the report so far. A non-empty answer says the
	// page has failed for good (why): the visit stops waiting at once (the rest of the
	// navigation, wait_for and the remaining steps are skipped), takes its evidence and
	// reports, with Report.StoppedEarly set. A page that throws at startup is then caught
	// in the time it takes to throw, not in the time wait_for would have waited. Stop runs
	// on the browser's event loop: it must be quick and must not block.
	Stop func(*Report) string
	// Logf receives the visit's transcript, one line per call; nil discards it.
	Logf func(format string, args ...any)
}

// Cookie is set before the first navigation. Without a Domain it belongs to the first URL.
type Cookie struct {
	Name, Value, Domain, Path string
}

// Viewport is the window size in CSS pixels.
type Viewport struct {
	Width, Height int
}

// Errors a visit can end with, for errors.Is.
var (
	ErrRendererCrashed = errors.New("the page's renderer crashed")
	ErrBrowserExited   = errors.New("the browser exited")
)

// ErrNoResponse is in the chain of a visit's error when the page's request had no
// response before the navigation's deadline.
var ErrNoResponse = errors.New("no response")

// NavigationError is a visit's error when Chromium could not load a page: the network
// error it gives (net::ERR_CONNECTION_REFUSED, net::ERR_CERT_AUTHORITY_INVALID,
// net::ERR_TOO_MANY_REDIRECTS...), for the caller to tell a target that did not answer from
// one whose answer no browser gets past. For a certificate Chromium names one reason, the
// most serious by its ranking: one signed by an unknown authority is reported as that even
// when it is also for other names, so the caller may judge the certificate itself.
type NavigationError struct {
	URL  string
	Code string
}

func (e *NavigationError) Error() string { return "GET " + e.URL + ": " + e.Code }

// errWorkDeadline is the cause of a visit's work context ending on time: the rest of the
// budget is kept for evidence.
var errWorkDeadline = errors.New("the visit's time is up")

// stopError is the cause of a visit's work ending because Stop judged the page failed.
type stopError struct{ why string }

func (e *stopError) Error() string { return "stopped at the first fatal error: " + e.why }

// Visit loads a page (and runs its journey) in a fresh isolated browser context and reports
// what happened. It returns an error when it could not measure (no browser, the page
// unreachable, the renderer crashed, the browser died, ctx ended) or when the page's answer
// is one no visitor gets past (a NavigationError such as a redirect loop, a DownloadError:
// the page served as a file, a NoPageError: a 204), for the caller to tell which. The report is returned
// with the error too, filled as far as the visit got. A visit never outlives ctx's deadline
// (DefaultTimeout when ctx has none); the tab is closed in the background after it returns.
func (p *Pool) Visit(ctx context.Context, v *Visit) (*Report, error) {
	start := time.Now()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	steps := v.Steps
	if v.URL != "" {
		steps = append([]Step{{Kind: StepNavigate, URL: v.URL}}, steps...)
	}
	rep := &Report{WaitFor: v.WaitFor, WaitForFound: v.WaitFor == "", Loaded: true, StepsTotal: len(steps)}
	logf := v.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}

	// A browser that died just before this visit (killed, OOM) may not have been noticed
	// yet; the visit then fails to open its tab. Nothing of the page was measured, so it
	// tries once more in a fresh browser, within the same deadline.
	for attempt := 1; ; attempt++ {
		vr, err := p.attempt(ctx, v, rep, steps, logf, start, deadline)
		if err != nil && attempt == 1 && vr != nil && vr.target == nil && vr.inst.gone() && ctx.Err() == nil {
			logf("the browser was gone before the page opened (%v); retrying in a new browser", err)
			continue
		}
		rep.Duration = time.Since(start)
		return rep, err
	}
}

// attempt runs the visit once in the current browser. vr is nil when it never got one.
func (p *Pool) attempt(ctx context.Context, v *Visit, rep *Report, steps []Step, logf func(string, ...any), called, deadline time.Time) (*visitRun, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	p.tabs.Add(1)
	p.mu.Unlock()
	if err := p.acquire(ctx); err != nil {
		p.tabs.Done()
		return nil, err
	}
	inst, err := p.get(ctx)
	if err != nil {
		p.releaseSlot()
		p.tabs.Done()
		return nil, err
	}
	vr := &visitRun{p: p, inst: inst, v: v, rep: rep, steps: steps, logf: logf, caller: ctx, called: called, deadline: deadline, began: time.Now()}
	return vr, vr.run()
}

// visitRun is the state of one visit.
type visitRun struct {
	p      *Pool
	inst   *instance
	v      *Visit
	rep    *Report
	steps  []Step
	logf   func(string, ...any)
	caller context.Context
	// deadline is the caller's: nothing of the visit but the tab's close runs past it.
	deadline time.Time
	// called is when Visit was called: deadline less called is all the visit's time, the
	// wait for a slot and the browser's start included.
	called time.Time
	began  time.Time

	rec    *recorder
	tabCtx context.Context
	target *chromedp.Target
	// work is for the page's work (navigation, steps, waits); it ends a little before
	// deadline, or at once when the renderer crashes.
	work context.Context
}

func (vr *visitRun) run() error {
	p, inst := vr.p, vr.inst
	total := time.Until(vr.deadline)
	// The page's work stops early enough for the evidence: target info, a screenshot
	// and the timings, each with its own short deadline.
	reserve := min(evidenceReserve, total/4)

	t, err := vr.tab()
	if err != nil {
		p.release(inst)
		p.releaseSlot()
		p.tabs.Done()
		return err
	}
	// The tab closes at the visit's deadline, when the caller gives up or the pool closes,
	// whatever the page does.
	stopDeadline := time.AfterFunc(time.Until(vr.deadline), t.close)
	stopCaller := context.AfterFunc(vr.caller, t.close)
	stopClosing := context.AfterFunc(p.closing, t.close)
	vr.rec, vr.tabCtx, vr.target = t.rec, t.ctx, t.target
	vr.rec.answerDialogs(vr.v.Dialogs)
	vr.rec.setVersionHeader(vr.v.VersionHeader)
	base, cancelWork := context.WithCancelCause(t.ctx)
	crashed := func(reason string) { cancelWork(fmt.Errorf("%w: %s", ErrRendererCrashed, reason)) }
	vr.rec.onCrash.Store(&crashed)
	if reason := vr.rec.crashReason(); reason != "" {
		crashed(reason)
	}
	if stop := vr.v.Stop; stop != nil {
		var once sync.Once
		onProblem := func() {
			snap := &Report{WaitFor: vr.v.WaitFor, StepsTotal: vr.rep.StepsTotal}
			vr.rec.fill(snap)
			if why := stop(snap); why != "" {
				once.Do(func() { cancelWork(&stopError{why}) })
			}
		}
		vr.rec.onProblem.Store(&onProblem)
	}
	work, cancelDeadline := context.WithDeadlineCause(base, vr.deadline.Add(-reserve), errWorkDeadline)
	vr.work = work
	defer func() {
		// Closing a tab takes a round trip or two, longer when its renderer is stuck; the
		// result does not wait for it. The slot is only freed once the tab is gone, so a
		// run of stuck pages cannot pile up tabs. Then the next visit's tab is opened.
		go func() {
			cancelDeadline()
			cancelWork(nil)
			t.close()
			stopDeadline.Stop()
			stopCaller()
			stopClosing()
			p.release(inst)
			p.releaseSlot()
			p.tabs.Done()
			p.refill(inst)
		}()
	}()

	if err := vr.configureTab(); err != nil {
		return err
	}
	pulse := vr.startPulse()
	err = vr.journey()
	vr.noteSilence(pulse.end(), err)
	if why := vr.stopped(); why != "" && err == nil {
		vr.rep.StoppedEarly = why
		vr.logf("!! stopped at the first fatal error, %s after the visit began: %s", since(vr.began), why)
	}
	vr.collect(err)
	return err
}

// tab is the visit's tab: the pool's spare, opened ahead of need, or one opened now.
func (vr *visitRun) tab() (*tab, error) {
	if t := vr.p.takeSpare(vr.caller, vr.inst); t != nil {
		vr.p.release(vr.inst) // the spare's reference; the visit keeps its own
		vr.logf("took a tab opened ahead of need in a new browser context (%s before the visit)", since(t.began).Round(time.Millisecond))
		return t, nil
	}
	begin := time.Now()
	t := newTab(vr.inst)
	limit := max(time.Until(vr.deadline), time.Millisecond)
	t.open(limit)
	if t.err != nil {
		err := t.err
		// A browser that could not open a tab in a second or more is hung: counted, three
		// in a row replace it. (The open's limit is the visit's deadline, so a hung
		// browser ends the visit at its deadline: those were never counted, and a browser
		// wedged by a page's storm of events failed every check until a restart.) An open
		// cut short by the caller (its window decided) or with too little time says nothing.
		if !errors.Is(vr.caller.Err(), context.Canceled) && !vr.inst.gone() && limit >= time.Second {
			vr.p.noteTabOpen(vr.inst, false)
		}
		vr.rec = t.rec
		if f := vr.fatal(err); f != nil {
			err = f
		}
		return nil, fmt.Errorf("opening a browser tab: %w", err)
	}
	vr.p.noteTabOpen(vr.inst, true)
	vr.logf("opened a tab in a new browser context in %s", since(begin))
	return t, nil
}

// stopped returns why the visit's work was stopped early by Visit.Stop ("" when it was not).
func (vr *visitRun) stopped() string {
	var se *stopError
	if errors.As(context.Cause(vr.work), &se) {
		return se.why
	}
	return ""
}

// fatal returns the error that ends the visit when err came from the browser being gone,
// the renderer crashing or the caller giving up; nil when err is the page's doing: a
// selector that never matched, a wait that ran out of the visit's time.
func (vr *visitRun) fatal(err error) error {
	if err == nil {
		return nil
	}
	if reason := vr.rec.crashReason(); reason != "" {
		return fmt.Errorf("%w: %s; the next run gets a new tab", ErrRendererCrashed, reason)
	}
	if vr.inst.gone() {
		return fmt.Errorf("%w while the page was open (%v); the next run starts a new browser", ErrBrowserExited, context.Cause(vr.inst.ctx))
	}
	if vr.p.closing.Err() != nil {
		return ErrClosed
	}
	if err := vr.caller.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("timed out: %w", err)
		}
		return fmt.Errorf("cancelled: %w", context.Cause(vr.caller))
	}
	return nil
}

func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func since(t time.Time) time.Duration {
	d := time.Since(t)
	if d > time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
