package store

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"testing"
	"unicode/utf8"
)

// jsonCases are values runs carry, and the awkward corners of encoding/json's output.
var jsonCases = []any{
	nil, "", "plain", `quote " and \ backslash`, "<html> & </html>", "\b\f\n\r\t\x00\x1f\x7f",
	"caf\u00e9 \u2028 \u2029 \U0001F600", "bad \xff utf-8 \xc3", "\xed\xa0\x80", true, false,
	0, -1, 1 << 62, int64(-1 << 63), 0.0, math.Copysign(0, -1), 1.5, 2.661, 1e-6, 9.99e-7, 1e21, 1e20, -3e-9, 123456789.125, math.MaxFloat64,
	math.SmallestNonzeroFloat64, []string(nil), []string{}, []string{"a", "<b>"}, []any(nil), []any{1, "x", nil, []any{true}},
	map[string]string(nil), map[string]string{}, map[string]string{"Content-Type": "text/html", "b": "2", "a": "1"},
	map[string]any(nil), map[string]any{
		"status": 200, "duration_ms": 4.557, "headers": map[string]string{"Server": "x"}, "json": map[string]any{"ok": true, "n": 1.0},
		"body": "ok", "proto": "HTTP/1.1", "nothing": nil, "list": []any{"a", 2.5}, "é": "key not ASCII", "\u2028": "separator key",
	},
}

// The encoder writes what encoding/json writes, byte for byte.
func TestJSONMatchesEncodingJSON(t *testing.T) {
	for _, v := range jsonCases {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendJSON(nil, v)
		if !ok || string(got) != string(want) {
			t.Errorf("%#v: got %s (ok %v), want %s", v, got, ok, want)
		}
		if mustJSON(v) != string(want) {
			t.Errorf("mustJSON(%#v) = %s, want %s", v, mustJSON(v), want)
		}
	}
	// what it does not handle goes to encoding/json, which has the last word
	type custom struct{ A int }
	for _, v := range []any{custom{1}, map[string]any{"x": custom{2}}, []any{uint8(3)}, float32(1.5), map[string]int{"a": 1}} {
		if _, ok := appendJSON(nil, v); ok {
			t.Errorf("%#v: handled; it should fall back", v)
		}
		want, _ := json.Marshal(v)
		if mustJSON(v) != string(want) {
			t.Errorf("mustJSON(%#v) = %s, want %s", v, mustJSON(v), want)
		}
	}
	// NaN and infinities are not JSON: null in their place, the rest kept (a promql value
	// over several series is NaN, and its run's other variables are the baseline's).
	for v, want := range map[string]string{"NaN": "null", "+Inf": "null",
		"map": `{"series":2,"value":null,"x":[1,null]}`} {
		var in any = math.NaN()
		switch v {
		case "+Inf":
			in = math.Inf(1)
		case "map":
			in = map[string]any{"series": 2, "value": math.NaN(), "x": []any{1.0, math.Inf(-1)}}
		}
		if got := mustJSON(in); got != want {
			t.Errorf("mustJSON(%s) = %s, want %s", v, got, want)
		}
	}
}

// FuzzJSONString: any string, as a value, a key and a list element, and any float, encode
// as encoding/json encodes them.
func FuzzJSONString(f *testing.F) {
	for _, v := range jsonCases {
		if s, ok := v.(string); ok {
			f.Add(s, 1.5)
		}
	}
	f.Add("\u2029<", 1e-7)
	f.Fuzz(func(t *testing.T, s string, x float64) {
		v := map[string]any{s: s, "list": []any{s, x}, "h": map[string]string{s: s}, "x": x}
		want, err := json.Marshal(v)
		if math.IsNaN(x) || math.IsInf(x, 0) { // not JSON: null in its place
			want, err = json.Marshal(map[string]any{s: s, "list": []any{s, nil}, "h": map[string]string{s: s}, "x": nil})
		}
		got, ok := appendJSON(nil, v)
		if err != nil {
			if ok {
				t.Fatalf("encoding/json refuses %#v (%v); appendJSON wrote %s", v, err, got)
			}
			return
		}
		if !ok || string(got) != string(want) {
			t.Fatalf("%q, %v: got %s (ok %v), want %s", s, x, got, ok, want)
		}
		if !utf8.Valid(got) {
			t.Fatalf("not UTF-8: %q", got)
		}
		// and through an encoder that keeps the key orders of every input before
		if got, ok := fuzzEncoder.value(nil, v); !ok || string(got) != string(want) {
			t.Fatalf("%q, %v, with the orders kept: got %s (ok %v), want %s", s, x, got, ok, want)
		}
	})
}

// fuzzEncoder is one encoder for every input FuzzJSONString tries (a worker runs them one
// at a time), so the orders it keeps come from other inputs.
var fuzzEncoder = &jsonEncoder{}

// An encoder that keeps key orders writes what encoding/json writes whatever maps it saw
// before: the same keys, as many keys but others, nested maps of one size, more orders
// than it keeps, a map too large to keep.
func TestJSONKeyOrders(t *testing.T) {
	big := map[string]any{}
	for i := range maxOrderKeys + 1 {
		big[string(rune('a'+i%26))+strconv.Itoa(i)] = i
	}
	vars := func(status int) map[string]any {
		return map[string]any{"status": status, "body": "ok", "headers": map[string]string{"Date": "x", "Server": "y"},
			"json": map[string]any{"ok": true, "n": 1.0}}
	}
	seq := []any{
		vars(200), vars(500), // the same keys: the kept order
		map[string]any{"status": 1, "bodz": 2, "headers": 3, "json": 4},                                 // as many keys, one other
		map[string]any{"a": map[string]string{"z": "1", "y": "2"}, "b": map[string]any{"x": 1, "w": 2}}, // nested, one size
		vars(404),
	}
	for i := range maxOrders + 3 { // more orders than it keeps, and back to the first
		seq = append(seq, map[string]any{"k" + strconv.Itoa(i): i, "common": i}, vars(i))
	}
	seq = append(seq, big, big, map[string]any{}, map[string]any{}, map[string]string{"": "empty key"})
	e := &jsonEncoder{}
	for i, v := range seq {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := e.value(nil, v); !ok || string(got) != string(want) {
			t.Fatalf("value %d: got %s (ok %v), want %s", i, got, ok, want)
		}
	}
	if len(e.orders) != maxOrders {
		t.Errorf("%d orders kept, want %d", len(e.orders), maxOrders)
	}
	for _, o := range e.orders {
		if len(o) > maxOrderKeys || !slices.IsSorted(o) {
			t.Errorf("an order kept: %d keys, sorted %v", len(o), slices.IsSorted(o))
		}
	}
}
