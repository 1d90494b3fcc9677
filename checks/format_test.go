package checks

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestFormatValueKeepsCharactersWhole: a long value quoted in a reason is cut, never in the
// middle of a character (a quoted half character prints as \xc5 escapes).
func TestFormatValueKeepsCharactersWhole(t *testing.T) {
	long := strings.Repeat("ž", 100) // two bytes each: byte 80 starts one, 81 would split it
	for _, v := range []any{"a" + long, long, map[string]any{"name": "a" + long}} {
		got := formatValue(v)
		if !utf8.ValidString(got) || strings.Contains(got, `\x`) {
			t.Errorf("formatValue cut a character in half: %s", got)
		}
		if !strings.HasSuffix(got, "...") {
			t.Errorf("formatValue did not mark the cut: %s", got)
		}
	}
}
