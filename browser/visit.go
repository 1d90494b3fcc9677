package browser

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// DefaultTimeout bounds a visit whose context has no deadline.
const DefaultTimeout = 30 * time.Second

// Evidence budget: the screenshot gets its own short deadline, because a renderer that is
// busy (a script in a loop) never answers, and the visit must still end in time.
const (
	screenshotTimeout = time.Second
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
	Cookies []Cookie
	// Viewport sets the window size; zero keeps Chromium's default.
	Viewport Viewport
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

// StepKind names a journey action.
type StepKind string

// Journey actions.
const (
	StepNavigate   StepKind = "navigate"
	StepClick      StepKind = "click"
	StepType       StepKind = "type"
	StepWaitFor    StepKind = "wait_for"
	StepAssertText StepKind = "assert_text"
	StepSleep      StepKind = "sleep"
)

// Step is one action of a journey.
type Step struct {
	Kind StepKind
	// URL for navigate.
	URL string
	// Selector is a CSS selector, for click, type, wait_for and assert_text.
	Selector string
	// Text is what type types (never logged: it may be a password) or what assert_text
	// expects the element's text to contain.
	Text string
	// Sleep for sleep.
	Sleep time.Duration
}

// String names the step in reasons and transcripts, without typed text.
func (s Step) String() string {
	switch s.Kind {
	case StepNavigate:
		return "navigate " + s.URL
	case StepType:
		return fmt.Sprintf("type %d characters into %s", len([]rune(s.Text)), s.Selector)
	case StepAssertText:
		return fmt.Sprintf("assert_text %s contains %q", s.Selector, s.Text)
	case StepSleep:
		return "sleep " + s.Sleep.String()
	}
	return string(s.Kind) + " " + s.Selector
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

// errWorkDeadline is the cause of a visit's work context ending on time: the rest of the
// budget is kept for evidence.
var errWorkDeadline = errors.New("the visit's time is up")

// stopError is the cause of a visit's work ending because Stop judged the page failed.
type stopError struct{ why string }

func (e *stopError) Error() string { return "stopped at the first fatal error: " + e.why }

// Visit loads a page (and runs its journey) in a fresh isolated browser context and reports
// what happened. It returns an error only when it could not measure: no browser, the page
// unreachable, the renderer crashed, the browser died, ctx ended. The report is returned
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
		vr, err := p.attempt(ctx, v, rep, steps, logf, deadline)
		if err != nil && attempt == 1 && vr != nil && vr.target == nil && vr.inst.gone() && ctx.Err() == nil {
			logf("the browser was gone before the page opened (%v); retrying in a new browser", err)
			continue
		}
		rep.Duration = time.Since(start)
		return rep, err
	}
}

// attempt runs the visit once in the current browser. vr is nil when it never got one.
func (p *Pool) attempt(ctx context.Context, v *Visit, rep *Report, steps []Step, logf func(string, ...any), deadline time.Time) (*visitRun, error) {
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
	vr := &visitRun{p: p, inst: inst, v: v, rep: rep, steps: steps, logf: logf, caller: ctx, deadline: deadline, began: time.Now()}
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
	began    time.Time

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

	runCtx, runCancel := context.WithDeadline(inst.ctx, vr.deadline)
	stopCaller := context.AfterFunc(vr.caller, runCancel)
	stopClosing := context.AfterFunc(p.closing, runCancel)
	var cancelWork context.CancelCauseFunc
	vr.rec = newRecorder(func(reason string) { cancelWork(fmt.Errorf("%w: %s", ErrRendererCrashed, reason)) })
	if stop := vr.v.Stop; stop != nil {
		var once sync.Once
		vr.rec.onProblem = func() {
			snap := &Report{WaitFor: vr.v.WaitFor, StepsTotal: vr.rep.StepsTotal}
			vr.rec.fill(snap)
			if why := stop(snap); why != "" {
				once.Do(func() { cancelWork(&stopError{why}) })
			}
		}
	}
	tabCtx, tabCancel := chromedp.NewContext(runCtx, chromedp.WithNewBrowserContext(), chromedp.WithListener(vr.rec.listen))
	vr.tabCtx = tabCtx
	base, cancelWork := context.WithCancelCause(tabCtx)
	work, cancelDeadline := context.WithDeadlineCause(base, vr.deadline.Add(-reserve), errWorkDeadline)
	vr.work = work
	defer func() {
		// Closing a tab takes a round trip or two, longer when its renderer is stuck; the
		// result does not wait for it. The slot is only freed once the tab is gone, so a
		// run of stuck pages cannot pile up tabs.
		go func() {
			cancelDeadline()
			cancelWork(nil)
			tabCancel()
			runCancel()
			stopCaller()
			stopClosing()
			p.release(inst)
			p.releaseSlot()
			p.tabs.Done()
		}()
	}()

	if err := vr.openTab(); err != nil {
		return err
	}
	err := vr.journey()
	if why := vr.stopped(); why != "" && err == nil {
		vr.rep.StoppedEarly = why
		vr.logf("!! stopped at the first fatal error, %s after the visit began: %s", since(vr.began), why)
	}
	vr.collect(err)
	return err
}

