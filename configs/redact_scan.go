package configs

import (
	"encoding/base64"
	"net/url"
	"strings"
)

// The rules that mask credentials by their place. They are hand-written scanners rather
// than regular expressions: they run over every line of every result, and Go's regexp
// costs tens of milliseconds per 256 KiB where these cost well under one.

// maskPlaces masks credentials by their place in s; found, when set, receives each value
// it masks.
func maskPlaces(s string, found func(string)) string {
	// A name, a number or a token alone (most keys, and many values) has no place a
	// credential sits in: every rule needs a byte that is not a name byte (a colon, an
	// equals sign, a space; TestNameBytesHaveNoPlaces). The scan ends at the first such byte.
	if onlyNameBytes(s) {
		return s
	}
	return maskByRule(s, found)
}

// maskByRule applies every rule of maskPlaces to s.
func maskByRule(s string, found func(string)) string {
	if strings.Contains(s, "://") {
		s = maskUserinfo(s, found)
	}
	if strings.IndexByte(s, '=') >= 0 {
		s = maskPairs(s, found)
	}
	if strings.IndexByte(s, ':') >= 0 {
		if strings.IndexByte(s, '"') >= 0 {
			s = maskJSONFields(s, found)
		}
		s = maskHeaderLines(s)
	}
	if strings.Contains(s, "earer") || strings.Contains(s, "asic") || strings.Contains(s, "EARER") || strings.Contains(s, "ASIC") {
		s = maskSchemes(s)
	}
	return s
}

// splice builds a string from s with some spans masked, left to right.
type splice struct {
	b    strings.Builder
	last int
	done bool
}

func (sp *splice) mask(s string, from, to int) {
	sp.b.WriteString(s[sp.last:from])
	sp.b.WriteString(Masked)
	sp.last, sp.done = to, true
}

func (sp *splice) result(s string) string {
	if !sp.done {
		return s
	}
	sp.b.WriteString(s[sp.last:])
	return sp.b.String()
}

func isNameByte(c byte) bool { return nameBytes[c] }

var nameBytes = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
	}
	return t
}()

func onlyNameBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		if !nameBytes[s[i]] {
			return false
		}
	}
	return true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// maskUserinfo masks the password of scheme://user:password@ and a token used as the user
// name (scheme://TOKEN@host).
func maskUserinfo(s string, found func(string)) string {
	var sp splice
	for i := 0; ; {
		k := strings.Index(s[i:], "://")
		if k < 0 {
			break
		}
		start := i + k + 3
		end := start
		for end < len(s) && !isSpace(s[end]) && strings.IndexByte("/?#\"'<>", s[end]) < 0 {
			end++
		}
		i = end
		at := strings.LastIndexByte(s[start:end], '@')
		if at <= 0 {
			continue
		}
		info := s[start : start+at]
		user, pass, hasPass := strings.Cut(info, ":")
		switch {
		case info == Masked || (hasPass && pass == Masked):
		case hasPass && pass != "":
			if found != nil {
				found(pass)
				u, uerr := url.PathUnescape(user)
				p, perr := url.PathUnescape(pass)
				if uerr == nil && perr == nil {
					found(p)
					found(base64.StdEncoding.EncodeToString([]byte(u + ":" + p)))
				}
			}
			sp.mask(s, start+len(user)+1, start+at)
		case !hasPass:
			if found != nil {
				found(info)
			}
			sp.mask(s, start, start+at)
		}
	}
	return sp.result(s)
}

// maskPairs masks the value of name=value in query strings, form bodies and log lines.
func maskPairs(s string, found func(string)) string {
	var sp splice
	for i := 0; i < len(s); {
		k := strings.IndexByte(s[i:], '=')
		if k < 0 {
			break
		}
		eq := i + k
		i = eq + 1
		start := eq
		for start > 0 && eq-start < 64 && (isNameByte(s[start-1]) || s[start-1] == '[' || s[start-1] == ']') {
			start--
		}
		if start == eq || (start > 0 && !isSpace(s[start-1]) && strings.IndexByte("?&;,\"'([{", s[start-1]) < 0) {
			continue
		}
		end := eq + 1
		for end < len(s) && !isSpace(s[end]) && strings.IndexByte("&;,\"'<>)}]#", s[end]) < 0 {
			end++
		}
		val := s[eq+1 : end]
		i = end
		if val == "" || val == Masked || val[0] == '=' || !SensitiveName(s[start:eq]) {
			continue // "==" is an operator, not a value
		}
		if found != nil {
			found(val)
			if u, err := url.QueryUnescape(val); err == nil {
				found(u)
			}
		}
		sp.mask(s, eq+1, end)
	}
	return sp.result(s)
}

