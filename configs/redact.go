package configs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"
)

// This file is vigil's one redaction helper. Everything that leaves a run (results, the
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

// Masked replaces a credential wherever vigil would show it.
const Masked = redacted

// MinSecretLen is the shortest value searched for and masked wherever it appears.
const MinSecretLen = 6

// SensitiveName reports whether a header, query parameter, form field, JSON field or
// environment variable name usually holds a credential: Authorization, Set-Cookie,
// X-Auth-Token, access_token, password, client_secret, api_key, sig, ...
func SensitiveName(name string) bool {
	var buf [64]byte
	n := normInto(buf[:0], name)
	switch string(n) {
	case "":
		return false
	case "auth", "pass", "pwd", "pin", "sig", "key", "sid", "otp", "jwt", "bearer", "apikey":
		return true
	}
	for i, c := range n {
		for _, part := range sensitiveParts[c] {
			if bytes.HasPrefix(n[i:], part) {
				return true
			}
		}
	}
	return bytes.HasSuffix(n, []byte("auth"))
}

// sensitiveParts are the words that make a name sensitive wherever they appear in it,
// by their first letter (one pass over the name instead of one search per word).
var sensitiveParts = func() (out [256][][]byte) {
	for _, p := range []string{"token", "secret", "passw", "apikey", "accesskey", "privatekey",
		"signingkey", "routingkey", "authkey", "clientkey", "licensekey", "masterkey", "hmackey",
		"encryptionkey", "integrationkey", "credential", "cookie", "session", "sessid", "signature", "authorization",
		"csrf", "xsrf"} {
		out[p[0]] = append(out[p[0]], []byte(p))
	}
	return out
}()

// normName lowercases a name and drops separators: X-Api-Key, x_api_key and XApiKey match.
func normName(name string) string { return string(normInto(nil, name)) }

func normInto(dst []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			dst = append(dst, c+'a'-'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			dst = append(dst, c)
		}
	}
	return dst
}

// plainHeaders are the request headers that clearly carry no credential. Any other header a
// config sets (X-Auth-Token, X-Scope-OrgID, X-Synthetic, ...) is treated as one: its value is
// masked where it is shown, and a redirect to another host drops it.
var plainHeaders = map[string]bool{
	"accept": true, "acceptcharset": true, "acceptencoding": true, "acceptlanguage": true, "cachecontrol": true,
	"connection": true, "contentencoding": true, "contentlanguage": true, "contentlength": true, "contenttype": true,
	"dnt": true, "expect": true, "host": true, "ifmatch": true, "ifmodifiedsince": true, "ifnonematch": true,
	"ifrange": true, "ifunmodifiedsince": true, "origin": true, "pragma": true, "range": true, "te": true,
	"useragent": true, "xforwardedfor": true, "xforwardedhost": true, "xforwardedproto": true, "xrequestid": true,
	"xcorrelationid": true, "xrequestedwith": true, "traceparent": true, "tracestate": true, "baggage": true,
	"upgrade": true, "via": true, "date": true,
}

// PlainHeader reports whether a configured request header clearly carries no credential.
func PlainHeader(name string) bool { return plainHeaders[normName(name)] }

// RedactURL masks the password of a URL's user:pass@ and the values of its query parameters
// whose names hold credentials (access_token, api_key, sig, ...). Text that is not a URL is
// redacted as free text.
func RedactURL(raw string) string { return (*Redactor)(nil).String(raw) }

// Redactor masks credentials in text and values. The zero value and nil mask by place only;
// Config.Redactor adds the config's secret values. It is immutable and safe for concurrent
// use; With returns a new one that also knows a run's secrets.
type Redactor struct {
	secrets []string // every searched form of every secret, longest first
	rep     *strings.Replacer
}

// NewRedactor returns a redactor that masks these values (and their URL-, JSON- and
// HTML-escaped forms) wherever they appear, on top of masking by place. Values shorter than
// MinSecretLen are ignored.
func NewRedactor(secrets ...string) *Redactor { return (*Redactor)(nil).With(secrets...) }

