package configs_test

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vigil-monitor/vigil/configs"
)

func TestSensitiveName(t *testing.T) {
	for _, n := range []string{"Authorization", "Proxy-Authorization", "Set-Cookie", "Cookie", "X-Auth-Token", "X-Api-Key",
		"access_token", "refresh_token", "id_token", "password", "passwd", "client_secret", "api_key", "apiKey", "sig",
		"X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Credential", "sessionid", "PHPSESSID", "csrf_token", "pin",
		"SHOP_PASSWORD", "PD_ROUTING_KEY", "private_key", "x-auth", "key", "token", "secret", "jwt"} {
		if !configs.SensitiveName(n) {
			t.Errorf("SensitiveName(%q) = false", n)
		}
	}
	for _, n := range []string{"Content-Type", "Idempotency-Key", "dedup_key", "author", "authors", "page", "user", "username",
		"X-Request-Id", "Location", "status", "WWW-Authenticate", "keep-alive", "monkey", "HOST", "BASE_URL", "traceparent"} {
		if configs.SensitiveName(n) {
			t.Errorf("SensitiveName(%q) = true", n)
		}
	}
}

func TestPlainHeader(t *testing.T) {
	for _, n := range []string{"Content-Type", "accept", "User-Agent", "X-Request-Id", "traceparent"} {
		if !configs.PlainHeader(n) {
			t.Errorf("PlainHeader(%q) = false", n)
		}
	}
	for _, n := range []string{"X-Auth-Token", "X-Scope-OrgID", "X-Synthetic", "Authorization", "Cookie", "Referer"} {
		if configs.PlainHeader(n) {
			t.Errorf("PlainHeader(%q) = true: a configured value would be shown and sent on across hosts", n)
		}
	}
}

