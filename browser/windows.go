package browser

// Windows the page opens. A checkout that opens a payment or sign-in window (window.open,
// a target=_blank link) is broken when that window throws, and the page's own session sees
// nothing of it: a window is a target of its own. Chromium holds every new page before its
// first navigation (held.go) and hands each one created in the tab's browser context (a
// run's own, fresh one) to the tab, which attaches to it with a recorder of its own and then
// lets it load: its exceptions, console errors, failed requests and dialogs, from its first
// request and its first script on, are the run's, named "window URL". Nothing of the run
// waits for a window to load: one that never does costs nothing, and the attach ends with
// the tab.

import (
	"context"
	"sync"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/vigil-monitor/vigil/internal/text"
)

// maxWindows bounds the windows one run watches (a page in a window.open loop).
const maxWindows = 20

// windowState is what the recorder keeps of the windows the page opened.
type windowState struct {
	// self and browserContext are the tab's, set once it is open; attach is set then too.
	self           target.ID
	browserContext cdp.BrowserContextID
	attach         func(id target.ID, w *recorder)
	list           []*window
}

// window is one window the page opened: its recorder, and its address as Chromium last
// named it (its document's response may come before the attach).
type window struct {
	id  target.ID
	url string
	rec *recorder
}

// watchWindows starts attaching to the windows the tab's page opens.
func (r *recorder) watchWindows(tabCtx context.Context, self target.ID, bc cdp.BrowserContextID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.win.self, r.win.browserContext = self, bc
	r.win.attach = func(id target.ID, w *recorder) { go attachWindow(tabCtx, id, w) }
}

// windowCreated is called for each page Chromium holds in the tab's browser context
// (held.go). Every one is let go: past maxWindows without a recorder.
func (r *recorder) windowCreated(info *target.Info) {
	if info == nil || info.Type != "page" {
		return
	}
	r.mu.Lock()
	if r.win.attach == nil || info.BrowserContextID != r.win.browserContext || info.TargetID == r.win.self {
		r.mu.Unlock()
		return
	}
	var w *recorder
	if len(r.win.list) < maxWindows {
		w = newRecorder()
		w.setMainFrame(cdp.FrameID(info.TargetID))
		w.acceptDialogs.Store(r.acceptDialogs.Load())
		// A window's problem is the run's: Visit.Stop hears of it as of the page's own.
		onProblem := func() {
			if f := r.onProblem.Load(); f != nil {
				(*f)()
			}
		}
		w.onProblem.Store(&onProblem)
		r.win.list = append(r.win.list, &window{id: info.TargetID, url: text.Ellipsis(info.URL, maxURL), rec: w})
	}
	attach := r.win.attach
	r.mu.Unlock()
	attach(info.TargetID, w)
}

// windowChanged keeps a window's address up to date (it is about:blank or empty when the
// window is created).
func (r *recorder) windowChanged(info *target.Info) {
	if info == nil || info.URL == "" || info.URL == "about:blank" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.win.list {
		if w.id == info.TargetID {
			w.url = text.Ellipsis(info.URL, maxURL)
		}
	}
}

// openedWindows reports whether the page opened a window.
func (r *recorder) openedWindows() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.win.list) > 0
}

// attachWindow attaches to a held window with w listening from the session's first
// message, installs the error listeners for its documents, then lets it load: its first
// request and script come after. With w nil (past maxWindows) it only lets it load. It
// ends with the tab (tabCtx), which closes the window.
//
// The window is let go only once chromedp's attach has returned, and the attach enables
// the window's Network and Page domains before it returns: the window's first request is
// seen, and so is every request of a blank window its opener scripts (a script written
// into it, its own fetch called, its address set), because the opener's window.open does
// not return while the window is held (Chromium 156: they share a process, and the
// opener's script stays in window.open until the let-go). TestRequestsOfAWindowItsOpenerScripts
// fails when the window is let go before its Network domain is on.
//
// A dialog shown in a window stops its process, which it shares with the opener, until it
// is answered, and chromedp's attach runs commands in the page (Runtime.evaluate) before
// it enables the Page domain that reports dialogs; those would wait while a dialog is
// open. So, should a window have one open as it is attached (one Chromium did not hold),
// its Page and Network domains are enabled, and its answerer set, at the session's first
// event (Runtime was just enabled), without waiting for the attach to finish. The
// session's Target is set before its first event is delivered, so the listener reads it
// safely.
func attachWindow(tabCtx context.Context, id target.ID, w *recorder) {
	opts := []chromedp.ContextOption{chromedp.WithTargetID(id)}
	var wctx context.Context
	if w != nil {
		var once sync.Once
		opts = append(opts, chromedp.WithListener(func(ev any) {
			once.Do(func() {
				c := chromedp.FromContext(wctx)
				if c == nil || c.Target == nil {
					return
				}
				t := c.Target
				w.setAnswerer(&dialogAnswerer{tabCtx: wctx, target: t})
				go func() {
					_, _ = cdp.Call(wctx, t, page.Enable, page.EnableParams{})
					_, _ = cdp.Call(wctx, t, network.Enable, network.EnableParams{})
				}()
			})
			w.listen(ev)
		}))
	}
	wctx, cancel := chromedp.NewContext(tabCtx, opts...)
	defer cancel()
	err := chromedp.Do(wctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if w == nil {
			return nil
		}
		if _, err := cdp.Call(ctx, t, runtime.AddBinding, runtime.AddBindingParams{Name: bindingName}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: injectedScript})
		return err
	}))
	if err != nil {
		return // the window or the tab is gone
	}
	_ = chromedp.Do(wctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, runtime.RunIfWaitingForDebugger, cdp.Empty{})
		return err
	}))
	<-wctx.Done()
}

// fillWindows adds the windows' problems and dialogs to rep, each named by its window's
// address. r.mu must be held.
func (r *recorder) fillWindows(rep *Report) {
	for _, win := range r.win.list {
		var sub Report
		win.rec.fill(&sub)
		source := "window"
		if win.url != "" && win.url != "about:blank" {
			source += " " + win.url
		}
		for _, e := range sub.Exceptions {
			e.Source = source
			rep.Exceptions = append(rep.Exceptions, e)
		}
		for _, c := range sub.ConsoleErrors {
			c.Source = source
			rep.ConsoleErrors = append(rep.ConsoleErrors, c)
		}
		for _, f := range sub.FailedRequests {
			f.Source = source
			rep.FailedRequests = append(rep.FailedRequests, f)
		}
		rep.Dialogs = append(rep.Dialogs, sub.Dialogs...)
		rep.Dropped += sub.Dropped
		rep.DroppedBy.Exceptions += sub.DroppedBy.Exceptions
		rep.DroppedBy.ConsoleErrors += sub.DroppedBy.ConsoleErrors
		rep.DroppedBy.FailedRequests += sub.DroppedBy.FailedRequests
		rep.DroppedBy.Dialogs += sub.DroppedBy.Dialogs
	}
}
