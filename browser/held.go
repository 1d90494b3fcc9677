package browser

// New pages start held. A window the page opens (window.open, a target=_blank link) is a
// target of its own, and a session that attaches once it has appeared misses what it did
// in between: its first requests, and a dialog that then stalls it and its opener. So the
// browser's own session asks Chromium to hold every new page before its first navigation
// (Target.setAutoAttach with waitForDebuggerOnStart, pages only), and each page is let go
// by the run it belongs to, on that run's own session, once the session listens: a run's
// tab lets itself go when it is open (spare.go), and a window is handed to the run whose
// browser context it opened in, which attaches its recorder and then lets it go
// (windows.go). No run ever waits on the pool or on another run: the watch only routes,
// and a page held for nobody's run is one that a run is opening and will let go itself.
//
// What Chromium 156 offers and does not, as tried: a page session's own setAutoAttach and
// the browser's Target.autoAttachRelated on the page report its frames and workers, never
// the windows it opens; and a held page is let go by Runtime.runIfWaitingForDebugger on
// any session attached to it, but neither by detaching the holding session nor by
// Target.sendMessageToTarget (refused on a flat connection), and chromedp routes nothing
// of a session it did not attach itself.

import (
	"context"
	"sync"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// heldPages routes the pages Chromium holds to the runs they belong to, by browser context
// (each run has its own).
type heldPages struct {
	mu   sync.Mutex
	runs map[cdp.BrowserContextID]func(*target.Info)
	// tabs are the held pages no run watches: the tabs being opened, each let go by its
	// own opening (letGo). One never claimed (an opening cut short, a window opened while
	// its run's browser context was closing) is forgotten when its page is gone.
	tabs map[target.ID]*heldTab
}

// heldTab is a held page waiting for the tab that is opening it: ready closes once the
// session holding it is known.
type heldTab struct {
	session target.SessionID
	ready   chan struct{}
}

// watch hands the pages held in bc to opened until the returned func is called. opened
// runs on the browser connection's reader: it must not block or call the browser.
func (h *heldPages) watch(bc cdp.BrowserContextID, opened func(*target.Info)) (stop func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.runs == nil {
		h.runs = map[cdp.BrowserContextID]func(*target.Info){}
	}
	h.runs[bc] = opened
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.runs, bc)
	}
}

// route hands a held page to its run, if a run watches its browser context, and otherwise
// keeps it for the tab being opened.
func (h *heldPages) route(ev *target.EventAttachedToTarget) {
	info := ev.TargetInfo
	if info == nil || info.Type != "page" {
		return
	}
	h.mu.Lock()
	opened := h.runs[info.BrowserContextID]
	if opened == nil {
		t := h.tabLocked(info.TargetID)
		if t.session == "" {
			t.session = ev.SessionID
			close(t.ready)
		}
	}
	h.mu.Unlock()
	if opened != nil {
		opened(info)
	}
}

// tabLocked is the held tab entry for id, new if there is none; h.mu must be held.
func (h *heldPages) tabLocked(id target.ID) *heldTab {
	if h.tabs == nil {
		h.tabs = map[target.ID]*heldTab{}
	}
	t := h.tabs[id]
	if t == nil {
		t = &heldTab{ready: make(chan struct{})}
		h.tabs[id] = t
	}
	return t
}

// gone forgets the held page of session, if one is kept: its page was closed (its tab's
// opening was cut short, its browser context disposed) or let go.
func (h *heldPages) gone(session target.SessionID) {
	if session == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, t := range h.tabs {
		if t.session == session {
			delete(h.tabs, id)
		}
	}
}

// letGo lets a tab being opened load: it ends the session holding it. A held tab whose
// navigation already started is not let go that way (and a window never is: see
// attachWindow), but an opening tab has not navigated yet.
func (h *heldPages) letGo(ctx context.Context, b *chromedp.Browser, id target.ID) error {
	h.mu.Lock()
	t := h.tabLocked(id)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.tabs, id)
		h.mu.Unlock()
	}()
	select {
	case <-t.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	_, err := cdp.Call(ctx, b, target.DetachFromTarget, target.DetachFromTargetParams{SessionID: t.session})
	return err
}

// holdNewPages makes Chromium hold every page created from now on, and routes each to its
// run until ctx (the browser's) ends. The routing listens before it asks, so no page is
// missed, and on the connection's reader, in the order Chromium sent: a page's hold is
// routed before the answer to the command that created it reaches its caller, and before
// the end of the session that held it, which forgets it.
func holdNewPages(ctx context.Context, b *chromedp.Browser, h *heldPages) error {
	err := chromedp.ListenBrowser(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *target.EventAttachedToTarget:
			// A session attached on request (a run's) is reported too, never waiting.
			if ev.WaitingForDebugger {
				h.route(ev)
			}
		case *target.EventDetachedFromTarget:
			h.gone(ev.SessionID)
		}
	})
	if err != nil {
		return err
	}
	yes := true
	_, err = cdp.Call(ctx, b, target.SetAutoAttach, target.SetAutoAttachParams{
		AutoAttach: true, WaitForDebuggerOnStart: true, Flatten: &yes, Filter: target.Filter{{Type: "page"}}})
	return err
}
