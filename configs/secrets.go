package configs

import (
	"encoding/base64"
	"reflect"
	"strings"
)

// secretValues lists the values the config marks as secret (see the comment atop
// redact.go), for a Redactor. It reads Secret fields, credential headers, URLs, bodies and ${VAR} expansions.
func (c *Config) secretValues() []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
		}
	}
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(path, v.Elem())
			}
		case reflect.Struct:
			if auth, ok := v.Interface().(Auth); ok && auth.Username != "" && auth.Password.IsSet() {
				add(base64.StdEncoding.EncodeToString([]byte(auth.Username + ":" + auth.Password.Value())))
			}
			t := v.Type()
			for i := range t.NumField() {
				f := t.Field(i)
				// Fields not from the file are skipped, but for the ones that hold a part
				// of it (a check's Spec).
				if k := f.Type.Kind(); !f.IsExported() || f.Tag.Get("koanf") == "-" && k != reflect.Pointer && k != reflect.Interface {
					continue
				}
				walk(f.Name, v.Field(i))
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(path, v.Index(i))
			}
		case reflect.Map:
			it := v.MapRange()
			for it.Next() {
				if path == "Headers" && it.Key().Kind() == reflect.String && it.Value().Kind() == reflect.String {
					name, val := it.Key().String(), it.Value().String()
					if !PlainHeader(name) {
						add(val)
						if _, tok, ok := strings.Cut(val, " "); ok && (SensitiveName(name) || strings.EqualFold(name, "Authorization")) {
							add(strings.TrimSpace(tok)) // "Bearer TOKEN": the token alone
						}
						if k, v, ok := strings.Cut(val, "="); ok && SensitiveName(name) && k != "" {
							add(v) // "sid=VALUE": the cookie's value alone
						}
					}
				}
				walk(path, it.Value())
			}
		case reflect.String:
			s := v.String()
			if v.Type() == secretType {
				add(s)
				return
			}
			for _, found := range SecretsInText(s) {
				add(found)
			}
		}
	}
	walk("", reflect.ValueOf(c).Elem())
	for _, n := range c.Notifiers {
		// A Discord webhook URL is its own credential: /api/webhooks/{id}/{token}.
		if n != nil && n.Type == NotifierDiscord {
			if _, rest, ok := strings.Cut(n.URL, "/webhooks/"); ok {
				if _, token, ok := strings.Cut(rest, "/"); ok {
					token, _, _ = strings.Cut(token, "?")
					add(strings.Trim(token, "/"))
				}
			}
		}
	}
	out = append(out, c.expandedSecrets...)
	return out
}

// SecretsInText finds the credentials written in a string by their place: URL passwords
// (and the basic-auth header they make), and sensitive query, form and JSON values.
func SecretsInText(s string) []string {
	var out []string
	maskPlaces(s, func(v string) { out = append(out, v) })
	return out
}

// SensitiveValues collects the strings held under names that hold credentials in v (a
// decoded JSON answer, a header map): what a run learns it must mask from then on.
func SensitiveValues(v any) []string {
	var out []string
	var walk func(v any, under bool)
	walk = func(v any, under bool) {
		switch x := v.(type) {
		case string:
			if under {
				out = append(out, x)
			}
		case map[string]any:
			for k, val := range x {
				walk(val, under || SensitiveName(k))
			}
		case []any:
			for _, val := range x {
				walk(val, under)
			}
		default:
			rv := reflect.ValueOf(v)
			switch rv.Kind() {
			case reflect.Map:
				if rv.Type().Key().Kind() != reflect.String {
					return
				}
				it := rv.MapRange()
				for it.Next() {
					walk(it.Value().Interface(), under || SensitiveName(it.Key().String()))
				}
			case reflect.Slice:
				if rv.Type().Elem().Kind() == reflect.Uint8 {
					return
				}
				for i := range rv.Len() {
					walk(rv.Index(i).Interface(), under)
				}
			case reflect.String:
				if under {
					out = append(out, rv.String())
				}
			}
		}
	}
	walk(v, false)
	return out
}
