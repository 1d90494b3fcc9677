package store

// A JSON encoder for what runs carry (variables, reasons, transcripts): strings, numbers,
// booleans, nil, and maps and lists of them. It writes exactly what encoding/json writes
// (sorted keys, the same escapes, the same number forms; a test and a fuzz target hold it
// to that) without reflection: encoding every stored run's variables through reflection was
// a tenth of an agent's CPU at a thousand checks a second. Anything else falls back to
// encoding/json.

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// jsonBufs are mustJSON's buffers, reused: the string it returns is a copy.
var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// mustJSON is v as JSON; "null" when encoding/json would refuse it (a NaN, say).
func mustJSON(v any) string {
	buf := jsonBufs.Get().(*[]byte)
	b, ok := appendJSON((*buf)[:0], v)
	var out string
	if ok {
		out = string(b)
	}
	if cap(b) <= 64<<10 { // a transcript's few hundred KiB are not kept for the next row
		*buf = b
		jsonBufs.Put(buf)
	}
	if ok {
		return out
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "null"
	}
	return string(b)
}

// appendJSON appends v to b; ok is false when v holds a type or value it does not handle.
func appendJSON(b []byte, v any) (_ []byte, ok bool) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), true
	case string:
		return appendJSONString(b, x), true
	case bool:
		return strconv.AppendBool(b, x), true
	case int:
		return strconv.AppendInt(b, int64(x), 10), true
	case int64:
		return strconv.AppendInt(b, x, 10), true
	case float64:
		return appendJSONFloat(b, x)
	case []string:
		return appendJSONList(b, x, appendJSONStringOK)
	case []any:
		return appendJSONList(b, x, appendJSON)
	case map[string]string:
		return appendJSONMap(b, x, appendJSONStringOK)
	case map[string]any:
		return appendJSONMap(b, x, appendJSON)
	}
	return b, false
}

func appendJSONStringOK(b []byte, s string) ([]byte, bool) { return appendJSONString(b, s), true }

// appendJSONList writes a list (null when nil), each element by value.
func appendJSONList[V any](b []byte, list []V, value func([]byte, V) ([]byte, bool)) (_ []byte, ok bool) {
	if list == nil {
		return append(b, "null"...), true
	}
	b = append(b, '[')
	for i, e := range list {
		if i > 0 {
			b = append(b, ',')
		}
		if b, ok = value(b, e); !ok {
			return b, false
		}
	}
	return append(b, ']'), true
}

// appendJSONMap writes a map (null when nil) with its keys sorted, each value by value.
func appendJSONMap[V any](b []byte, m map[string]V, value func([]byte, V) ([]byte, bool)) (_ []byte, ok bool) {
	if m == nil {
		return append(b, "null"...), true
	}
	b = append(b, '{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendJSONString(b, k), ':')
		if b, ok = value(b, m[k]); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// appendJSONFloat writes f as ECMAScript writes a number, as encoding/json does: plain
// decimals between 1e-6 and 1e21, exponents outside, with no leading zero in a negative
// exponent. NaN and infinities are not JSON.
func appendJSONFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, false
	}
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' { // e-07 is e-7
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

// jsonEscapes says how each ASCII byte is written inside a string: 0 as itself, 'u' as
// \u00XX, any other byte after a backslash. encoding/json escapes <, > and & as well, so
// stored JSON can be dropped into HTML.
var jsonEscapes = func() (t [utf8.RuneSelf]byte) {
	for c := range 0x20 {
		t[c] = 'u'
	}
	t['\b'], t['\f'], t['\n'], t['\r'], t['\t'] = 'b', 'f', 'n', 'r', 't'
	t['"'], t['\\'] = '"', '\\'
	t['<'], t['>'], t['&'] = 'u', 'u', 'u'
	return t
}()

func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	from := 0 // s[from:i] is still to be copied as it is
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			esc := jsonEscapes[c]
			if esc == 0 {
				i++
				continue
			}
			b = append(b, s[from:i]...)
			if esc == 'u' {
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			} else {
				b = append(b, '\\', esc)
			}
			i++
			from = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1: // not UTF-8
			b = append(append(b, s[from:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029': // valid JSON, but not inside JavaScript
			b = append(append(b, s[from:i]...), '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		from = i
	}
	return append(append(b, s[from:]...), '"')
}
