package configs

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// decoder turns the merged koanf map into typed config, strictly: an unknown key, a value
// of the wrong type or a malformed duration is an error naming its key path. It collects
// every error instead of stopping at the first, so one validate run shows them all.
type decoder struct {
	errs  Errors
	where func(path string) (file string, line int, source string)
	// unset holds the key paths whose value used a ${VAR} that is not set, with the names.
	unset map[string][]string
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
		return // an empty YAML value leaves the zero value (or the default) in place
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
			d.errorf(path, "write it as a mapping of keys, e.g. `key: value` on indented lines", "expected a mapping, got %s", describe(raw))
			return
		}
		d.decodeStruct(path, m, dst, nil)
	case reflect.Slice:
		list, ok := raw.([]any)
		if !ok {
			d.errorf(path, "write it as a list, e.g. [a, b] or one `- item` per line", "expected a list, got %s", describe(raw))
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
			d.errorf(path, "write it as a mapping, e.g. `name: value` on indented lines", "expected a mapping, got %s", describe(raw))
			return
		}
		out := reflect.MakeMapWithSize(t, len(m))
		for _, k := range sortedKeys(m) {
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
		n, ok := toFloat(raw)
		if !ok || n != math.Trunc(n) {
			d.errorf(path, "write a whole number, e.g. 10", "expected a whole number, got %s", describe(raw))
			return
		}
		dst.SetInt(int64(n))
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
	for _, k := range sortedKeys(m) {
		if extra[k] {
			continue
		}
		idx, ok := fields[k]
		if !ok {
			d.unknownKey(joinPath(path, k), k, keysOf(fields))
			continue
		}
		d.decode(joinPath(path, k), m[k], dst.Field(idx))
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
				if rest, err = time.ParseDuration(s[i+1:]); err != nil {
					return 0, err
				}
			}
			return time.Duration(days)*24*time.Hour + rest, nil
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
	d.errorf(path, "write a single value; quote it if it contains ':' or starts with '{' or '['", "expected a text value, got %s", describe(raw))
	return "", false
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
			v = v[:40] + "..."
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

// KeysOf lists the config keys a struct type accepts, sorted.
func KeysOf(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return keysOf(structFields(t))
}

func keysOf(fields map[string]int) []string {
	out := make([]string, 0, len(fields))
	for k := range fields {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// decodeRaw reads a check: the common keys into the Check, the rest into its kind's spec.
func (c *Check) decodeRaw(d *decoder, path string, raw any) {
	m, ok := raw.(map[string]any)
	if !ok {
		d.errorf(path, "each check is a mapping with at least name and kind", "expected a mapping, got %s", describe(raw))
		return
	}
	common := structFields(reflect.TypeOf(*c))
	extra := map[string]bool{}
	for k := range m {
		if _, ok := common[k]; !ok {
			extra[k] = true
		}
	}
	d.decodeStruct(path, m, reflect.ValueOf(c).Elem(), extra)
	if c.Kind == "" {
		d.errorf(joinPath(path, "kind"), "set kind to one of: "+strings.Join(Kinds, ", "), "missing")
		return
	}
	spec := c.newSpec()
	if !spec.IsValid() {
		d.errorf(joinPath(path, "kind"), DidYouMean(c.Kind, Kinds), "unknown kind %q", c.Kind)
		return
	}
	specFields := structFields(spec.Elem().Type())
	known := append(keysOf(common), keysOf(specFields)...)
	rest := map[string]any{}
	for k := range extra {
		if _, ok := specFields[k]; ok {
			rest[k] = m[k]
			continue
		}
		p := joinPath(path, k)
		if other := kindWithKey(k); other != "" {
			d.errorf(p, fmt.Sprintf("%s is a key of %s checks; remove it or change kind", k, other), "not a key of %s checks", c.Kind)
			continue
		}
		d.unknownKey(p, k, known)
	}
	d.decodeStruct(path, rest, spec.Elem(), nil)
}

// newSpec allocates the spec for c.Kind, stores it on c, and returns it (nil: unknown kind).
func (c *Check) newSpec() reflect.Value {
	var spec any
	switch c.Kind {
	case KindHTTP:
		c.HTTP = &HTTPSpec{}
		spec = c.HTTP
	case KindScript:
		c.Script = &ScriptSpec{}
		spec = c.Script
	case KindBrowser:
		c.Browser = &BrowserSpec{}
		spec = c.Browser
	case KindPropagation:
		c.Propagation = &PropagationSpec{}
		spec = c.Propagation
	case KindSLA:
		c.SLA = &SLASpec{}
		spec = c.SLA
	case KindLogscan:
		c.Logscan = &LogscanSpec{}
		spec = c.Logscan
	case KindPromQL:
		c.PromQL = &PromQLSpec{}
		spec = c.PromQL
	case KindFleet:
		c.Fleet = &FleetSpec{}
		spec = c.Fleet
	default:
		return reflect.Value{}
	}
	return reflect.ValueOf(spec)
}

var kindSpecs = map[string]any{
	KindHTTP: HTTPSpec{}, KindScript: ScriptSpec{}, KindBrowser: BrowserSpec{}, KindPropagation: PropagationSpec{},
	KindSLA: SLASpec{}, KindLogscan: LogscanSpec{}, KindPromQL: PromQLSpec{}, KindFleet: FleetSpec{},
}

// kindWithKey names a kind whose spec has key, for "wrong kind" errors.
func kindWithKey(key string) string {
	for _, k := range Kinds {
		if _, ok := structFields(reflect.TypeOf(kindSpecs[k]))[key]; ok {
			return k
		}
	}
	return ""
}

// decodeRaw reads routes as a list (every event) or a map from event to list.
func (r *Routes) decodeRaw(d *decoder, path string, raw any) {
	out := Routes{}
	switch v := raw.(type) {
	case []any:
		var names []string
		d.decode(path, v, reflect.ValueOf(&names).Elem())
		out[AnyEvent] = names
	case map[string]any:
		for _, ev := range sortedKeys(v) {
			if !contains(Events, ev) {
				d.errorf(joinPath(path, ev), DidYouMean(ev, Events), "unknown event %q", ev)
				continue
			}
			var names []string
			d.decode(joinPath(path, ev), v[ev], reflect.ValueOf(&names).Elem())
			out[ev] = names
		}
	default:
		d.errorf(path, "write a list of notifier names, or a mapping from event to a list", "expected a list or a mapping, got %s", describe(raw))
		return
	}
	*r = out
}

// decodeRaw reads a reader as a URL string or a full mapping.
func (r *Reader) decodeRaw(d *decoder, path string, raw any) {
	if s, ok := raw.(string); ok {
		r.Request.URL = s
		return
	}
	m, ok := raw.(map[string]any)
	if !ok {
		d.errorf(path, "write a URL, or a mapping with request (and optionally name, match)", "expected a URL or a mapping, got %s", describe(raw))
		return
	}
	d.decodeStruct(path, m, reflect.ValueOf(r).Elem(), nil)
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// decodeRaw reads a notifier and rejects keys that belong to another notifier type.
func (n *Notifier) decodeRaw(d *decoder, path string, raw any) {
	m, ok := raw.(map[string]any)
	if !ok {
		d.errorf(path, "each notifier is a mapping with at least type", "expected a mapping, got %s", describe(raw))
		return
	}
	d.decodeStruct(path, m, reflect.ValueOf(n).Elem(), nil)
	allowed, ok := notifierKeys[n.Type]
	if !ok {
		return // validation reports the type
	}
	for _, k := range sortedKeys(m) {
		if k == "type" || k == "events" || k == "dry_run" || contains(allowed, k) {
			continue
		}
		if _, known := structFields(reflect.TypeOf(*n))[k]; !known {
			continue // already reported as unknown
		}
		d.errorf(joinPath(path, k), fmt.Sprintf("%s notifiers take: type, events, dry_run, %s", n.Type, strings.Join(allowed, ", ")),
			"not a key of %s notifiers", n.Type)
	}
}
