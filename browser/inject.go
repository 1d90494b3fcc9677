package browser

import (
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"

	"github.com/vigil-monitor/vigil/internal/text"
)

// bindingName is the page function (Runtime.addBinding) the injected script reports through.
// The script keeps its own reference and deletes the global, so page code cannot call it.
const bindingName = "__vigilReport"

// injectedScript runs in every frame before any of the page's scripts
// (Page.addScriptToEvaluateOnNewDocument). Its capture-phase listeners on window are the
// first of all listeners, so they see every uncaught exception and unhandled rejection even
// when an error-reporting SDK later calls preventDefault() on the event, which hides it from
// CDP's Runtime.exceptionThrown. Resource load failures also fire "error" events on window
// in the capture phase; they are plain Events, not ErrorEvents. Those of a <script src> or a
// stylesheet <link> are reported ("load"): the network events see most of them, but not a
// file the browser received and refused (a module script or a nosniff script served as
// text/html), which never ran (refused.go). An inline
// script the page's Content-Security-Policy blocked never ran either, and makes no request:
// its enforced violation is reported ("csp").
const injectedScript = `(() => {
  const send = globalThis.` + bindingName + `;
  if (typeof send !== 'function') return;
  try { delete globalThis.` + bindingName + `; } catch (e) {}
  const str = (v) => { try { return String(v); } catch (e) { return '[unprintable]'; } };
  const post = (o) => { try { send(JSON.stringify(o)); } catch (e) {} };
  const name = (v) => {
    if (v instanceof Error) return str(v);
    if (v !== null && typeof v === 'object') return (v.constructor && v.constructor.name) || 'Object';
    return str(v);
  };
  const Script = globalThis.HTMLScriptElement, Link = globalThis.HTMLLinkElement;
  addEventListener('error', (e) => {
    if (!(e instanceof ErrorEvent)) {
      const el = e.target;
      if (Script && el instanceof Script && el.src) post({t: 'load', k: 'script', u: str(el.src)});
      else if (Link && el instanceof Link && el.href && /(^|\s)stylesheet(\s|$)/i.test(el.rel)) post({t: 'load', k: 'stylesheet', u: str(el.href)});
      return;
    }
    const err = e.error;
    post({t: 'error', m: str(e.message), u: str(e.filename || ''), l: e.lineno | 0, c: e.colno | 0,
          s: err && err.stack ? str(err.stack) : ''});
  }, true);
  addEventListener('securitypolicyviolation', (e) => {
    if (e.disposition !== 'enforce' || e.blockedURI !== 'inline' || !/^script-src/.test(e.effectiveDirective)) return;
    post({t: 'csp', m: str(e.effectiveDirective), s: str(e.originalPolicy), u: str(e.sourceFile || location.href),
          l: e.lineNumber | 0, c: e.columnNumber | 0});
  }, true);
  addEventListener('unhandledrejection', (e) => {
    const r = e.reason;
    post({t: 'rejection', m: name(r), s: r && r.stack ? str(r.stack) : ''});
  }, true);
})();`

// timingsScript reads the last document's Navigation Timing entry and its Largest
// Contentful Paint, in milliseconds since the navigation started. LCP entries are only
// delivered to an observer (buffered), and only once a frame was painted, so without one
// it waits for 50ms and two frames, at most 200ms: a page that paints nothing has no LCP.
const timingsScript = `new Promise((resolve) => {
  const n = performance.getEntriesByType('navigation')[0] || {};
  const out = {ttfb: n.responseStart || 0, dcl: n.domContentLoadedEventEnd || 0,
               load: n.loadEventEnd || n.loadEventStart || 0, lcp: 0};
  let done = false;
  const finish = () => { if (!done) { done = true; resolve(out); } };
  try {
    new PerformanceObserver((list) => {
      const es = list.getEntries();
      if (es.length) out.lcp = es[es.length - 1].startTime;
      finish();
    }).observe({type: 'largest-contentful-paint', buffered: true});
  } catch (e) {}
  let painted = false, waited = false;
  requestAnimationFrame(() => requestAnimationFrame(() => { painted = true; if (waited) finish(); }));
  setTimeout(() => { waited = true; if (painted) finish(); }, 50);
  setTimeout(finish, 200);
})`

// Caps on what one report keeps from page-controlled text.
const (
	maxPayload = 256 << 10
	maxMessage = 2 << 10
	maxStack   = 8 << 10
	maxURL     = 2 << 10
	maxEntries = 200
)

// pagePayload is what the injected script sends.
type pagePayload struct {
	T string `json:"t"`
	M string `json:"m"`
	U string `json:"u"`
	L int    `json:"l"`
	C int    `json:"c"`
	S string `json:"s"`
}

var errBadPayload = errors.New("not a vigil report")

// decodePayload turns one binding call's payload into an exception. The payload comes from
// the page, which can call the binding with anything before the injected script hides it,
// so everything is bounded and checked.
func decodePayload(payload string) (Exception, error) {
	if len(payload) > maxPayload {
		return Exception{}, errBadPayload
	}
	var p pagePayload
	if err := json.Unmarshal([]byte(payload), &p); err != nil {
		return Exception{}, errBadPayload
	}
	e := Exception{URL: text.Ellipsis(p.U, maxURL), Stack: text.Ellipsis(p.S, maxStack)}
	switch p.T {
	case "error":
		e.Kind = KindException
	case "rejection":
		e.Kind = KindRejection
	default:
		return Exception{}, errBadPayload
	}
	e.Message = text.Ellipsis(normalizeMessage(p.M), maxMessage)
	if p.L > 0 {
		e.Line = p.L
	}
	if p.C > 0 {
		e.Column = p.C
	}
	if e.URL == "" {
		// A rejection carries no location; the top frame of its stack has it.
		e.URL, e.Line, e.Column = stackLocation(e.Stack)
	}
	return e, nil
}

// normalizeMessage drops the "Uncaught " prefix an ErrorEvent's message carries, so both
// sources describe one exception with the same words.
func normalizeMessage(m string) string {
	m = strings.TrimSpace(m)
	for _, p := range []string{"Uncaught (in promise) ", "Uncaught "} {
		if strings.HasPrefix(m, p) {
			return strings.TrimSpace(m[len(p):])
		}
	}
	return m
}

// stackFrame matches a V8 stack frame: "at fn (url:line:col)" or "at url:line:col".
var stackFrame = regexp.MustCompile(`^\s*at (?:.*? \()?(.+?):(\d+):(\d+)\)?\s*$`)

// stackLocation returns the location of the first frame of a V8 stack string.
func stackLocation(stack string) (url string, line, col int) {
	for l := range strings.SplitSeq(stack, "\n") {
		m := stackFrame.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		line, err1 := strconv.Atoi(m[2])
		col, err2 := strconv.Atoi(m[3])
		if err1 != nil || err2 != nil {
			return "", 0, 0
		}
		return text.Ellipsis(m[1], maxURL), line, col
	}
	return "", 0, 0
}

// firstLine is s up to its first newline.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
