package configs

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/vigil-monitor/vigil/internal/text"
)

// Redaction is one helper, in this file and three beside it: names.go says which names hold
// credentials, secrets.go finds the config's secret values, redact_scan.go masks by place.
// Everything that leaves a run (results, the
// store, the API and status page, notifier payloads, logs) passes through a Redactor built
// from the loaded config, so a credential is masked the same way everywhere:
//
//   - by value: every Secret field, every configured header value that is not clearly
//     harmless (see PlainHeader), every ${VAR} whose variable or key names a credential,
//     URL passwords and sensitive query, form and JSON values written in the config, and
//     the values a run learns (a Set-Cookie, a token in a response). Values shorter than
//     MinSecretLen are masked in their place only: searched for in free text they would
//     mask ordinary words;
//   - by place: the password of a URL's user:pass@, the values of query, form and JSON
//     fields and of headers whose names hold credentials (SensitiveName), and the token
//     after "Bearer " or "Basic ".

// MinSecretLen is the shortest value searched for and masked wherever it appears.
const MinSecretLen = 6

// RedactURL masks the password of a URL's user:pass@ and the values of its query parameters
// whose names hold credentials (access_token, api_key, sig, ...). Text that is not a URL is
// redacted as free text.
func RedactURL(raw string) string { return (*Redactor)(nil).String(raw) }

// String masks the credentials in s.
func (r *Redactor) String(s string) string {
	if s == "" {
		return s
	}
	if r != nil {
		s = r.replace(s)
	}
	return maskPlaces(s, nil)
}

// replace replaces the secrets in s; s itself when there are none. A Replacer of more than
// one value copies its input twice even when it finds nothing (4.7 MB of status page, 9.4
// allocated); written out through replaced instead, it hands s back whole in one piece when
// nothing matched, and that is kept, not copied.
func (r *Redactor) replace(s string) string {
	if r.base != nil {
		return r.replaceOwn(s)
	}
	return replaceBy(r.rep, s)
}

// replaceBy is s with rep's values replaced; s itself when none is in it, or rep is nil.
func replaceBy(rep *strings.Replacer, s string) string {
	if rep == nil {
		return s
	}
	w := replaced{src: s}
	_, _ = rep.WriteString(&w, s) // replaced never fails
	if w.same {
		return s
	}
	return string(w.out)
}

// replaced is what a Replacer writes: the text between the matches and what replaces them.
// The Replacer writes a text with no match as one piece, the whole of it; a text with one
// starts with the piece before it (empty when the match is at the start), shorter.
type replaced struct {
	src   string
	out   []byte
	calls int
	same  bool
	stop  bool // fail the first write of a text that has a match: only whether it has one is asked
}

var errMatched = errors.New("matched")

func (w *replaced) WriteString(s string) (int, error) {
	w.calls++
	if w.calls == 1 && len(s) == len(w.src) {
		w.same = true
		return len(s), nil
	}
	if w.stop {
		return 0, errMatched
	}
	if w.same { // not a Replacer's way: keep the text whole, then what follows
		w.same, w.out = false, append([]byte(w.src), w.out...)
	}
	w.out = append(w.out, s...)
	return len(s), nil
}

func (w *replaced) Write(p []byte) (int, error) { return w.WriteString(string(p)) }

// Bytes masks the credentials in b. Text is redacted as String does; binary data has the
// secret values replaced byte for byte, so an artifact keeps its size and format.
func (r *Redactor) Bytes(b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	if utf8.Valid(b) && !bytes.ContainsRune(b, 0) {
		// b read as a string in place, not copied (a status page is megabytes): String
		// keeps no part of it, and what it returns changed is a new string, copied out.
		s := unsafe.String(&b[0], len(b))
		if out := r.String(s); out != s { // unchanged, b goes back as it came
			return []byte(out)
		}
		return b
	}
	if r == nil {
		return b
	}
	if r.base != nil {
		r = r.whole()
	}
	out := b
	for _, s := range r.secrets {
		if bytes.Contains(out, []byte(s)) {
			out = bytes.ReplaceAll(out, []byte(s), []byte(Masked))
		}
	}
	return out
}

// Value returns a copy of v, of the same type, with credentials masked: strings are
// redacted as String does (map keys too: a fleet's instances are keyed by URL), and under a
// key that names a credential (a Set-Cookie header, a "password" JSON field) every string
// is masked whole. Numbers and booleans are kept.
func (r *Redactor) Value(v any) any { return r.walk(v, false, 0) }

// Excerpts is Value with every string also cut to n bytes, as Excerpt cuts: what a stored
// result keeps of its variables.
func (r *Redactor) Excerpts(v any, n int) any { return r.walk(v, false, n) }

func (r *Redactor) str(s string, masked bool, n int) string {
	switch {
	case masked:
		if s != "" {
			return Masked
		}
		return s
	case n > 0:
		return r.Excerpt(s, n)
	}
	return r.String(s)
}

// walk handles the types results hold without reflection; value handles the rest.
func (r *Redactor) walk(v any, masked bool, n int) any {
	out, _ := r.walkShared(v, masked, n)
	return out
}

