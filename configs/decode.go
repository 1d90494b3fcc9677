package configs

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/internal/text"
)

// decoder turns the merged koanf map into typed config, strictly: an unknown key, a value
// of the wrong type or a malformed duration is an error naming its key path. It collects
// every error instead of stopping at the first, so one validate run shows them all.
type decoder struct {
	errs  Errors
	where func(path string) (file string, line int, source string)
	// unset holds the key paths whose value used a ${VAR} that is not set, with the names.
	unset map[string][]string
	// zeros holds the key paths written as a 0 that is kept (zero.go).
	zeros map[string]bool
}

// rawDecoder is implemented by types whose YAML has more than one shape.
type rawDecoder interface {
	decodeRaw(d *decoder, path string, raw any)
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	secretType   = reflect.TypeOf(Secret(""))
)

func (d *decoder) errorf(path, fix, format string, args ...any) {
	e := &Error{Path: path, Msg: fmt.Sprintf(format, args...), Fix: fix}
	if d.where != nil {
		e.File, e.Line, e.Source = d.where(path)
	}
	d.errs = append(d.errs, e)
}

// decode fills dst (addressable) from raw at path.
func (d *decoder) decode(path string, raw any, dst reflect.Value) {
	if raw == nil {
		if dst.Kind() == reflect.Pointer && strings.HasSuffix(path, "]") {
			return // a list's empty item: its owner's validation says "empty check" (or step, ...)
		}
		d.writtenNull(path, dst.Type(), false, nil) // zero.go
		return
	}
	if dst.CanAddr() {
		if rd, ok := dst.Addr().Interface().(rawDecoder); ok {
			rd.decodeRaw(d, path, raw)
			return
		}
	}
	t := dst.Type()
	switch {
	case t == durationType:
		d.decodeDuration(path, raw, dst)
		return
	case t == secretType:
		s, ok := d.scalarString(path, raw)
		if ok {
			if names := d.unset[path]; len(names) > 0 {
				d.errorf(path, fmt.Sprintf("export %s before starting vigil, or remove this setting", names[0]),
					"secret uses ${%s}, which is not set in the environment", names[0])
			}
			dst.SetString(s)
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		v := reflect.New(t.Elem())
		if !dst.IsNil() {
			v.Elem().Set(dst.Elem())
		}
		d.decode(path, raw, v.Elem())
		dst.Set(v)
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			d.errorf(path, d.shapeFix(path, "write it as a mapping of keys, e.g. `key: value` on indented lines"), "expected a mapping, got %s", describe(raw))
			return
		}
		d.decodeStruct(path, m, dst, nil)
	case reflect.Slice:
		list, ok := raw.([]any)
		if !ok {
			d.errorf(path, d.shapeFix(path, "write it as a list, e.g. [a, b] or one `- item` per line"), "expected a list, got %s", describe(raw))
			return
		}
		out := reflect.MakeSlice(t, len(list), len(list))
		for i, item := range list {
			d.decode(indexPath(path, i), item, out.Index(i))
		}
		dst.Set(out)
	case reflect.Map:
		m, ok := raw.(map[string]any)
		if !ok {
			d.errorf(path, d.shapeFix(path, "write it as a mapping, e.g. `name: value` on indented lines"), "expected a mapping, got %s", describe(raw))
			return
		}
		if lastKey(path) == "headers" {
			d.headerNames(path, m)
		}
		out := reflect.MakeMapWithSize(t, len(m))
		for _, k := range slices.Sorted(maps.Keys(m)) {
			v := reflect.New(t.Elem()).Elem()
			d.decode(joinPath(path, k), m[k], v)
			out.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), v)
		}
		dst.Set(out)
	case reflect.String:
		if s, ok := d.scalarString(path, raw); ok {
			dst.SetString(s)
		}
	case reflect.Bool:
		switch v := raw.(type) {
		case bool:
			dst.SetBool(v)
		case string:
			b, err := strconv.ParseBool(v)
			if err != nil {
				d.errorf(path, "use true or false", "expected true or false, got %q", v)
				return
			}
			dst.SetBool(b)
		default:
			d.errorf(path, "use true or false", "expected true or false, got %s", describe(raw))
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, ok := wholeNumber(raw)
		if !ok {
			d.errorf(path, "write a whole number, e.g. 10", "expected a whole number, got %s", describe(raw))
			return
		}
		if n.big || dst.OverflowInt(n.v) {
			// Converted as it came, 1e23 or 2^63 read as -9223372036854775808: a limit of
			// "at least 1" then named a number nobody wrote.
			d.errorf(path, "write a whole number of the size the key means, e.g. 10", "%s is too large a number", describe(raw))
			return
		}
		dst.SetInt(n.v)
	case reflect.Float64:
		n, ok := toFloat(raw)
		if !ok {
			d.errorf(path, "write a number, e.g. 0.5", "expected a number, got %s", describe(raw))
			return
		}
		dst.SetFloat(n)
	default:
		panic(fmt.Sprintf("configs: no decoder for %s at %s", t, path))
	}
}

// decodeStruct fills the tagged fields of dst from m. Keys in extra are ignored (a caller
// decodes them elsewhere); any other unknown key is an error that suggests the nearest key.
func (d *decoder) decodeStruct(path string, m map[string]any, dst reflect.Value, extra map[string]bool) {
	fields := structFields(dst.Type())
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if extra[k] {
			continue
		}
		idx, ok := fields[k]
		if !ok {
			d.unknownKey(joinPath(path, k), k, keysOf(fields))
			continue
		}
		if m[k] == nil {
			d.writtenNull(joinPath(path, k), dst.Field(idx).Type(), true, zeroRuleOf(dst.Type(), k))
			continue
		}
		before := len(d.errs)
		d.decode(joinPath(path, k), m[k], dst.Field(idx))
		if len(d.errs) == before && dst.Field(idx).IsZero() {
			d.writtenZero(dst.Type(), joinPath(path, k), k)
		}
	}
}

