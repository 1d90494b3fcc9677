package browser

// Tabs, and the spare tab opened ahead of need. Opening a tab in a new isolated browser
// context costs a visit about half a second on a small machine (the context, the target,
// attaching to it, the error listeners). A pool keeps one such tab ready, opened after a
// visit ends or the browser starts, off the critical path: the next visit only sets its
// viewport, cookies and headers and navigates. A spare tab has never loaded a page: its
// fresh browser context holds no cache, cookie, connection or DNS answer, so a deploy's
// verification still judges the new version through nothing from before it.

import (
	"context"
	"fmt"
	"sync"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// tab is an open tab in its own browser context, with its recorder listening from the
// tab's first message and the error listeners installed.
type tab struct {
	inst   *instance
	rec    *recorder
	ctx    context.Context // the tab's own context; Done when the tab is closed
	target *chromedp.Target
	// close ends the tab (and its browser context); it is safe to call more than once.
	close context.CancelFunc
	// ready closes once the tab is open or failed to open (err).
	ready chan struct{}
	err   error
	began time.Time
}

// newTab is a tab about to be opened in inst.
func newTab(inst *instance) *tab {
	return &tab{inst: inst, rec: newRecorder(), ready: make(chan struct{}), close: func() {}}
}

// open opens the tab and installs the error listeners, within limit, then closes ready.
// The tab's first command must run on the tab's own context (the tab lives as long as it),
// so the limit is a timer that closes the tab, not a deadline on that context. The tab's
// browser context is vigil's, not chromedp's (newBrowserContext): the tab's close disposes
// of it, which closes whatever page is in it, attached to or not.
func (t *tab) open(limit time.Duration) {
	defer close(t.ready)
	t.began = time.Now()
	runCtx, runCancel := context.WithCancel(t.inst.ctx)
	t.ctx, t.close = runCtx, runCancel
	timer := time.AfterFunc(limit, runCancel)
	bc, err := newBrowserContext(runCtx, t.inst)
	if err != nil {
		t.err = fmt.Errorf("creating a browser context: %w", err)
	} else {
		tabCtx, tabCancel := chromedp.NewContext(runCtx, chromedp.WithExistingBrowserContext(bc), chromedp.WithListener(t.rec.listen))
		var dispose sync.Once
		t.ctx = tabCtx
		t.close = func() {
			tabCancel()
			runCancel()
			dispose.Do(func() { disposeBrowserContext(t.inst, bc) })
		}
		t.err = t.prepare(tabCtx, bc)
	}
	if !timer.Stop() && t.err == nil {
		t.err = fmt.Errorf("opening the tab took longer than %s", limit)
	}
	if t.err != nil {
		// In the background: the visit's time is up, and the page may not even be attached
		// (the limit came while it was being created), which only the disposal closes.
		go t.close()
	}
}

// prepare installs the error listeners on the tab being opened, starts watching the
// windows it opens and lets it load.
func (t *tab) prepare(tabCtx context.Context, bc cdp.BrowserContextID) error {
	return chromedp.Do(tabCtx, chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		if _, err := cdp.Call(ctx, target, runtime.AddBinding, runtime.AddBindingParams{Name: bindingName}); err != nil {
			return fmt.Errorf("adding the error-report binding: %w", err)
		}
		if _, err := cdp.Call(ctx, target, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: injectedScript}); err != nil {
			return fmt.Errorf("injecting the error listeners: %w", err)
		}
		// Denied, with their events: a document served as a download is told from
		// another aborted navigation (download.go), and nothing lands on vigil's disk.
		events := true
		if _, err := cdp.Call(ctx, target, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior: cdpbrowser.SetDownloadBehaviorBehaviorDeny, BrowserContextID: bc, EventsEnabled: &events}); err != nil {
			return fmt.Errorf("denying downloads: %w", err)
		}
		// The tab's (fresh) browser context's service workers report their errors here.
		if _, err := cdp.Call(ctx, target, serviceworker.Enable, cdp.Empty{}); err != nil {
			return fmt.Errorf("watching service workers: %w", err)
		}
		tree, err := cdp.Call(ctx, target, page.GetFrameTree, cdp.Empty{})
		if err != nil {
			return fmt.Errorf("reading the frame tree: %w", err)
		}
		if tree.FrameTree != nil && tree.FrameTree.Frame != nil {
			t.rec.setMainFrame(tree.FrameTree.Frame.ID)
		}
		t.target = target
		t.rec.setAnswerer(&dialogAnswerer{tabCtx: tabCtx, target: target})
		t.rec.watchWindows(tabCtx, target.TargetID, bc)
		context.AfterFunc(tabCtx, t.inst.held.watch(bc, t.rec.windowCreated))
		// Chromium holds every new page until its run listens (held.go): this one's
		// recorder and error listeners are in, so it may load.
		if err := t.inst.held.letGo(ctx, t.inst.browser, target.TargetID); err != nil {
			return fmt.Errorf("letting the tab load: %w", err)
		}
		return nil
	}))
}

