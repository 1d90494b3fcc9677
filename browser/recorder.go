package browser

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/inspector"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/cdproto/target"
	"github.com/vigil-monitor/vigil/internal/text"
)

// recorder collects what a tab reports. Its listen method runs on chromedp's event loop for
// the tab, from the tab's first message: it must return fast and never send a command.
type recorder struct {
	// onCrash is called once when the renderer crashes or the inspector detaches; onProblem,
	// when set, on the event loop after an event added a problem (an exception, a console
	// error, a failed request): it must return fast and send nothing. Both are set by the
	// visit that uses the tab, which may be opened before the visit exists (a spare tab), so
	// they are read and set atomically.
	onCrash   atomic.Pointer[func(reason string)]
	onProblem atomic.Pointer[func()]
	// problems counts problems recorded (kept or dropped), so listen can tell one arrived;
	// active is when the page's network was last active, in Unix nanoseconds (settle.go).
	problems, active atomic.Int64
	// answerer sends a dialog's answer (set once the tab is open); acceptDialogs is the
	// answer of the visit using the tab (dialog.go).
	answerer      atomic.Pointer[dialogAnswerer]
	acceptDialogs atomic.Bool

	mu sync.Mutex
	// Exceptions come from two sources that overlap: CDP sees what the page did not
	// preventDefault() and the injected listeners see everything in frames they run in, with
	// less detail for cross-origin scripts ("Script error."). They are merged at the end.
	fromCDP, fromPage []seqException
	seq               int
	console           []ConsoleError
	failed            []FailedRequest
	dialogs           []Dialog
	dropped           int
	// dropped by kind: a list at its cap still counts what it did not keep, so a count
	// (js_errors < 1000) is the page's, not the cap's. An exception is seen by CDP and by
	// the page's listener both: each source counts its own.
	dropExCDP, dropExPage, dropConsole, dropFailed, dropDialogs int
	requests                                                    map[network.RequestID]*request
	// early holds statuses whose responseReceivedExtraInfo came before the request's
	// requestWillBeSent: CDP does not order the two, and a warm tab answers fast enough to
	// show it.
	early map[network.RequestID]int
	// cancelled holds requests of a failing type that were cancelled before their status
	// arrived (loadingFailed before responseReceivedExtraInfo, which CDP does not order):
	// a 404 that arrives for one afterwards is a failed request.
	cancelled    map[network.RequestID]cancelledRequest
	requestCount int
	// sent numbers the requests in the order they were sent.
	sent      int
	mainFrame cdp.FrameID
	status    int
	// versionHeader names the response header in which a document says which version of
	// the service served it; version is the last main-frame document's.
	versionHeader, version string
	docResponses           int
	crashed                string
	// doc is the last main-frame document's answer; downloads counts the downloads
	// Chromium began in the main frame, lastDownload names the last one's file, and
	// downloadBegan is signalled at each (download.go).
	doc           docAnswer
	docAnswers    []Document // every main-frame document's answer, up to maxDocuments (documents.go)
	downloads     int
	lastDownload  string
	downloadBegan chan struct{}
	// sw is what the tab's service workers reported (serviceworker.go); win, the windows
	// its page opened (windows.go); pendingDialog, a dialog to answer once the answerer is
	// set (dialog.go).
	sw            swState
	win           windowState
	pendingDialog *page.HandleJavaScriptDialogParams
	// refused are the page's scripts and stylesheets that never ran or applied; servedAs,
	// how those of an unexpected type were answered; failedFiles, the addresses of the
	// scripts and stylesheets whose requests failed (refused.go).
	refused     []refusal
	servedAs    map[string]string
	failedFiles map[string]bool
}

type cancelledRequest struct {
	method, url string
	typ         network.ResourceType
}

// request is one request in flight; finished ones are forgotten, so a page that polls for
// hours holds no more than it has open.
type request struct {
	method, url string
	typ         network.ResourceType
	// sent is its number in the order of sending (recorder.sent).
	sent int
	// first is where its redirects began ("" when it was not redirected).
	first string
	// status is the HTTP status once headers arrived (0 before); reported is set once the
	// request is on the failed list, so a request is never counted twice.
	status   int
	reported bool
}

