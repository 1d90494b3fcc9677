package configs

import (
	"fmt"
	"strings"
)

// Nearest returns the candidate closest to s by edit distance, or "" when nothing is close
// enough to be a plausible typo. A name written without its unit suffix ("p95" for
// "p95_ms", "duration" for "duration_ms") is a typo too, however short the name: when
// exactly one candidate is s plus "_suffix", that is the answer.
func Nearest(s string, candidates []string) string {
	if s != "" {
		suffixed := ""
		for _, c := range candidates {
			if strings.HasPrefix(c, s+"_") && !strings.Contains(c[len(s)+1:], "_") {
				if suffixed != "" {
					suffixed = ""
					break
				}
				suffixed = c
			}
		}
		if suffixed != "" && editDistance(s, suffixed) > nearLimit(s) {
			return suffixed
		}
	}
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistance(s, c)
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD > nearLimit(s) {
		return ""
	}
	return best
}

// nearLimit is how many edits still read as a typo of s.
func nearLimit(s string) int {
	return min(len(s)/3+1, 3)
}

// DidYouMean is the fix text for a misspelt name: `did you mean "x"?`, or a list of the
// valid names when nothing is close.
func DidYouMean(s string, candidates []string) string {
	if n := Nearest(s, candidates); n != "" {
		return fmt.Sprintf("did you mean %q?", n)
	}
	if len(candidates) == 0 {
		return ""
	}
	if len(candidates) > 12 {
		return fmt.Sprintf("valid names include %s", quoteList(candidates[:12]))
	}
	return "valid: " + quoteList(candidates)
}

func quoteList(xs []string) string {
	out := ""
	for i, x := range xs {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

// editDistance is the Levenshtein distance, with a transposition counted as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