// newBrowserContext creates a fresh browser context for a tab, within ctx. Chromium
// creates it whether or not its caller still waits, and an answer that comes after the
// caller gave up is forgotten: the context would stay, empty, for the browser's life, one
// for each run cut by its deadline while a loaded browser was slow to answer. So the
// creation is not cut by ctx: when ctx ends first, it runs on in the background until
// Chromium answers (or the browser is gone), and the context it made is disposed of.
func newBrowserContext(ctx context.Context, inst *instance) (cdp.BrowserContextID, error) {
	type answer struct {
		id  cdp.BrowserContextID
		err error
	}
	// Unbuffered: an answer is either taken by the caller, who owns the context, or
	// disposed of here, never both or neither.
	answered := make(chan answer)
	go func() {
		yes := true // and disposed of by Chromium if vigil's connection goes
		res, err := cdp.Call(inst.ctx, inst.browser, target.CreateBrowserContext, target.CreateBrowserContextParams{DisposeOnDetach: &yes})
		select {
		case answered <- answer{res.BrowserContextID, err}:
		case <-ctx.Done():
			if err == nil {
				disposeBrowserContext(inst, res.BrowserContextID)
			}
		}
	}()
	select {
	case a := <-answered:
		return a.id, a.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// disposeBrowserContext disposes of a tab's browser context, which closes the pages in
// it, within disposeTimeout.
func disposeBrowserContext(inst *instance, bc cdp.BrowserContextID) {
	ctx, cancel := context.WithTimeout(inst.ctx, disposeTimeout)
	defer cancel()
	_, _ = cdp.Call(ctx, inst.browser, target.DisposeBrowserContext, target.DisposeBrowserContextParams{BrowserContextID: bc})
}

// disposeTimeout bounds disposing of a browser context.
const disposeTimeout = 10 * time.Second

// spareLimit bounds the opening of a spare tab: a browser that cannot open one in this
// time is not one to wait for.
const spareLimit = 20 * time.Second

// takeSpare returns the spare tab if it belongs to inst and is open and well, with the
// reference on inst it held (the caller releases it once, with its own). It returns nil
// when there is none to use: the visit opens its own tab.
func (p *Pool) takeSpare(ctx context.Context, inst *instance) *tab {
	p.mu.Lock()
	t := p.spare
	if t == nil || t.inst != inst {
		p.mu.Unlock()
		return nil
	}
	p.spare = nil
	p.mu.Unlock()
	select {
	case <-t.ready:
	case <-ctx.Done():
		p.bg.Go(func() { p.discard(t) })
		return nil
	}
	if t.err != nil {
		return nil // open released its reference
	}
	if t.ctx.Err() != nil || t.rec.crashReason() != "" || inst.gone() {
		p.discard(t)
		return nil
	}
	return t
}

// refill opens a spare tab in inst in the background, unless one is there or opening, the
// pool is closed or inst is no longer the current browser. The spare holds a reference on
// inst until it is used or discarded; a spare that fails to open releases it at once.
func (p *Pool) refill(inst *instance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.opts.NoSpareTab || p.closed || p.spare != nil || p.cur != inst || inst.retired || inst.gone() {
		return
	}
	inst.refs++
	t := newTab(inst)
	p.spare = t
	p.bg.Go(func() {
		t.open(spareLimit)
		if t.err == nil {
			return
		}
		p.log.Debug("could not open a spare tab", "error", t.err)
		p.mu.Lock()
		if p.spare == t {
			p.spare = nil
		}
		p.mu.Unlock()
		p.release(inst)
	})
}

// discard waits for a spare tab to be open, closes it and drops its reference on the
// browser (a tab that failed to open dropped it already).
func (p *Pool) discard(t *tab) {
	<-t.ready
	if t.err == nil {
		t.close()
		p.release(t.inst)
	}
}

// dropSpareLocked discards the spare tab (of inst, or any when inst is nil): the browser
// is retired or gone, or the pool closes. p.mu must be held.
func (p *Pool) dropSpareLocked(inst *instance) {
	t := p.spare
	if t == nil || (inst != nil && t.inst != inst) {
		return
	}
	p.spare = nil
	p.bg.Go(func() { p.discard(t) })
}