func newRecorder() *recorder {
	return &recorder{requests: map[network.RequestID]*request{}, early: map[network.RequestID]int{},
		cancelled: map[network.RequestID]cancelledRequest{}, downloadBegan: make(chan struct{}, 1),
		servedAs: map[string]string{}, failedFiles: map[string]bool{}}
}

// listen is the chromedp listener (chromedp.WithListener).
func (r *recorder) listen(ev any) {
	before := r.problems.Load()
	r.noteActivity(ev)
	r.record(ev)
	if f := r.onProblem.Load(); f != nil && r.problems.Load() != before {
		(*f)()
	}
}

func (r *recorder) record(ev any) {
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		r.cdpException(e.ExceptionDetails)
	case *runtime.EventBindingCalled:
		if e.Name != bindingName {
			return
		}
		if ex, err := decodePayload(e.Payload); err == nil {
			r.mu.Lock()
			r.seq++
			r.fromPage = appendCapped(r, r.fromPage, seqException{ex, r.seq}, &r.dropExPage)
			r.mu.Unlock()
		} else if rf, err := decodeRefusal(e.Payload); err == nil {
			r.addRefusal(rf)
		}
	case *runtime.EventConsoleAPICalled:
		if e.Type != runtime.ConsoleAPICalledTypeError && e.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		c := ConsoleError{Text: text.Ellipsis(consoleText(e.Args), maxMessage)}
		if e.StackTrace != nil && len(e.StackTrace.CallFrames) > 0 {
			f := e.StackTrace.CallFrames[0]
			c.URL, c.Line, c.Column = text.Ellipsis(f.URL, maxURL), int(f.LineNumber)+1, int(f.ColumnNumber)+1
		}
		r.mu.Lock()
		r.console = appendCapped(r, r.console, c, &r.dropConsole)
		r.mu.Unlock()
	case *network.EventRequestWillBeSent:
		r.mu.Lock()
		if e.RedirectResponse == nil {
			r.requestCount++
		}
		if e.Request != nil {
			r.sent++
			q := &request{method: e.Request.Method, url: text.Ellipsis(e.Request.URL, maxURL), sent: r.sent, typ: e.Type}
			if prev := r.requests[e.RequestID]; prev != nil && e.RedirectResponse != nil {
				q.first = cmp.Or(prev.first, prev.url)
			}
			if st, ok := r.early[e.RequestID]; ok {
				q.status = st
				delete(r.early, e.RequestID)
			}
			r.requests[e.RequestID] = q
		}
		r.mu.Unlock()
	case *network.EventResponseReceived:
		r.response(e)
	case *network.EventResponseReceivedExtraInfo:
		// The raw headers arrive even when Chromium refuses the body and sends no
		// responseReceived: a 404 stylesheet served as text/plain with nosniff is only
		// a cancelled load otherwise.
		r.mu.Lock()
		c, wasCancelled := r.cancelled[e.RequestID]
		switch q := r.requests[e.RequestID]; {
		case q != nil && q.status == 0:
			q.status = int(e.StatusCode)
		case wasCancelled:
			delete(r.cancelled, e.RequestID)
			if e.StatusCode >= 400 {
				st := int(e.StatusCode)
				f := FailedRequest{Method: c.method, URL: c.url, Type: strings.ToLower(string(c.typ)), Status: st, StatusText: http.StatusText(st)}
				r.addFailed(f)
				r.noteFailedFile(f, "")
			}
		case q == nil && len(r.early) < maxEntries:
			r.early[e.RequestID] = int(e.StatusCode)
		}
		r.mu.Unlock()
	case *network.EventLoadingFinished:
		r.mu.Lock()
		delete(r.requests, e.RequestID)
		r.mu.Unlock()
	case *network.EventLoadingFailed:
		r.loadingFailed(e)
	case *page.EventJavascriptDialogOpening:
		r.dialog(e)
	case *cdpbrowser.EventDownloadWillBegin:
		r.downloadWillBegin(e)
	case *target.EventTargetInfoChanged:
		r.windowChanged(e.TargetInfo)
	case *serviceworker.EventWorkerVersionUpdated:
		r.workerVersions(e)
	case *serviceworker.EventWorkerErrorReported:
		r.workerError(e)
	case *inspector.EventTargetCrashed:
		r.crash("the page's renderer process crashed")
	case *inspector.EventDetached:
		r.crash("the browser detached from the page (" + e.Reason + ")")
	}
}

