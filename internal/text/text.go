// Package text shortens text that people read (a reason, a transcript line, an excerpt of
// a body) without breaking it: a cut falls on a rune boundary, so what is kept is valid
// UTF-8 whenever the whole was, and a clipped string says that it was cut and from how long.
package text

import (
	"strconv"
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