// stopped returns why the visit's work was stopped early by Visit.Stop ("" when it was not).
func (vr *visitRun) stopped() string {
	var se *stopError
	if errors.As(context.Cause(vr.work), &se) {
		return se.why
	}
	return ""
}

// openTab creates the tab in a new browser context and prepares it before any page
// script can run: the reporting binding and script, the viewport, cookies, headers.
func (vr *visitRun) openTab() error {
	begin := time.Now()
	setup := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, runtime.AddBinding, runtime.AddBindingParams{Name: bindingName}); err != nil {
			return fmt.Errorf("adding the error-report binding: %w", err)
		}
		if _, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: injectedScript}); err != nil {
			return fmt.Errorf("injecting the error listeners: %w", err)
		}
		tree, err := cdp.Call(ctx, t, page.GetFrameTree, cdp.Empty{})
		if err != nil {
			return fmt.Errorf("reading the frame tree: %w", err)
		}
		if tree.FrameTree != nil && tree.FrameTree.Frame != nil {
			vr.rec.setMainFrame(tree.FrameTree.Frame.ID)
		}
		if vp := vr.v.Viewport; vp.Width > 0 && vp.Height > 0 {
			if _, err := cdp.Call(ctx, t, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
				Width: int64(vp.Width), Height: int64(vp.Height), DeviceScaleFactor: 1}); err != nil {
				return fmt.Errorf("setting the viewport: %w", err)
			}
		}
		if cookies := vr.cookies(); len(cookies) > 0 {
			if _, err := cdp.Call(ctx, t, network.SetCookies, network.SetCookiesParams{Cookies: cookies}); err != nil {
				return fmt.Errorf("setting cookies: %w", err)
			}
		}
		vr.target = t
		return nil
	})
	// The tab's first Do must get the tab's own context: the tab lives as long as it.
	err := chromedp.Do(vr.tabCtx, setup)
	if err == nil && len(vr.v.Headers) > 0 {
		err = vr.interceptHeaders()
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && !vr.inst.gone() {
			vr.p.noteTabOpen(vr.inst, false)
		}
		if f := vr.fatal(err); f != nil {
			err = f
		}
		return fmt.Errorf("opening a browser tab: %w", err)
	}
	vr.p.noteTabOpen(vr.inst, true)
	vr.logf("opened a tab in a new browser context in %s", since(begin))
	return nil
}

// interceptHeaders adds the configured headers to first-party requests (Fetch domain).
func (vr *visitRun) interceptHeaders() error {
	var patterns []*fetch.RequestPattern
	seen := map[string]bool{}
	for _, st := range vr.steps {
		if st.Kind != StepNavigate {
			continue
		}
		if o := origin(st.URL); o != "" && !seen[o] {
			seen[o] = true
			patterns = append(patterns, &fetch.RequestPattern{URLPattern: o + "/*"})
		}
	}
	if len(patterns) == 0 {
		return nil
	}
	// Subscribe before enabling, so no paused request is missed: a paused request that is
	// never continued hangs the page.
	paused := chromedp.Events(vr.tabCtx, fetch.RequestPaused)
	t := vr.target
	extra := vr.v.Headers
	vr.p.bg.Go(func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			_, _ = cdp.Call(vr.tabCtx, t, fetch.ContinueRequest, fetch.ContinueRequestParams{
				RequestID: ev.RequestID, Headers: mergeHeaders(ev.Request, extra)})
		}
	})
	return chromedp.Do(vr.tabCtx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, fetch.Enable, fetch.EnableParams{Patterns: patterns})
		return err
	}))
}

func mergeHeaders(req *network.Request, extra map[string]string) []*fetch.HeaderEntry {
	var out []*fetch.HeaderEntry
	if req != nil {
		for k, v := range req.Headers {
			if _, override := lookupFold(extra, k); override {
				continue
			}
			out = append(out, &fetch.HeaderEntry{Name: k, Value: fmt.Sprint(v)})
		}
	}
	for k, v := range extra {
		out = append(out, &fetch.HeaderEntry{Name: k, Value: v})
	}
	return out
}