// maskJSONFields masks the string values of JSON fields whose names hold credentials,
// also in JSON quoted inside a JSON string ({\"password\":\"...\"}) however deep.
func maskJSONFields(s string, found func(string)) string {
	var sp splice
	for i := 0; i < len(s); {
		k := strings.IndexByte(s[i:], ':')
		if k < 0 {
			break
		}
		colon := i + k
		i = colon + 1
		// Back over spaces to the key's closing quote, then over the key to its opening one.
		q := colon - 1
		for q >= 0 && (s[q] == ' ' || s[q] == '\t') {
			q--
		}
		if q < 0 || s[q] != '"' {
			continue
		}
		keyEnd := q
		for keyEnd > 0 && s[keyEnd-1] == '\\' {
			keyEnd--
		}
		keyStart := keyEnd
		for keyStart > 0 && keyEnd-keyStart <= 64 && isNameByte(s[keyStart-1]) {
			keyStart--
		}
		if keyStart == keyEnd || keyStart == 0 || (s[keyStart-1] != '"') {
			continue
		}
		// Forward over spaces and backslashes to the value's opening quote.
		v := colon + 1
		for v < len(s) && (s[v] == ' ' || s[v] == '\t') {
			v++
		}
		depth := 0
		for v < len(s) && s[v] == '\\' {
			v++
			depth++
		}
		if v >= len(s) || s[v] != '"' || !SensitiveName(s[keyStart:keyEnd]) {
			continue
		}
		start := v + 1
		end := jsonValueEnd(s, start, depth)
		i = end
		val := s[start:end]
		if val == "" || val == Masked {
			continue
		}
		if found != nil {
			found(val)
		}
		sp.mask(s, start, end)
	}
	return sp.result(s)
}

// jsonValueEnd finds where a JSON string value that starts at i ends: at the first quote
// preceded by exactly depth backslashes (a quote inside the value has more), or at the end
// of s when the text was cut.
func jsonValueEnd(s string, i, depth int) int {
	for j := i; j < len(s); j++ {
		if s[j] != '"' {
			continue
		}
		k := j
		for k > i && s[k-1] == '\\' {
			k--
		}
		if n := j - k; (depth == 0 && n%2 == 0) || (depth > 0 && n == depth) {
			return k
		}
	}
	return len(s)
}

// maskHeaderLines masks "Name: value" at the start of a line when Name holds a credential
// (a header dump in a body, a transcript line).
func maskHeaderLines(s string) string {
	var sp splice
	for i := 0; i < len(s); {
		eol := strings.IndexByte(s[i:], '\n')
		line := s[i:]
		if eol >= 0 {
			line = s[i : i+eol]
		}
		j := 0
		for j < len(line) && (line[j] == ' ' || line[j] == '\t' || line[j] == '<' || line[j] == '>' || line[j] == '!') {
			j++
		}
		n := j
		for n < len(line) && n-j < 64 && (isNameByte(line[n]) && line[n] != '.' && line[n] != '_') {
			n++
		}
		if n > j && n < len(line) && line[n] == ':' && SensitiveName(line[j:n]) {
			v := n + 1
			for v < len(line) && (line[v] == ' ' || line[v] == '\t') {
				v++
			}
			end := len(strings.TrimRight(line, "\r"))
			if v < end && line[v:end] != Masked {
				sp.mask(s, i+v, i+end)
			}
		}
		if eol < 0 {
			break
		}
		i += eol + 1
	}
	return sp.result(s)
}

// maskSchemes masks the token after "Bearer " or "Basic " (any case).
func maskSchemes(s string) string {
	for _, word := range []string{"bearer", "basic"} {
		var sp splice
		for i := 0; i+len(word) <= len(s); {
			at := indexFold(s, word, i)
			if at < 0 {
				break
			}
			i = at + len(word)
			if at > 0 && isNameByte(s[at-1]) {
				continue
			}
			v := i
			for v < len(s) && (s[v] == ' ' || s[v] == '\t') {
				v++
			}
			if v == i {
				continue
			}
			end := v
			for end < len(s) && (isNameByte(s[end]) || strings.IndexByte("~+/=", s[end]) >= 0) {
				end++
			}
			if tok := s[v:end]; len(tok) < 8 || !looksLikeToken(tok) {
				continue // "basic authentication" is English, not a credential
			}
			sp.mask(s, v, end)
			i = end
		}
		s = sp.result(s)
	}
	return s
}

// indexFold is the index of word (lower-case ASCII) in s from i on, in any case.
func indexFold(s, word string, i int) int {
	for ; i+len(word) <= len(s); i++ {
		c := s[i]
		if c != word[0] && c != word[0]-('a'-'A') {
			continue
		}
		if strings.EqualFold(s[i:i+len(word)], word) {
			return i
		}
	}
	return -1
}

// looksLikeToken: a digit or a punctuation mark of base64 and JWTs, or a long word.
func looksLikeToken(s string) bool {
	return len(s) >= 20 || strings.ContainsAny(s, "0123456789._~+/=-")
}
