package browser

// What a recorder's lists become in a report: the exceptions both sources saw, merged into
// one list, and the text of console and JSON values.

import (
	"encoding/json"
	"strings"

	"github.com/chromedp/cdproto/runtime"
)

// seqException is an exception with its place in the order of the recorder's events.
type seqException struct {
	Exception
	seq int
}

// mergeExceptions joins the two sources into one list in the order the exceptions happened.
// Each page-side report is paired with an unpaired CDP report of the same kind and message
// (or any message, for the opaque "Script error." of a cross-origin script); what pairs is
// one exception seen twice, what does not was seen by one source only. So an exception
// thrown n times counts n times, whichever source saw it. others (a service worker's,
// each seen once) join the list in their order.
func mergeExceptions(fromCDP, fromPage, others []seqException) []Exception {
	paired := make([]bool, len(fromCDP))
	all := append(append([]seqException(nil), fromCDP...), others...)
	for _, p := range fromPage {
		match := -1
		for i, c := range fromCDP {
			if paired[i] || c.Kind != p.Kind {
				continue
			}
			if c.Message == p.Message || isOpaque(p.Exception) {
				match = i
				break
			}
		}
		if match < 0 {
			all = append(all, p)
			continue
		}
		paired[match] = true
		c := &all[match]
		if c.URL == "" && p.URL != "" {
			c.URL, c.Line, c.Column = p.URL, p.Line, p.Column
		}
		if c.Stack == "" {
			c.Stack = p.Stack
		}
	}
	// Insertion sort by sequence: the lists are short and nearly sorted.
	for i := 1; i < len(all); i++ {
		for j := i; j > 0 && all[j].seq < all[j-1].seq; j-- {
			all[j], all[j-1] = all[j-1], all[j]
		}
	}
	out := make([]Exception, len(all))
	for i, e := range all {
		out[i] = e.Exception
	}
	return out
}

// isOpaque reports whether e is the detail-free "Script error." a browser reports to page
// code for an exception in a cross-origin script served without CORS.
func isOpaque(e Exception) bool {
	return e.Kind == KindException && e.Message == "Script error." && e.Line == 0
}

// consoleText formats console arguments roughly as DevTools shows them.
func consoleText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		if a == nil {
			continue
		}
		switch {
		case len(a.Value) > 0:
			parts = append(parts, jsonText([]byte(a.Value)))
		case a.UnserializableValue != "":
			parts = append(parts, string(a.UnserializableValue))
		case a.Description != "":
			parts = append(parts, firstLine(a.Description))
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

// jsonText shows a JSON value: strings without quotes, anything else as JSON.
func jsonText(v []byte) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}