func lookupFold(m map[string]string, key string) (string, bool) {
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

func (vr *visitRun) cookies() []*network.CookieParam {
	first := ""
	for _, st := range vr.steps {
		if st.Kind == StepNavigate {
			first = st.URL
			break
		}
	}
	var out []*network.CookieParam
	for _, c := range vr.v.Cookies {
		cp := &network.CookieParam{Name: c.Name, Value: c.Value, Path: c.Path}
		if c.Domain != "" {
			cp.Domain = c.Domain
			if cp.Path == "" {
				cp.Path = "/"
			}
		} else {
			cp.URL = first
		}
		out = append(out, cp)
	}
	return out
}

// journey runs the steps. It returns an error only when the visit could not measure; a
// step the page fails is recorded in the report.
func (vr *visitRun) journey() error {
	navigated := false
	for i, st := range vr.steps {
		label := fmt.Sprintf("step %d (%s)", i+1, st)
		if len(vr.steps) == 1 {
			label = st.String()
		}
		vr.logf("-- %s", label)
		failure, err := vr.step(st)
		if err != nil {
			return err
		}
		if vr.stopped() != "" {
			return nil // the page failed for good: what the step saw since is not its fault
		}
		if failure != "" {
			vr.rep.FailedStep, vr.rep.StepError = label, failure
			vr.logf("!! %s: %s", label, failure)
			return nil
		}
		vr.rep.Steps = i + 1
		if st.Kind == StepNavigate && !navigated {
			navigated = true
			if vr.v.WaitFor == "" {
				continue
			}
			if found, err := vr.waitFor(); err != nil || !found || vr.stopped() != "" {
				// The page did not render; the steps after this would only wait for
				// things that cannot appear. wait_for_found tells the story.
				return err
			}
		}
	}
	return nil
}

// waitFor waits for the visit's WaitFor selector to become visible. err is set when the
// visit cannot go on measuring (crash, browser gone, caller gone).
func (vr *visitRun) waitFor() (bool, error) {
	begin := time.Now()
	err := chromedp.Do(vr.work, chromedp.WaitVisible(chromedp.CSS(vr.v.WaitFor)))
	if err == nil {
		vr.rep.WaitForFound = true
		vr.logf("wait_for %s: visible after %s", vr.v.WaitFor, since(begin))
		return true, nil
	}
	if f := vr.fatal(err); f != nil {
		vr.logf("wait_for %s: %v", vr.v.WaitFor, f)
		return false, f
	}
	if vr.stopped() != "" {
		vr.logf("wait_for %s: stopped waiting after %s", vr.v.WaitFor, since(begin))
		return false, nil
	}
	vr.logf("wait_for %s: not visible after %s", vr.v.WaitFor, since(begin))
	return false, nil
}

// step runs one action. failure says how the page failed it; err is set when the visit
// could not go on measuring.
func (vr *visitRun) step(st Step) (failure string, err error) {
	ctx := vr.work
	begin := time.Now()
	notFound := func(err error, verb string) (string, error) {
		if f := vr.fatal(err); f != nil {
			return "", f
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return fmt.Sprintf("no visible element matches %q after %s", st.Selector, since(begin)), nil
		}
		return fmt.Sprintf("%s %q: %v", verb, st.Selector, err), nil
	}
	switch st.Kind {
	case StepNavigate:
		return vr.navigate(st.URL)
	case StepClick:
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(st.Selector))); err != nil {
			return notFound(err, "click")
		}
	case StepType:
		if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(st.Selector), st.Text, chromedp.NodeVisible)); err != nil {
			return notFound(err, "type into")
		}
	case StepWaitFor:
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(st.Selector))); err != nil {
			return notFound(err, "wait for")
		}
	case StepAssertText:
		return vr.assertText(st)
	case StepSleep:
		t := time.NewTimer(st.Sleep)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			if f := vr.fatal(context.Cause(ctx)); f != nil {
				return "", f
			}
			return fmt.Sprintf("the visit's time ran out during the %s sleep", st.Sleep), nil
		}
	}
	vr.logf("done in %s", since(begin))
	return "", nil
}

// assertText waits until the element's visible text contains st.Text, as a person would
// wait for a page to settle, for at most 5 seconds.
func (vr *visitRun) assertText(st Step) (string, error) {
	ctx, cancel := context.WithTimeout(vr.work, 5*time.Second)
	defer cancel()
	last, found := "", false
	for {
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(st.Selector), chromedp.NodeVisible))
		if err == nil {
			found, last = true, text
			if strings.Contains(text, st.Text) {
				vr.logf("text of %s contains %q", st.Selector, st.Text)
				return "", nil
			}
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
			continue
		case <-ctx.Done():
			t.Stop()
		}
		if f := vr.fatal(context.Cause(ctx)); f != nil {
			return "", f
		}
		if !found {
			return fmt.Sprintf("no visible element matches %q", st.Selector), nil
		}
		return fmt.Sprintf("the text of %s is %q, which does not contain %q", st.Selector, clip(last, 300), st.Text), nil
	}
}