// walkShared is walk that copies only what it changes: a map or list in which nothing
// needed masking or cutting comes back as it was, with changed false. Most results have
// nothing to redact, and copying every run's variables was most of what sealing it cost.
// Nothing is modified in place.
func (r *Redactor) walkShared(v any, masked bool, n int) (_ any, changed bool) {
	switch x := v.(type) {
	case nil, bool, int, int64, float64:
		return v, false
	case string:
		if out := r.str(x, masked, n); out != x {
			return out, true
		}
		return v, false // as it came: a string made an interface again is allocated
	case map[string]any:
		return copyChangedMap(x, func(k string, e any) (string, any, bool) {
			sensitive, shown := r.name(k)
			re, ch := r.walkShared(e, masked || sensitive, n)
			return shown, re, ch
		})
	case map[string]string:
		return copyChangedMap(x, func(k, e string) (string, string, bool) {
			sensitive, shown := r.name(k)
			re := r.str(e, masked || sensitive, n)
			return shown, re, re != e
		})
	case []any:
		return copyChangedList(x, func(e any) (any, bool) { return r.walkShared(e, masked, n) })
	case []string:
		return copyChangedList(x, func(e string) (string, bool) { re := r.str(e, masked, n); return re, re != e })
	}
	return r.value(reflect.ValueOf(v), masked, n).Interface(), true
}

// nameVerdict is what walk makes of a map key: whether it names a credential, and the key as
// it is shown.
type nameVerdict struct {
	sensitive bool
	shown     string
}

// maxNames bounds the keys a redactor remembers. A run's variables are its kind's few names
// and its target's headers, the same in every run; keys past this many (a target that makes
// up new header names) are judged afresh each time.
const maxNames = 4096

// name is SensitiveName(k) and String(k): whether a map key names a credential, and the key
// as shown. The config's redactor remembers both for the keys it has seen: every run's
// variables bring the same few back, and judging them again was most of sealing a run. A
// run's redactor that learned secrets of its own judges afresh.
func (r *Redactor) name(k string) (bool, string) {
	root := r
	if r != nil && r.base != nil {
		if len(r.secrets) > 0 {
			return SensitiveName(k), r.String(k)
		}
		root = r.base
	}
	if root == nil {
		return SensitiveName(k), root.String(k)
	}
	if v, ok := root.names.Load(k); ok {
		nv := v.(nameVerdict)
		return nv.sensitive, nv.shown
	}
	nv := nameVerdict{SensitiveName(k), root.String(k)}
	if root.nameCount.Load() < maxNames && root.nameCount.Add(1) <= maxNames {
		root.names.Store(k, nv)
	}
	return nv.sensitive, nv.shown
}

// copyChangedMap applies fn to every entry of m and returns m itself when no key or value
// changed, a new map otherwise (never nil: a nil map comes back empty, as a copy would).
func copyChangedMap[V any](m map[string]V, fn func(k string, v V) (string, V, bool)) (map[string]V, bool) {
	if m == nil {
		return map[string]V{}, true
	}
	var out map[string]V
	for k, v := range m {
		rk, rv, changed := fn(k, v)
		if out == nil && (changed || rk != k) {
			out = maps.Clone(m) // the entries walked so far were unchanged
		}
		if out != nil {
			if rk != k {
				delete(out, k)
			}
			out[rk] = rv
		}
	}
	if out == nil {
		return m, false
	}
	return out, true
}

// copyChangedList is copyChangedMap for a list.
func copyChangedList[V any](list []V, fn func(V) (V, bool)) ([]V, bool) {
	if list == nil {
		return []V{}, true
	}
	var out []V
	for i, v := range list {
		rv, changed := fn(v)
		if out == nil && changed {
			out = slices.Clone(list)
		}
		if out != nil {
			out[i] = rv
		}
	}
	if out == nil {
		return list, false
	}
	return out, true
}

func (r *Redactor) value(v reflect.Value, masked bool, n int) reflect.Value {
	switch v.Kind() {
	case reflect.String:
		return reflect.ValueOf(r.str(v.String(), masked, n)).Convert(v.Type())
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type()).Elem()
		out.Set(reflect.ValueOf(r.walk(v.Elem().Interface(), masked, n)))
		return out
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		it := v.MapRange()
		for it.Next() {
			k, m := it.Key(), masked
			if k.Kind() == reflect.String {
				m = m || SensitiveName(k.String())
				k = reflect.ValueOf(r.String(k.String())).Convert(k.Type())
			}
			out.SetMapIndex(k, r.value(it.Value(), m, n))
		}
		return out
	case reflect.Slice:
		if v.IsNil() || v.Type().Elem().Kind() == reflect.Uint8 {
			return v
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(r.value(v.Index(i), masked, n))
		}
		return out
	case reflect.Array:
		out := reflect.New(v.Type()).Elem()
		for i := range v.Len() {
			out.Index(i).Set(r.value(v.Index(i), masked, n))
		}
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(r.value(v.Elem(), masked, n))
		return out
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for i := range v.NumField() {
			if f := out.Field(i); f.CanSet() {
				f.Set(r.value(v.Field(i), masked || SensitiveName(v.Type().Field(i).Name), n))
			}
		}
		return out
	}
	return v
}

// Excerpt is s redacted and clipped to n bytes. It redacts before the final cut, so the cut
// never leaves the start of a secret showing.
func (r *Redactor) Excerpt(s string, n int) string {
	whole := len(s)
	s = r.String(s[:text.CutAt(s, n+r.margin())])
	if whole <= n && len(s) <= n {
		return s
	}
	return s[:text.CutAt(s, n)] + fmt.Sprintf("...(%d bytes)", whole)
}

// Redactor returns the redactor of this config's secrets.
func (c *Config) Redactor() *Redactor {
	if c == nil {
		return nil
	}
	if c.redactor != nil {
		return c.redactor
	}
	return NewRedactor(c.secretValues()...)
}
