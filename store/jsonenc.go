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

// jsonEncoder is mustJSON's buffer and the key orders it has written, reused through
// jsonEncoders. The runs of one check, and of one kind, carry the same variables, so a
// map's keys are most often an order written before: they are checked against it with a
// lookup a key instead of collected and sorted again (sorting was half of what encoding a
// run's variables cost).
type jsonEncoder struct {
	buf    []byte
	orders [][]string // sorted, never changed once kept
	next   int        // the order replaced next when all maxOrders are kept
}

const (
	maxOrders    = 8  // the variables, their headers and a JSON answer's levels
	maxOrderKeys = 64 // a larger map is sorted each time
)

var jsonEncoders = sync.Pool{New: func() any { return &jsonEncoder{buf: make([]byte, 0, 512)} }}

// mustJSON is v as JSON, a NaN or infinity as null in its place; "null" when v holds a
// type that encoding/json refuses.
func mustJSON(v any) string {
	e := jsonEncoders.Get().(*jsonEncoder)
	b, ok := e.value(e.buf[:0], v)
	var out string
	if ok {
		out = string(b)
	}
	if cap(b) <= 64<<10 { // a transcript's few hundred KiB are not kept for the next row
		e.buf = b
		jsonEncoders.Put(e)
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
// It keeps no key orders (mustJSON's encoders do).
func appendJSON(b []byte, v any) (_ []byte, ok bool) { return (*jsonEncoder)(nil).value(b, v) }

// value appends v to b. A nil encoder sorts every map's keys.
func (e *jsonEncoder) value(b []byte, v any) (_ []byte, ok bool) {
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
		return appendJSONList(b, x, e.value)
	case map[string]string:
		return appendJSONMap(e, b, x, appendJSONStringOK)
	case map[string]any:
		return appendJSONMap(e, b, x, e.value)
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
func appendJSONMap[V any](e *jsonEncoder, b []byte, m map[string]V, value func([]byte, V) ([]byte, bool)) (_ []byte, ok bool) {
	if m == nil {
		return append(b, "null"...), true
	}
	b = append(b, '{')
	for i, k := range sortedKeys(e, m) {
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

// sortedKeys are m's keys, sorted: an order e kept when m has exactly its keys (as many,
// and each of them), else sorted now and kept.
func sortedKeys[V any](e *jsonEncoder, m map[string]V) []string {
	if e != nil {
	orders:
		for _, o := range e.orders {
			if len(o) != len(m) {
				continue
			}
			for _, k := range o {
				if _, ok := m[k]; !ok {
					continue orders
				}
			}
			return o
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if e != nil && len(keys) <= maxOrderKeys {
		if len(e.orders) < maxOrders {
			e.orders = append(e.orders, keys)
		} else {
			e.orders[e.next] = keys // a new slice in the slot: one being written still reads the old
			e.next = (e.next + 1) % maxOrders
		}
	}
	return keys
}

// appendJSONFloat writes f as ECMAScript writes a number, as encoding/json does: plain
// decimals between 1e-6 and 1e21, exponents outside, with no leading zero in a negative
// exponent. NaN and infinities are not JSON: each is written null, in its place, so the
// rest of the run's variables are kept (encoding/json refuses the whole value).
func appendJSONFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...), true
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
