package browser

import (
	"fmt"
	"strings"
	"time"
)

// Report is what one visit saw. It is filled even when the visit ends in an error, as far as
// the visit got, so a failure still shows its evidence.
type Report struct {
	// URL and Title are the page's at the end of the visit.
	URL   string
	Title string
	// Status is the HTTP status of the last main-frame document; 0 when none arrived.
	Status int
	// ServedVersion is the value of Visit.VersionHeader in the last main-frame document's
	// response, or of the element Visit.VersionSelector finds at the end of the visit: the
	// version of the service that served the page ("" when it named none).
	ServedVersion string
	// Documents are the answers of the main frame's documents, in order (redirects,
	// journey navigations, reloads), the first maxDocuments of them: what each said of
	// the server and the caches in front of it.
	Documents []Document
	// Loaded is true when every navigation reached the load event within its deadline.
	Loaded bool
	// WaitFor is the selector that proves the page rendered ("" when none was asked for)
	// and WaitForFound whether it appeared; WaitForFound is true when there was nothing to wait for.
	WaitFor      string
	WaitForFound bool

	Exceptions     []Exception
	ConsoleErrors  []ConsoleError
	FailedRequests []FailedRequest
	// Dialogs are the JavaScript dialogs the page opened (alert, confirm, prompt,
	// beforeunload), each answered as Visit.Dialogs asks.
	Dialogs []Dialog
	// Dropped counts problems not kept because a list reached its cap (a page in an error
	// loop); DroppedBy, by kind, what each list would have held past its cap.
	Dropped   int
	DroppedBy Dropped
	// Requests counts every request the page made.
	Requests int
	// Pending lists requests still open when a navigation gave up waiting for the load event.
	Pending []string

	Timings Timings

	// Steps counts the steps that completed, the first navigation included; StepsTotal
	// counts them all. FailedStep and StepError describe the step that failed, if one did.
	Steps      int
	StepsTotal int
	FailedStep string
	StepError  string

	// StoppedEarly says why the visit stopped waiting before its work was done: the
	// visit's Stop judged that the page had already failed for good. Loaded, WaitForFound,
	// Steps and Timings were then not measured to the end.
	StoppedEarly string

	// Unresponsive is how long the page's main thread had answered nothing when one of
	// its waits ran out (the load event, WaitFor, a step): a script busy in a loop. 0 when
	// it answered, or when nothing it was asked to do was left undone.
	Unresponsive time.Duration

	// Screenshot is a PNG of the viewport, taken when the visit's Evidence asked for one or
	// the visit ended in an error (when the renderer still answered).
	Screenshot []byte
	Duration   time.Duration
}

// Problems lists every exception, console error and failed request as one line each, in
// that order.
func (r *Report) Problems() []string {
	out := make([]string, 0, len(r.Exceptions)+len(r.ConsoleErrors)+len(r.FailedRequests))
	for _, e := range r.Exceptions {
		out = append(out, e.String())
	}
	for _, c := range r.ConsoleErrors {
		out = append(out, c.String())
	}
	for _, f := range r.FailedRequests {
		out = append(out, f.String())
	}
	return out
}

// Exception kinds.
const (
	KindException = "exception"
	KindRejection = "rejection"
)

// Exception is an uncaught exception or an unhandled promise rejection.
type Exception struct {
	// Source says where the exception happened when not in the page itself (its frames
	// and dedicated workers included): "service worker URL" (the worker's script) or
	// "window URL" (a window the page opened).
	Source  string
	Kind    string // KindException or KindRejection
	Message string // "TypeError: r.formatPrice is not a function", without "Uncaught"
	URL     string
	Line    int // 1-based; 0 when unknown
	Column  int // 1-based; 0 when unknown
	Stack   string
}

// Location is "url:line:col", as far as it is known.
func (e Exception) Location() string { return location(e.URL, e.Line, e.Column) }

// String is "message (url:line:col)", the form of one entry of the `errors` variable,
// after "source: " when the exception was not the page's own.
func (e Exception) String() string {
	msg := e.Message
	if e.Kind == KindRejection {
		msg = "unhandled rejection: " + msg
	}
	if loc := e.Location(); loc != "" {
		msg += " (" + loc + ")"
	}
	return withSource(e.Source, msg)
}

// withSource prefixes a problem with where it happened, when that was not the page itself.
func withSource(source, s string) string {
	if source == "" {
		return s
	}
	return source + ": " + s
}

// ConsoleError is one console.error (or failed console.assert) call.
type ConsoleError struct {
	// Source is as an Exception's.
	Source string
	Text   string
	URL    string
	Line   int // 1-based; 0 when unknown
	Column int
}

func (c ConsoleError) String() string {
	s := "console.error: " + c.Text
	if loc := location(c.URL, c.Line, c.Column); loc != "" {
		s += " (" + loc + ")"
	}
	return withSource(c.Source, s)
}

// FailedRequest is a request that failed at the network level, or a document, script,
// stylesheet, fetch or XHR answered with HTTP >= 400.
type FailedRequest struct {
	// Source is as an Exception's.
	Source string
	Method string
	URL    string
	// Type is the resource type in lower case: document, script, stylesheet, fetch, xhr, image...
	Type string
	// Status and StatusText are set for HTTP failures, Error for network failures
	// ("net::ERR_CONNECTION_REFUSED") and for a script or stylesheet the browser refused
	// although its request did not fail (refused.go): one served as text/html, or an inline
	// script the page's Content-Security-Policy blocked, which has no Method and whose URL
	// is its document's.
	Status     int
	StatusText string
	Error      string
}

func (f FailedRequest) String() string {
	what := f.Error
	if f.Status != 0 {
		what = fmt.Sprintf("%d %s", f.Status, f.StatusText)
	}
	if f.Method == "" {
		return withSource(f.Source, fmt.Sprintf("%s: %s (%s)", f.URL, strings.TrimSpace(what), f.Type))
	}
	return withSource(f.Source, fmt.Sprintf("%s %s: %s (%s)", f.Method, f.URL, strings.TrimSpace(what), f.Type))
}

// Timings of the last document, from the page's Navigation Timing and Largest Contentful
// Paint entries, relative to the start of its navigation. Zero when not measured.
type Timings struct {
	TTFB             time.Duration
	DOMContentLoaded time.Duration
	Load             time.Duration
	LCP              time.Duration
}

func location(url string, line, col int) string {
	switch {
	case url == "":
		return ""
	case line == 0:
		return url
	case col == 0:
		return fmt.Sprintf("%s:%d", url, line)
	}
	return fmt.Sprintf("%s:%d:%d", url, line, col)
}

// Dropped counts, by kind, the problems a visit saw and did not keep (past a list's cap):
// a count is the page's, whatever the cap.
type Dropped struct {
	Exceptions, ConsoleErrors, FailedRequests, Dialogs int
}