// navigate loads u and waits for its load event. No answer at all is an error (the page
// is unreachable); an answer whose page never finishes loading is recorded and the
// journey goes on, since the page may still be usable.
func (vr *visitRun) navigate(u string) (string, error) {
	ctx := vr.work
	var cancel context.CancelFunc = func() {}
	if d := vr.v.NavigationTimeout; d > 0 {
		ctx, cancel = context.WithTimeout(ctx, d)
	}
	defer cancel()
	begin := time.Now()
	docs := vr.rec.documents()
	err := chromedp.Do(ctx, chromedp.Navigate(u))
	switch {
	case err == nil:
		vr.logf("< loaded %s in %s (status %d)", u, since(begin), vr.rec.docStatus())
		return "", nil
	case vr.stopped() != "":
		vr.logf("< stopped waiting for %s to load after %s (status %d)", u, since(begin), vr.rec.docStatus())
		return "", nil
	}
	vr.rep.Loaded = false
	switch {
	case errors.Is(err, chromedp.ErrPageLoad):
		var le *chromedp.LoadError
		if errors.As(err, &le) {
			return "", fmt.Errorf("GET %s: %s", u, le.ErrorText)
		}
		return "", fmt.Errorf("GET %s: %w", u, err)
	}
	if f := vr.fatal(err); f != nil {
		return "", f
	}
	if vr.rec.documents() == docs {
		if errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("GET %s: timed out: no response within %s", u, since(begin))
		}
		return "", fmt.Errorf("GET %s: %w", u, err)
	}
	vr.rep.Pending = vr.rec.pending(5)
	vr.logf("!! %s answered but did not finish loading within %s; still loading: %s", u, since(begin),
		strings.Join(vr.rep.Pending, ", "))
	return "", nil
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

// collect fills the report and takes the screenshot while the tab is still open. The
// screenshot comes first when the page already failed, so a slow renderer spends the
// evidence budget on the picture, not on timings; the timings' round trip to the renderer
// then flushes late events (an exception from a timer) into a second look.
func (vr *visitRun) collect(visitErr error) {
	rep := vr.rep
	alive := func() bool {
		return vr.target != nil && vr.rec.crashReason() == "" && !vr.inst.gone() && vr.caller.Err() == nil && vr.p.closing.Err() == nil
	}
	if alive() {
		ctx, cancel := context.WithTimeout(vr.tabCtx, collectTimeout)
		if info, err := cdp.Call(ctx, vr.inst.browser, target.GetTargetInfo, target.GetTargetInfoParams{TargetID: vr.target.TargetID}); err == nil && info.TargetInfo != nil {
			rep.URL, rep.Title = info.TargetInfo.URL, info.TargetInfo.Title
		}
		cancel()
	}
	vr.rec.fill(rep)
	if !alive() {
		return
	}
	shot := visitErr != nil || vr.wantEvidence()
	if shot {
		vr.screenshot()
	}
	if rep.Loaded && visitErr == nil && rep.StoppedEarly == "" && alive() {
		vr.timings()
		vr.rec.fill(rep)
		if !shot && alive() && vr.wantEvidence() {
			vr.screenshot()
		}
	}
}

func (vr *visitRun) wantEvidence() bool {
	if vr.v.Evidence != nil {
		return vr.v.Evidence(vr.rep)
	}
	return hasProblems(vr.rep)
}

// screenshot keeps a PNG of the viewport, within its own short deadline.
func (vr *visitRun) screenshot() {
	begin := time.Now()
	ctx, cancel := context.WithTimeout(vr.tabCtx, screenshotTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		vr.logf("no screenshot: the page did not answer within %s (%v)", since(begin), err)
		return
	}
	vr.rep.Screenshot = png
	vr.logf("screenshot: %d KiB in %s", (len(png)+1023)/1024, since(begin))
}

// timings reads Navigation Timing and LCP. The round trip to the renderer also makes sure
// every event the page sent before it has reached the recorder.
func (vr *visitRun) timings() {
	ctx, cancel := context.WithTimeout(vr.tabCtx, collectTimeout)
	defer cancel()
	t, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]float64](timingsScript, chromedp.EvalAwaitPromise))
	if err != nil {
		vr.logf("no timings: %v", err)
		return
	}
	ms := func(k string) time.Duration { return time.Duration(t[k] * float64(time.Millisecond)) }
	vr.rep.Timings = Timings{TTFB: ms("ttfb"), DOMContentLoaded: ms("dcl"), Load: ms("load"), LCP: ms("lcp")}
}

// hasProblems is the default Evidence: anything a person would want to see.
func hasProblems(r *Report) bool {
	return len(r.Exceptions)+len(r.ConsoleErrors)+len(r.FailedRequests) > 0 || !r.WaitForFound ||
		r.StepError != "" || !r.Loaded || r.Status >= 400
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
