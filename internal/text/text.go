// Package text shortens text that people read (a reason, a transcript line, an excerpt of
// a body) without breaking it: a cut falls on a rune boundary, so what is kept is valid
// UTF-8 whenever the whole was, and a clipped string says that it was cut and from how long.
// Inert makes such text safe to print to a terminal or a CI log.
package text

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clip shortens s to at most n bytes, cut on a rune boundary, and marks the cut with the
// length s had: "connection res...(1234 bytes)". A string of n bytes or fewer comes back
// as it is.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:CutAt(s, n)] + "...(" + strconv.Itoa(len(s)) + " bytes)"
}

// CutAt is the largest rune boundary of s at or before n: s[:CutAt(s, n)] is the longest
// prefix of s of at most n bytes that does not split a character (all of s when n is past
// its end, nothing when n is below zero).
func CutAt(s string, n int) int {
	cut := min(max(n, 0), len(s))
	for cut > 0 && cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return cut
}

// Ellipsis shortens s to at most n bytes, "…" included, cut on a rune boundary: for
// places with no room to say how long s was (a table cell, a Slack field, a log line).
func Ellipsis(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:CutAt(s, n-len("…"))] + "…"
}

// Inert returns s with what a terminal or a CI log would act on written out as Go escapes
// (`\x1b`, `\r`, `\u202e`): control characters, bidirectional controls and the Unicode
// line and paragraph separators. A tab is kept. Invalid UTF-8 becomes U+FFFD. Text a
// service under test chose (an answer's body, a header) goes through it before it is
// printed, so that it can neither clear the screen nor forge a line of the log.
func Inert(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || inertEscaped(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if inertEscaped(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func inertEscaped(r rune) bool {
	return r != '\t' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029')
}
