package browser

// A service worker's problems. A deploy that ships a broken sw.js (a syntax error, an
// exception in its install or fetch handler) breaks caching and offline use, and with a
// fetch handler every later page load of a returning visitor; none of it reaches the page's
// own listeners. The page's session enables the ServiceWorker domain when the tab opens,
// before any page loads, and Chromium then reports every error of the service workers of
// the tab's browser context (a run's own, fresh one) from the browser process: there is no
// attach to race with the worker's first script, and nothing of one run's workers reaches
// the next.

import (
	"strings"

	"github.com/chromedp/cdproto/serviceworker"
	"github.com/vigil-monitor/vigil/internal/text"
)

// swState is what the recorder keeps of the tab's service workers.
type swState struct {
	// scripts maps a worker version to its script URL (workerVersionUpdated), so a report
	// without a source (a failed installation) still names its worker.
	scripts map[string]string
	// reports are the workers' exceptions in the order they came.
	reports []swReport
	dropped int
}

// swReport is one service worker exception. Chromium reports an uncaught exception twice:
// as an exception (with a column) and as the console message that goes with it (column -1).
// console marks the console one; paired, a report whose twin came.
type swReport struct {
	seqException
	console, paired bool
}

// workerVersions remembers the script URL of each worker version.
func (r *recorder) workerVersions(e *serviceworker.EventWorkerVersionUpdated) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sw.scripts == nil {
		r.sw.scripts = map[string]string{}
	}
	for _, v := range e.Versions {
		if v != nil && v.ScriptURL != "" && len(r.sw.scripts) < maxEntries {
			r.sw.scripts[v.VersionID] = text.Ellipsis(v.ScriptURL, maxURL)
		}
	}
}

// workerError records one error a service worker reported: an uncaught exception or
// rejection (its script's evaluation included), a failed installation, or a console error.
func (r *recorder) workerError(e *serviceworker.EventWorkerErrorReported) {
	m := e.ErrorMessage
	if m == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	script := r.sw.scripts[m.VersionID]
	if script == "" {
		script = text.Ellipsis(m.SourceURL, maxURL)
	}
	source := "service worker"
	if script != "" {
		source += " " + script
	}
	msg := strings.TrimSpace(m.ErrorMessage)
	ex := Exception{Kind: KindException, Source: source, URL: text.Ellipsis(m.SourceURL, maxURL)}
	if ex.URL != "" && m.LineNumber > 0 {
		ex.Line = int(m.LineNumber)
		if m.ColumnNumber > 0 {
			ex.Column = int(m.ColumnNumber)
		}
	}
	// Chromium sends console messages of the error level with column -1, exceptions with
	// their column; a failed registration or installation comes with no source at all.
	consoleMsg := m.ColumnNumber < 0 && m.SourceURL != ""
	switch {
	case strings.HasPrefix(msg, "Uncaught (in promise)"):
		ex.Kind = KindRejection
		consoleMsg = false
	case consoleMsg && !strings.HasPrefix(msg, "Uncaught "):
		c := ConsoleError{Source: source, Text: text.Ellipsis(msg, maxMessage), URL: ex.URL, Line: ex.Line}
		r.console = appendCapped(r, r.console, c, &r.dropConsole)
		return
	}
	ex.Message = text.Ellipsis(normalizeMessage(msg), maxMessage)
	// One exception, reported twice, counts once, whichever report came first.
	for i := range r.sw.reports {
		o := &r.sw.reports[i]
		if o.paired || o.console == consoleMsg || o.Kind != ex.Kind || o.Message != ex.Message || o.URL != ex.URL || o.Line != ex.Line || o.Source != ex.Source {
			continue
		}
		o.paired = true
		if o.console {
			o.Column = ex.Column
		}
		return
	}
	r.seq++
	r.sw.reports = appendCapped(r, r.sw.reports, swReport{seqException: seqException{ex, r.seq}, console: consoleMsg}, &r.sw.dropped)
}

// workerExceptions are the service workers' exceptions, with their order numbers.
// r.mu must be held.
func (r *recorder) workerExceptions() []seqException {
	out := make([]seqException, len(r.sw.reports))
	for i, w := range r.sw.reports {
		out[i] = w.seqException
	}
	return out
}