func TestRedactText(t *testing.T) {
	r := configs.NewRedactor("hunter2-long-secret", "sh0rt", `q"uote&<secret>`)
	for _, c := range []struct{ in, want string }{
		{"GET http://user:pa55word@shop.example/login?x=1", "GET http://user:****@shop.example/login?x=1"},
		{"clone https://ghp_abcdef123456@github.example/x", "clone https://****@github.example/x"},
		{"http://shop.example/a?page=2&access_token=abc.def&sig=zz#frag", "http://shop.example/a?page=2&access_token=****&sig=****#frag"},
		{"grant_type=password&username=u&password=p%40ss", "grant_type=password&username=u&password=****"},
		{`{"user":"synthetic","password":"p\"w","n":1}`, `{"user":"synthetic","password":"****","n":1}`},
		{`{"token" : "abc", "Access_Token":"def"}`, `{"token" : "****", "Access_Token":"****"}`},
		{`"{\"password\":\"abc\",\"user\":\"u\"}"`, `"{\"password\":\"****\",\"user\":\"u\"}"`},
		{`body = "{\"access_token\":\"abcdefghijk`, `body = "{\"access_token\":\"****`},
		{"> X-Auth-Token: abc\n> Accept: */*\n< Set-Cookie: sid=1; HttpOnly", "> X-Auth-Token: ****\n> Accept: */*\n< Set-Cookie: ****"},
		{"Authorization: Bearer eyJhbGciOi.JIUzI1NiJ9", "Authorization: ****"},
		{`headers: {"Authorization":["Bearer eyJhbGciOi.JIUzI1NiJ9"]}`, `headers: {"Authorization":["Bearer ****"]}`},
		{"the hunter2-long-secret leaked, sh0rt did not", "the **** leaked, sh0rt did not"},
		{"escaped: q%22uote%26%3Csecret%3E and q&#34;uote&amp;&lt;secret&gt;", "escaped: **** and ****"},
		{"nothing to hide: status == 200 is false: status = 500", "nothing to hide: status == 200 is false: status = 500"},
		{"the basic scheme", "the basic scheme"},
		// a value masked by its place runs to a delimiter: a full stop after it goes too (README, "What is redacted")
		{"login failed for token=abc123.", "login failed for token=****"},
		{"sent Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "sent Bearer ****"},
	} {
		if got := r.String(c.in); got != c.want {
			t.Errorf("String(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
		if again := r.String(r.String(c.in)); again != r.String(c.in) {
			t.Errorf("String is not idempotent on %q: %q", c.in, again)
		}
	}
	if got := configs.RedactURL("https://u:p@h.example/x?token=t&q=1"); got != "https://u:****@h.example/x?token=****&q=1" {
		t.Errorf("RedactURL = %q", got)
	}
}

func TestRedactValue(t *testing.T) {
	r := configs.NewRedactor("planted-secret-1")
	v := map[string]any{
		"headers": map[string]string{"Set-Cookie": "sid=abc; HttpOnly", "Content-Type": "text/plain", "X-Echo": "planted-secret-1"},
		"json": map[string]any{"access_token": "abc", "expires_in": 3600.0, "nested": []any{map[string]any{"password": "x", "name": "n"}},
			"credentials": map[string]any{"user": "u", "list": []any{"a", 1.0}}},
		"versions": map[string]map[string]int{"v1": {"healthy": 2}},
		"count":    3,
	}
	got := r.Value(v)
	b, _ := json.Marshal(got)
	want := `{"count":3,"headers":{"Content-Type":"text/plain","Set-Cookie":"****","X-Echo":"****"},` +
		`"json":{"access_token":"****","credentials":{"list":["****",1],"user":"****"},"expires_in":3600,"nested":[{"name":"n","password":"****"}]},` +
		`"versions":{"v1":{"healthy":2}}}`
	if string(b) != want {
		t.Errorf("Value:\n got %s\nwant %s", b, want)
	}
	if v["json"].(map[string]any)["access_token"] != "abc" {
		t.Errorf("Value changed its argument")
	}
}

func TestRedactBytesKeepsBinary(t *testing.T) {
	r := configs.NewRedactor("planted-secret-1")
	png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00"), []byte("...planted-secret-1...")...)
	got := r.Bytes(png)
	if strings.Contains(string(got), "planted-secret-1") || !strings.HasPrefix(string(got), "\x89PNG\r\n\x1a\n\x00") {
		t.Errorf("Bytes(binary) = %q", got)
	}
}

// The config's redactor knows every value the config marks as secret.
func TestConfigRedactor(t *testing.T) {
	p := write(t, `
agent: {api_token: "${TOKEN}"}
checks:
  - name: a
    kind: http
    request:
      url: "http://synth:url-pass-1234@${HOST}/login?api_key=query-key-1234&page=22222222"
      headers: {X-Auth-Token: literal-header-1234, Accept: application/json-seq, Authorization: "Bearer bearer-in-header-1234"}
      body: '{"user":"synthetic","password":"body-pass-1234","note":"${NOTE_PASSWORD}","plain":"${PLAIN}"}'
      auth: {username: u, password: "${BASIC_PW}"}
notifiers:
  hook: {type: webhook, url: "https://ci.example/hook", secret: webhook-secret-1234}
  chat: {type: discord, url: "https://discord.com/api/webhooks/123456789/discord-token-1234"}
  am: {type: alertmanager, url: "http://alertmanager:9093", headers: {Authorization: "Bearer am-token-1234"}}
`)
	cfg, err := configs.Load(p, configs.Options{Environ: []string{"TOKEN=env-api-token-1234", "HOST=127.0.0.1:8080",
		"NOTE_PASSWORD=env-note-pass-1234", "PLAIN=not-a-secret-at-all", "BASIC_PW=basic-pw-1234"}})
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Redactor()
	for _, s := range []string{"env-api-token-1234", "url-pass-1234", "query-key-1234", "literal-header-1234",
		"bearer-in-header-1234", "body-pass-1234", "env-note-pass-1234", "basic-pw-1234", "webhook-secret-1234", "discord-token-1234", "am-token-1234",
		base64.StdEncoding.EncodeToString([]byte("u:basic-pw-1234")), base64.StdEncoding.EncodeToString([]byte("synth:url-pass-1234"))} {
		if got := r.String("x " + s + " y"); got != "x **** y" {
			t.Errorf("%s is not masked in free text: %q", s, got)
		}
	}
	for _, s := range []string{"127.0.0.1:8080", "not-a-secret-at-all", "application/json-seq", "22222222", "synthetic"} {
		if got := r.String("x " + s + " y"); got != "x "+s+" y" {
			t.Errorf("%s is not a secret but was masked: %q", s, got)
		}
	}
}

// FuzzRedact: any text, any secret. The output never contains the secret, and redacting
// twice changes nothing more.
func FuzzRedact(f *testing.F) {
	f.Add("GET http://u:p@h/x?token=abc&q=1 {\"password\":\"x\"}", "planted-secret")
	f.Add(`"{\"access_token\":\"\\\"abc\"}"`, "abcdef")
	f.Add("Set-Cookie: a=b\nAuthorization: Bearer xyzxyzxyz", "xyzxyzxyz")
	f.Fuzz(func(t *testing.T, text, secret string) {
		r := configs.NewRedactor(secret)
		out := r.String(text)
		if len(secret) >= configs.MinSecretLen && !strings.Contains(configs.Masked, secret) && strings.Contains(out, secret) {
			t.Fatalf("secret %q survived in %q (from %q)", secret, out, text)
		}
		if again := r.String(out); again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q", text, out, again)
		}
		// Text as bytes is redacted as the string is, whether or not anything changed.
		if utf8.ValidString(text) && !strings.ContainsRune(text, 0) {
			if got := string(r.Bytes([]byte(text))); got != out {
				t.Fatalf("Bytes(%q) = %q; String gives %q", text, got, out)
			}
		} else {
			_ = r.Bytes([]byte(text))
		}
	})
}

// Redacting variables copies only what it changes: a result with nothing to mask keeps its
// maps, and one with something to mask gets copies, its own maps untouched.
func TestRedactCopiesOnlyWhatChanges(t *testing.T) {
	red := configs.NewRedactor("hunter22")
	clean := map[string]any{"status": 200, "headers": map[string]string{"Server": "x"}, "json": map[string]any{"list": []any{"a"}}}
	out := red.Excerpts(clean, 400).(map[string]any)
	if reflect.ValueOf(out).UnsafePointer() != reflect.ValueOf(clean).UnsafePointer() {
		t.Error("a map with nothing to redact was copied")
	}
	dirty := map[string]any{"status": 200, "headers": map[string]string{"Server": "x", "X-Token": "hunter22"},
		"json": map[string]any{"list": []any{"a", "pw hunter22"}}, "body": "ok"}
	out = red.Excerpts(dirty, 400).(map[string]any)
	if got := out["headers"].(map[string]string)["X-Token"]; got != configs.Masked {
		t.Errorf("X-Token: %q", got)
	}
	if got := out["json"].(map[string]any)["list"].([]any)[1]; got != "pw "+configs.Masked {
		t.Errorf("list[1]: %q", got)
	}
	if dirty["headers"].(map[string]string)["X-Token"] != "hunter22" || dirty["json"].(map[string]any)["list"].([]any)[1] != "pw hunter22" {
		t.Errorf("the input was changed: %v", dirty)
	}
	if out["body"] != "ok" || out["status"] != 200 || out["headers"].(map[string]string)["Server"] != "x" {
		t.Errorf("unchanged values lost: %v", out)
	}
}

// FuzzRedactValue: any JSON answer. Value keeps its shape and masks every string held under
// a name that holds a credential; once the redactor has learned those strings, as a run
// learns what an answer hands out (checks' responseSecrets), no copy of one survives
// anywhere in it (the same token echoed under another name: found by this target), unless
// it is shorter than MinSecretLen.
func FuzzRedactValue(f *testing.F) {
	f.Add([]byte(`{"access_token":"abc","n":1,"list":[{"password":"p"}],"user":"u"}`))
	f.Add([]byte(`[{"Set-Cookie":["a","b"]},"x",null,true]`))
	f.Add([]byte(`{"0":"abc","":[{"pAss ":"abc"}]}`))
	f.Add([]byte(`{"echo":"tok3n-value","":[{"pAss ":"tok3n-value"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		before, _ := json.Marshal(v)
		bare := configs.NewRedactor("s3cr3t")
		for _, s := range configs.SensitiveValues(bare.Value(v)) {
			if s != "" && s != configs.Masked {
				t.Fatalf("%q under a credential name was not masked: %s", s, data)
			}
		}
		red := bare.With(configs.SensitiveValues(v)...)
		out, err := json.Marshal(red.Value(v))
		if err != nil {
			t.Fatalf("the redacted value does not encode: %v", err)
		}
		_ = red.Excerpts(v, 8)
		if after, _ := json.Marshal(v); string(after) != string(before) {
			t.Fatalf("redacting changed its input: %s, was %s", after, before)
		}
		for _, s := range configs.SensitiveValues(v) {
			// Shorter strings are masked under their names only: as copies elsewhere they
			// would mask common words (MinSecretLen).
			if len(s) >= configs.MinSecretLen && !strings.Contains(configs.Masked, s) && strings.Contains(string(out), `"`+s+`"`) {
				t.Fatalf("%q under a credential name survived: %s", s, out)
			}
		}
	})
}

// FuzzParseByteSize: store.max_size as written in a config.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"1GiB", "500MB", "1048576", "1.5 gb", "", "12 parsecs", "1e400TB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := configs.ParseByteSize(s)
		if err == nil && n < 0 {
			t.Fatalf("%q parsed to %d", s, n)
		}
	})
}

// FuzzParseDuration: durations as written in a config, days included.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"7d", "1d12h", "500ms", "d", "9999999999999d", "-3d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := configs.ParseDuration(s); err == nil && strings.HasSuffix(strings.TrimSpace(s), "d") && d < 0 {
			t.Fatalf("%q parsed to %s", s, d)
		}
	})
}
