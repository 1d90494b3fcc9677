package browser

// JavaScript dialogs. A page that calls alert(), confirm() or prompt() in a headless
// browser driven over CDP stops dead until someone answers: no load event, no later
// script, no screenshot. A deploy that greets every visitor with alert("Session expired")
// would otherwise show as a page that "never finished loading". So every dialog is
// recorded (its kind, message and frame) and answered at once, the way the visit asks:
// dismissed by default (as a user closing it would, and as Playwright does), or accepted.

import (
	"context"
	"fmt"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/vigil-monitor/vigil/internal/text"
)

// DialogAnswer is how a visit answers the page's JavaScript dialogs.
type DialogAnswer int

const (
	// DismissDialogs presses Cancel: confirm() returns false, prompt() null, and a
	// beforeunload prompt keeps the page. An alert is closed either way.
	DismissDialogs DialogAnswer = iota
	// AcceptDialogs presses OK: confirm() returns true, prompt() its default text, and a
	// beforeunload prompt lets the page go.
	AcceptDialogs
)

// Dialog is one JavaScript dialog the page opened.
type Dialog struct {
	// Type is alert, confirm, prompt or beforeunload.
	Type    string
	Message string
	// URL is the address of the frame that opened it.
	URL      string
	Accepted bool
}

// String is `alert "Session expired" (https://shop.example.com/): dismissed`.
func (d Dialog) String() string {
	s := fmt.Sprintf("%s %q", d.Type, d.Message)
	if d.URL != "" {
		s += " (" + d.URL + ")"
	}
	if d.Accepted {
		return s + ": accepted"
	}
	return s + ": dismissed"
}

// dialogAnswerer is where a tab's dialog answers go. A tab may be opened before the visit
// that uses it exists (a spare tab), so the recorder holds the answerer and the visit's
// choice apart, each set atomically: the answerer once the tab is open, the choice when a
// visit takes the tab.
type dialogAnswerer struct {
	tabCtx context.Context
	target *chromedp.Target
}

// dialog records one dialog and answers it. It runs on the tab's event loop, which must not
// send a command, so the answer goes from its own goroutine; the page waits for it, so at
// most one is in flight, and it ends with the tab.
func (r *recorder) dialog(e *page.EventJavascriptDialogOpening) {
	accept := r.acceptDialogs.Load()
	d := Dialog{Type: string(e.Type), Message: text.Ellipsis(e.Message, maxMessage), URL: text.Ellipsis(e.URL, maxURL), Accepted: accept}
	params := page.HandleJavaScriptDialogParams{Accept: accept}
	if accept {
		params.PromptText = e.DefaultPrompt
	}
	r.mu.Lock()
	r.dialogs = appendCapped(r, r.dialogs, d, &r.dropDialogs)
	a := r.answerer.Load()
	if a == nil {
		// A window the page opened can show one while its session is still being set
		// up: it is answered as soon as the answerer is there.
		r.pendingDialog = &params
	}
	r.mu.Unlock()
	if a != nil {
		go func() { _, _ = cdp.Call(a.tabCtx, a.target, page.HandleJavaScriptDialog, params) }()
	}
}

// setAnswerer sets where dialog answers go, and answers a dialog that came before it.
func (r *recorder) setAnswerer(a *dialogAnswerer) {
	r.mu.Lock()
	r.answerer.Store(a)
	params := r.pendingDialog
	r.pendingDialog = nil
	r.mu.Unlock()
	if params != nil {
		go func() { _, _ = cdp.Call(a.tabCtx, a.target, page.HandleJavaScriptDialog, *params) }()
	}
}

// answerDialogs sets how the visit answers dialogs.
func (r *recorder) answerDialogs(how DialogAnswer) { r.acceptDialogs.Store(how == AcceptDialogs) }
