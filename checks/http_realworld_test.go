package checks

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// httpCheck builds and runs an http check of url with extra request keys and asserts.
func httpCheck(t *testing.T, url, extra string, asserts ...string) *Result {
	t.Helper()
	return run(t, buildOne(t, fmt.Sprintf(`
checks:
  - name: api
    kind: http
    timeout: 5s
    request: {url: "%s"%s}
    assert: [%s]
`, url, extra, `"`+strings.Join(asserts, `", "`)+`"`)), Input{})
}

// A body is read as a browser reads it: a UTF-8 byte order mark (.NET, a file saved on
// Windows) is dropped, so json parses and json.PATH extracts; a body in the charset its
// Content-Type names is decoded to UTF-8, so a Latin-1 or Shift JIS page is matched with
// the text a visitor sees; a body left in br is not touched; body_bytes counts the bytes
// read. Before, json was nil after a BOM and `body contains 'café'` was false on a Latin-1
// page.
func TestBodiesReadAsABrowserReadsThem(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/bom":
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			_, _ = w.Write([]byte("\xEF\xBB\xBF{\"status\":\"up\",\"v\":\"2\"}"))
		case "/latin1":
			w.Header().Set("Content-Type", "text/html; charset=ISO-8859-1")
			_, _ = w.Write([]byte("<p>Caf\xe9 M\xfcller</p>"))
		case "/sjis":
			w.Header().Set("Content-Type", `text/plain; charset="Shift_JIS"`)
			_, _ = w.Write([]byte{0x93, 0xfa, 0x96, 0x7b}) // 日本
		case "/unknown":
			w.Header().Set("Content-Type", "text/plain; charset=x-nonesuch")
			_, _ = w.Write([]byte("caf\xe9"))
		case "/br":
			w.Header().Set("Content-Type", "text/plain; charset=iso-8859-1")
			w.Header().Set("Content-Encoding", "br")
			_, _ = w.Write([]byte{0x0b, 0xe9, 0x80})
		}
	}))
	wantOutcome(t, httpCheck(t, srv.URL+"/bom", "", "json.status == 'up'", "body startsWith '{'", "body_bytes == 26"), Pass)
	wantOutcome(t, httpCheck(t, srv.URL+"/latin1", "", "body contains 'Café Müller'", "body_bytes == 18"), Pass)
	res := httpCheck(t, srv.URL+"/sjis", "", "body == '日本'")
	wantOutcome(t, res, Pass)
	if tr := strings.Join(res.Transcript, "\n"); !strings.Contains(tr, "the body is in shift_jis: body and json read it decoded to UTF-8") {
		t.Errorf("transcript: %s", tr)
	}
	res = httpCheck(t, srv.URL+"/unknown", "", "body startsWith 'caf'", "!(body contains 'é')")
	wantOutcome(t, res, Pass)
	if tr := strings.Join(res.Transcript, "\n"); !strings.Contains(tr, `charset "x-nonesuch" is not one vigil knows`) {
		t.Errorf("transcript: %s", tr)
	}
	wantOutcome(t, httpCheck(t, srv.URL+"/br", ", headers: {Accept-Encoding: br}", "body_bytes == 3", "!(body contains 'é')"), Pass)

	// A journey extracts from a body with a BOM too.
	res = run(t, buildOne(t, fmt.Sprintf(`
checks:
  - name: flow
    kind: script
    steps:
      - {request: {url: "%[1]s/bom"}, extract: {v: json.v}}
      - {request: {url: "%[1]s/latin1?v={{ .v }}"}, assert: ["vars.v == '2'"]}
`, srv.URL)), Input{})
	wantOutcome(t, res, Pass)
}

// Cookies are kept as a browser keeps them. A service that sets a cookie and redirects to
// a page that sends a client without it back (a session set on the way to a login-only
// page, a cookie check) is followed through, where vigil without a jar looped until the 20
// redirect limit and failed a page every visitor reaches. A journey's later steps send the
// cookies its earlier steps were given (a login's session), and the next run starts with
// none.
func TestCookiesKeptAsABrowserKeepsThem(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "seen", Value: "1", Path: "/"})
		http.Redirect(w, r, "/page", http.StatusFound)
	})
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		if _, err := r.Cookie("seen"); err != nil {
			http.Redirect(w, r, "/start", http.StatusFound)
			return
		}
		fmt.Fprint(w, "welcome")
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if _, err := r.Cookie("session"); err == nil {
			http.Error(w, "a new run must start without the last one's session", http.StatusConflict)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "s3cr3t-session", Path: "/", HttpOnly: true})
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/cart", func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("session"); err != nil || c.Value != "s3cr3t-session" {
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"items":[]}`)
	})
	srv := serve(t, mux)

	wantOutcome(t, httpCheck(t, srv.URL+"/page", "", "status == 200", "body == 'welcome'", "redirects == 2"), Pass)
	// Not following redirects, the first answer is judged as it is.
	wantOutcome(t, httpCheck(t, srv.URL+"/page", ", follow_redirects: false", "status == 302"), Pass)

	c := buildOne(t, fmt.Sprintf(`
checks:
  - name: shop
    kind: script
    steps:
      - {name: login, request: {method: POST, url: "%[1]s/login"}}
      - {name: cart, request: {url: "%[1]s/cart"}, assert: ["status == 200", "json.items == []"]}
`, srv.URL))
	for i := range 2 {
		res := run(t, c, Input{})
		wantOutcome(t, res, Pass)
		if tr := strings.Join(res.Transcript, "\n"); strings.Contains(tr, "s3cr3t-session") {
			t.Errorf("run %d: the session cookie is in the transcript:\n%s", i+1, tr)
		}
	}
}

// An answer whose body breaks off is an error, not a judged answer: a Content-Length that
// promises more than the server sends before it closes, and a body dripped slower than the
// request's timeout (a slow-loris answer) both end in error, the latter within about the
// timeout.
func TestBodiesThatBreakOff(t *testing.T) {
	done := testDone(t)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/long":
			w.Header().Set("Content-Length", "100")
			_, _ = w.Write([]byte("short"))
		case "/drip":
			for {
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-done:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}
	}))
	wantOutcome(t, httpCheck(t, srv.URL+"/long", "", "status == 200"), Error, "200 OK, but the body broke off after 5 bytes", "unexpected EOF")
	start := time.Now()
	wantOutcome(t, httpCheck(t, srv.URL+"/drip", ", timeout: 500ms", "status == 200"), Error,
		"200 OK, but the body broke off after", "timed out: no complete answer within 500ms")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a dripping body held the run %s", d)
	}
}
