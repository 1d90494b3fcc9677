package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"hello", 5, "hello"},
		{"hello", 10, "hello"},
		{"hello", 3, "hel...(5 bytes)"},
		{"", 0, ""},
		{"hello", 0, "...(5 bytes)"},
		{"hello", -1, "...(5 bytes)"},
		// é is two bytes, € three, 🚀 four: a cut inside one keeps none of its bytes.
		{"héllo", 2, "h...(6 bytes)"},
		{"héllo", 3, "hé...(6 bytes)"},
		{"a€b", 2, "a...(5 bytes)"},
		{"a€b", 3, "a...(5 bytes)"},
		{"a€b", 4, "a€...(5 bytes)"},
		{"🚀🚀", 7, "🚀...(8 bytes)"},
		{"žluťoučký kůň", 6, "žluť...(19 bytes)"},
	} {
		if got := Clip(c.s, c.n); got != c.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}

// TestCutAtNeverSplitsARune cuts multi-byte text at every length: the kept part is valid
// UTF-8, no longer than asked, and as long as it can be.
func TestCutAtNeverSplitsARune(t *testing.T) {
	s := "aé€🚀 ž日本語\u0301x" // one to four bytes a character, and a combining mark
	for n := -2; n <= len(s)+2; n++ {
		cut := CutAt(s, n)
		kept := s[:cut]
		if !utf8.ValidString(kept) {
			t.Fatalf("CutAt(s, %d) = %d splits a character: %q", n, cut, kept)
		}
		if cut > max(n, 0) {
			t.Fatalf("CutAt(s, %d) = %d keeps more than asked", n, cut)
		}
		if _, size := utf8.DecodeRuneInString(s[cut:]); cut < len(s) && cut+size <= n {
			t.Fatalf("CutAt(s, %d) = %d stops short: the next character ends at %d", n, cut, cut+size)
		}
		if clipped := Clip(s, n); n < len(s) && !strings.HasPrefix(clipped, kept+"...(") {
			t.Fatalf("Clip(s, %d) = %q does not keep %q", n, clipped, kept)
		}
	}
}

func TestEllipsis(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijk", 10, "abcdefg…"},
		{"ééééé", 6, "é…"}, // é is 2 bytes, … is 3: never half a character
		{"abc", 2, "…"},
	} {
		got := Ellipsis(c.in, c.n)
		if got != c.want || (len(c.in) > c.n && len(got) > max(c.n, len("…"))) || !utf8.ValidString(got) {
			t.Errorf("Ellipsis(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestInert(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain text, é and 日本", "plain text, é and 日本"},
		{"tab\tkept", "tab\tkept"},
		{"\x1b[2J\x1b[31mred", `\x1b[2J\x1b[31mred`},
		{"line\n::error::forged", `line\n::error::forged`},
		{"over\rwrite", `over\rwrite`},
		{"nul\x00bel\x07del\x7f", `nul\x00bel\adel\x7f`},
		{"c1\u0085\u009b", `c1\u0085\u009b`},
		{"bidi \u202eevil\u2066", `bidi \u202eevil\u2066`},
		{"sep\u2028\u2029", `sep\u2028\u2029`},
		{"bad \xff utf8", "bad \uFFFD utf8"},
	} {
		if got := Inert(c.in); got != c.want {
			t.Errorf("Inert(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// Whatever goes in, what comes out is valid UTF-8 with nothing a terminal acts on but a
// tab, and text with nothing to escape comes back as it was.
func FuzzInert(f *testing.F) {
	for _, s := range []string{"", "ok", "\x1b]0;title\x07", "a\r\nb", "\u202e", "\xff\xfe", "\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Inert(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Inert(%q) = %q: not valid UTF-8", s, got)
		}
		for _, r := range got {
			if inertEscaped(r) {
				t.Fatalf("Inert(%q) = %q keeps %U", s, got, r)
			}
		}
		if utf8.ValidString(s) && !strings.ContainsFunc(s, inertEscaped) && got != s {
			t.Fatalf("Inert(%q) = %q: changed clean text", s, got)
		}
	})
}