// With returns a redactor that also masks secrets.
func (r *Redactor) With(secrets ...string) *Redactor {
	seen := map[string]bool{}
	var list []string
	add := func(s string) {
		if len(s) >= MinSecretLen && !seen[s] && s != Masked {
			seen[s] = true
			list = append(list, s)
		}
	}
	if r != nil {
		for _, s := range r.secrets {
			add(s)
		}
	}
	n := len(list)
	for _, s := range secrets {
		if len(s) < MinSecretLen {
			continue
		}
		add(s)
		add(url.QueryEscape(s))
		add(url.PathEscape(s))
		add(html.EscapeString(s))
		if b, err := json.Marshal(s); err == nil {
			add(string(b[1 : len(b)-1]))
		}
		// JSON inside a JSON string, as a stored body quoted in a transcript line.
		if b, err := json.Marshal(strings.ReplaceAll(s, `"`, `\"`)); err == nil {
			add(string(b[1 : len(b)-1]))
		}
	}
	if len(list) == n && r != nil {
		return r
	}
	sort.SliceStable(list, func(i, j int) bool { return len(list[i]) > len(list[j]) })
	pairs := make([]string, 0, 2*len(list))
	for _, s := range list {
		pairs = append(pairs, s, Masked)
	}
	return &Redactor{secrets: list, rep: strings.NewReplacer(pairs...)}
}

// Margin is how much text past a cut must be redacted with what comes before it, so that
// the cut never splits a secret (or a "name": "value" pair) and shows its start.
func (r *Redactor) Margin() int {
	if r == nil || len(r.secrets) == 0 {
		return 128
	}
	return 128 + len(r.secrets[0])
}

// Len is how many searched forms of secrets the redactor knows.
func (r *Redactor) Len() int {
	if r == nil {
		return 0
	}
	return len(r.secrets)
}

// Bytes masks the credentials in b. Text is redacted as String does; binary data has the
// secret values replaced byte for byte, so an artifact keeps its size and format.
func (r *Redactor) Bytes(b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	if utf8.Valid(b) && !bytes.ContainsRune(b, 0) {
		return []byte(r.String(string(b)))
	}
	if r == nil {
		return b
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
	switch x := v.(type) {
	case nil, bool, int, int64, float64:
		return v
	case string:
		return r.str(x, masked, n)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[r.String(k)] = r.walk(e, masked || SensitiveName(k), n)
		}
		return out
	case map[string]string:
		out := make(map[string]string, len(x))
		for k, e := range x {
			out[r.String(k)] = r.str(e, masked || SensitiveName(k), n)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.walk(e, masked, n)
		}
		return out
	case []string:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = r.str(e, masked, n)
		}
		return out
	}
	return r.value(reflect.ValueOf(v), masked, n).Interface()
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

// Secrets lists the values the config marks as secret (see the file comment), for a
// Redactor. It reads Secret fields, credential headers, URLs, bodies and ${VAR} expansions.
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
				if !f.IsExported() || f.Tag.Get("koanf") == "-" && f.Type.Kind() != reflect.Pointer {
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

// Clip shortens s to at most n bytes on a rune boundary, saying how long it was.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:runeCut(s, n)] + fmt.Sprintf("...(%d bytes)", len(s))
}

// runeCut is the largest rune boundary of s at or before n.
func runeCut(s string, n int) int {
	cut := min(max(n, 0), len(s))
	for cut > 0 && cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return cut
}

// Excerpt is s redacted and clipped to n bytes. It redacts before the final cut, so the cut
// never leaves the start of a secret showing.
func (r *Redactor) Excerpt(s string, n int) string {
	whole := len(s)
	s = r.String(s[:runeCut(s, n+r.Margin())])
	if whole <= n && len(s) <= n {
		return s
	}
	return s[:runeCut(s, n)] + fmt.Sprintf("...(%d bytes)", whole)
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
