package configs

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestNameBytesHaveNoPlaces holds what maskPlaces's shortcut rests on: a string of name
// bytes alone (letters, digits, '_', '.', '-') is left as it is by every rule, whatever
// words it holds (bearer, basic, token, password...).
func TestNameBytesHaveNoPlaces(t *testing.T) {
	words := []string{"Bearer", "bearer", "BASIC", "basic", "token", "access_token", "password", "passwd", "secret",
		"X-Api-Key", "api_key", "Authorization", "Set-Cookie", "sig", "https", "http", "user", "eyJhbGciOiJIUzI1NiJ9",
		"dXNlcjpwYXNzd29yZA", "abcdefghijklmnop", "0123456789", "_", ".", "-", "a"}
	cases := append([]string{}, words...)
	rng := rand.New(rand.NewPCG(1, 2))
	nameBytes := "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
	for range 20000 {
		var b strings.Builder
		for n := rng.IntN(6) + 1; n > 0; n-- {
			if rng.IntN(2) == 0 {
				b.WriteString(words[rng.IntN(len(words))])
			}
			for m := rng.IntN(12); m > 0; m-- {
				b.WriteByte(nameBytes[rng.IntN(len(nameBytes))])
			}
		}
		cases = append(cases, b.String())
	}
	for _, s := range cases {
		if !onlyNameBytes(s) {
			t.Fatalf("%q: the test made a string with another byte", s)
		}
		found := ""
		if out := maskByRule(s, func(v string) { found = v }); out != s || found != "" {
			t.Fatalf("%q: a rule masked %q into %q: maskPlaces's shortcut would leave it", s, found, out)
		}
	}
	for _, s := range []string{"Bearer abcdefghijklmnop", "token=abcdefgh", "http://u:pw@h", `{"password":"x"}`, "Authorization: x"} {
		if onlyNameBytes(s) {
			t.Errorf("%q counted as name bytes alone", s)
		}
	}
}