// envShapeFix is the fix for a value of the wrong shape that an environment variable
// set: a variable holds one text value, so the file's list syntax is no help there.
const envShapeFix = "an environment variable (VIGIL_SECTION__KEY) sets one text value, not a list, a mapping or an item of one: set this key in the file"

// shapeFix is fix, or envShapeFix when the value at path came from the environment.
func (d *decoder) shapeFix(path, fix string) string {
	if d.where != nil {
		if _, _, src := d.where(path); strings.HasPrefix(src, "environment ") {
			return envShapeFix
		}
	}
	return fix
}

// headerNames refuses header names that differ only in case: they name one header, and
// which value was sent depended on the order a map was walked in.
func (d *decoder) headerNames(path string, m map[string]any) {
	seen := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		low := strings.ToLower(k)
		if first, ok := seen[low]; ok {
			d.errorf(joinPath(path, k), "keep one of them; header names ignore case", "%q and %q name the same header", first, k)
			continue
		}
		seen[low] = k
	}
}

func (d *decoder) unknownKey(path, key string, known []string) {
	d.errorf(path, DidYouMean(key, known), "unknown key %q", key)
}

func (d *decoder) decodeDuration(path string, raw any, dst reflect.Value) {
	switch v := raw.(type) {
	case string:
		dur, err := ParseDuration(v)
		if err != nil {
			d.errorf(path, "write it like 500ms, 30s, 5m, 1h30m or 7d", "%q is not a duration", v)
			return
		}
		dst.SetInt(int64(dur))
	case int, int64, float64:
		if n, _ := toFloat(v); n == 0 {
			dst.SetInt(0)
			return
		}
		d.errorf(path, fmt.Sprintf("add a unit: %vs for seconds, %vms for milliseconds", v, v), "%v is a number without a unit", v)
	default:
		d.errorf(path, "write it like 500ms, 30s, 5m, 1h30m or 7d", "expected a duration, got %s", describe(raw))
	}
}

// ParseDuration is time.ParseDuration that also takes whole days ("7d", "1d12h").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "d"); i > 0 {
		days, err := strconv.Atoi(s[:i])
		if err == nil && (days < 0 || days > 100_000) {
			return 0, fmt.Errorf("%q: %d days is out of range", s, days)
		}
		if err == nil {
			rest := time.Duration(0)
			if i+1 < len(s) {
				if strings.ContainsAny(s[i+1:i+2], "+-") {
					return 0, fmt.Errorf("%q: a sign belongs before the days only", s)
				}
				if rest, err = time.ParseDuration(s[i+1:]); err != nil {
					return 0, err
				}
			}
			total := time.Duration(days)*24*time.Hour + rest
			if total < rest {
				// 100000d200000h wrapped around to a negative duration.
				return 0, fmt.Errorf("%q is out of range", s)
			}
			return total, nil
		}
	}
	return time.ParseDuration(s)
}

func (d *decoder) scalarString(path string, raw any) (string, bool) {
	switch v := raw.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case uint64:
		return strconv.FormatUint(v, 10), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case time.Time:
		// YAML reads an unquoted 2026-12-01T22:00:00Z as a timestamp; give it back as
		// the RFC 3339 text the user wrote, offset included.
		return v.Format(time.RFC3339Nano), true
	}
	d.errorf(path, d.shapeFix(path, "write a single value; quote it if it contains ':' or starts with '{' or '['"), "expected a text value, got %s", describe(raw))
	return "", false
}

// intRead is a whole number as read: v, or big when it does not fit an int64.
type intRead struct {
	v   int64
	big bool
}

// wholeNumber reads raw as a whole number. Integers are taken exactly; a float (1e3, or
// an integer too long for int64, which YAML reads as one) only when it has no fraction.
func wholeNumber(raw any) (intRead, bool) {
	switch v := raw.(type) {
	case int:
		return intRead{v: int64(v)}, true
	case int64:
		return intRead{v: v}, true
	case uint64:
		return intRead{v: int64(v), big: v > math.MaxInt64}, true
	}
	n, ok := toFloat(raw)
	if !ok || n != math.Trunc(n) {
		return intRead{}, false
	}
	if n >= math.MaxInt64 || n < math.MinInt64 {
		return intRead{big: true}, true
	}
	return intRead{v: int64(n)}, true
}

func toFloat(raw any) (float64, bool) {
	switch v := raw.(type) {
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint64:
		return float64(v), true
	case float64:
		return v, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return f, err == nil
	}
	return 0, false
}

// describe names a raw YAML value for an error message.
func describe(raw any) string {
	switch v := raw.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		if len(v) > 40 {
			v = v[:text.CutAt(v, 40)] + "..."
		}
		return fmt.Sprintf("%q", v)
	case bool:
		return fmt.Sprintf("%v (a boolean)", v)
	case nil:
		return "nothing"
	default:
		return fmt.Sprintf("%v", v)
	}
}

// structFields maps each koanf tag of t to its field index.
func structFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("koanf")
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		out[tag] = i
	}
	return out
}

func keysOf(fields map[string]int) []string { return slices.Sorted(maps.Keys(fields)) }