func (r *recorder) crash(reason string) {
	r.mu.Lock()
	first := r.crashed == ""
	if first {
		r.crashed = reason
	}
	r.mu.Unlock()
	if f := r.onCrash.Load(); first && f != nil {
		(*f)(reason)
	}
}

func (r *recorder) cdpException(d *runtime.ExceptionDetails) {
	if d == nil {
		return
	}
	e := Exception{Kind: KindException, URL: text.Ellipsis(d.URL, maxURL), Line: int(d.LineNumber) + 1, Column: int(d.ColumnNumber) + 1}
	if strings.HasPrefix(d.Text, "Uncaught (in promise)") {
		e.Kind = KindRejection
	}
	msg := ""
	if x := d.Exception; x != nil {
		e.Stack = text.Ellipsis(x.Description, maxStack)
		msg = firstLine(x.Description)
		if msg == "" && len(x.Value) > 0 {
			msg = jsonText([]byte(x.Value))
		}
	}
	if msg == "" {
		msg = d.Text
	}
	e.Message = text.Ellipsis(normalizeMessage(msg), maxMessage)
	if e.URL == "" && d.StackTrace != nil && len(d.StackTrace.CallFrames) > 0 {
		f := d.StackTrace.CallFrames[0]
		e.URL, e.Line, e.Column = text.Ellipsis(f.URL, maxURL), int(f.LineNumber)+1, int(f.ColumnNumber)+1
	}
	if e.URL == "" {
		e.Line, e.Column = 0, 0
	}
	r.mu.Lock()
	r.seq++
	r.fromCDP = appendCapped(r, r.fromCDP, seqException{e, r.seq}, &r.dropExCDP)
	r.mu.Unlock()
}

// failingTypes are the resource types whose HTTP >= 400 answers count as failed requests.
// An image or a font that 404s is a cosmetic problem, and commonly third-party noise.
var failingTypes = map[network.ResourceType]bool{
	network.ResourceTypeDocument: true, network.ResourceTypeScript: true, network.ResourceTypeStylesheet: true,
	network.ResourceTypeFetch: true, network.ResourceTypeXHR: true,
}

func (r *recorder) response(e *network.EventResponseReceived) {
	if e.Response == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.requests[e.RequestID]
	if e.Type == network.ResourceTypeDocument && (e.FrameID == r.mainFrame || r.mainFrame == "") {
		r.status = int(e.Response.Status)
		r.docResponses++
		contentType := headerValue(e.Response.Headers, "Content-Type")
		if contentType == "" {
			contentType = e.Response.MimeType
		}
		r.doc = docAnswer{url: text.Ellipsis(e.Response.URL, maxURL), status: r.status, contentType: contentType,
			disposition: headerValue(e.Response.Headers, "Content-Disposition"),
			challenge:   text.Ellipsis(headerValue(e.Response.Headers, "WWW-Authenticate")+headerValue(e.Response.Headers, "Proxy-Authenticate"), maxMessage)}
		if r.versionHeader != "" {
			r.version = headerValue(e.Response.Headers, r.versionHeader)
		}
		r.noteDocument(e.Response)
		if q != nil {
			// A new page: what the one before left in flight is not its loading (Chromium
			// does not always say it dropped those).
			for id, o := range r.requests {
				if o.sent < q.sent {
					delete(r.requests, id)
				}
			}
		}
	}
	if q != nil {
		q.status = int(e.Response.Status)
	}
	r.noteServed(e.Type, e.Response)
	if e.Response.Status >= 400 && failingTypes[e.Type] {
		method, first := "GET", ""
		if q != nil {
			method, first = q.method, q.first
			q.reported = true
		}
		f := FailedRequest{Method: method, URL: text.Ellipsis(e.Response.URL, maxURL),
			Type: strings.ToLower(string(e.Type)), Status: int(e.Response.Status), StatusText: text.Ellipsis(e.Response.StatusText, 200)}
		r.addFailed(f)
		r.noteFailedFile(f, first)
	}
}

func (r *recorder) loadingFailed(e *network.EventLoadingFailed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.requests[e.RequestID]
	delete(r.requests, e.RequestID)
	if q == nil || q.reported {
		return
	}
	if e.Canceled {
		// Chromium cancels a subresource whose error answer it refuses to use (a 404
		// stylesheet or script served as text/plain with nosniff): an HTTP failure.
		// Any other cancelled request was abandoned by the page (a navigation away, an
		// aborted fetch): that is the page's choice, not a failure.
		switch {
		case q.status >= 400 && failingTypes[e.Type]:
			f := FailedRequest{Method: q.method, URL: q.url, Type: strings.ToLower(string(e.Type)), Status: q.status, StatusText: http.StatusText(q.status)}
			r.addFailed(f)
			r.noteFailedFile(f, q.first)
		case q.status == 0 && failingTypes[e.Type] && len(r.cancelled) < maxEntries:
			r.cancelled[e.RequestID] = cancelledRequest{method: q.method, url: q.url, typ: e.Type}
		}
		return
	}
	msg := e.ErrorText
	if e.BlockedReason != "" {
		msg += " (blocked: " + string(e.BlockedReason) + ")"
	}
	if e.CorsErrorStatus != nil {
		msg += " (CORS: " + string(e.CorsErrorStatus.CorsError) + ")"
	}
	f := FailedRequest{Method: q.method, URL: text.Ellipsis(q.url, maxURL), Type: strings.ToLower(string(e.Type)), Error: msg}
	r.addFailed(f)
	r.noteFailedFile(f, q.first)
}

// addFailed records a failed request once: Chromium may fetch one URL twice (the preload
// scanner and the parser) or report one failure through two events, and a page with one
// missing stylesheet has one problem, not two. r.mu must be held.
func (r *recorder) addFailed(f FailedRequest) {
	same := func(g FailedRequest) bool {
		return g.Method == f.Method && g.URL == f.URL && g.Type == f.Type && g.Status == f.Status && g.Error == f.Error
	}
	if slices.ContainsFunc(r.failed, same) {
		return
	}
	r.failed = appendCapped(r, r.failed, f, &r.dropFailed)
}

// appendCapped appends unless the list is full, counting in *dropped what it does not
// keep; r.mu must be held.
func appendCapped[T any](r *recorder, list []T, v T, dropped *int) []T {
	r.problems.Add(1)
	if len(list) >= maxEntries {
		r.dropped++
		*dropped++
		return list
	}
	return append(list, v)
}

// setMainFrame tells the recorder which frame's documents set the status.
func (r *recorder) setMainFrame(id cdp.FrameID) {
	r.mu.Lock()
	r.mainFrame = id
	r.mu.Unlock()
}

// documents returns how many main-frame document responses arrived so far.
func (r *recorder) documents() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.docResponses
}

// docStatus is the status of the last main-frame document.
func (r *recorder) docStatus() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// pending lists up to n requests that have not finished.
func (r *recorder) pending(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, q := range r.requests {
		out = append(out, q.method+" "+q.url)
	}
	sort.Strings(out)
	if len(out) > n {
		out = append(out[:n], fmt.Sprintf("... and %d more", len(out)-n))
	}
	return out
}

func (r *recorder) crashReason() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.crashed
}

// fill copies what was recorded into rep.
func (r *recorder) fill(rep *Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep.Exceptions = mergeExceptions(r.fromCDP, r.fromPage, r.workerExceptions())
	rep.ConsoleErrors = append([]ConsoleError(nil), r.console...)
	rep.FailedRequests = append(append([]FailedRequest(nil), r.failed...), r.refusedFiles()...)
	rep.Dialogs = append([]Dialog(nil), r.dialogs...)
	rep.Dropped = r.dropped
	// Each source sees every throw (most often): the one that saw more is the page's count.
	thrown := max(len(r.fromCDP)+r.dropExCDP, len(r.fromPage)+r.dropExPage)
	page := len(rep.Exceptions) - len(r.sw.reports)
	rep.DroppedBy = Dropped{Exceptions: max(thrown-page, 0) + r.sw.dropped,
		ConsoleErrors: r.dropConsole, FailedRequests: r.dropFailed, Dialogs: r.dropDialogs}
	rep.Requests = r.requestCount
	rep.Status = r.status
	rep.ServedVersion = r.version
	rep.Documents = append([]Document(nil), r.docAnswers...)
	r.fillWindows(rep)
}
