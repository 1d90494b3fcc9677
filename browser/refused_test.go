package browser

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// After a deploy with old and new servers side by side, the new page names hashed files an
// old server does not have, and a server with an SPA fallback answers them with the site's
// page: text/html, 200 OK. Chromium refuses a module script (Vite's <script type=module>)
// and a script sent with nosniff: the app never starts, and there was no exception and no
// failed request, so a check without wait_for passed the dead page and one with it only
// said its element never showed. An inline script the page's Content-Security-Policy
// blocks never runs either. Each is a failed script now, named with why; a file whose
// request failed is counted once, and the scripts a browser does run are not counted.
func TestScriptsTheBrowserRefused(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	other := strings.Replace(s.URL, "127.0.0.1", "localhost", 1)
	const index = `<!doctype html><title>Shop</title><div id=app></div>`
	// The old server's SPA fallback: any unknown file is the site's page.
	s.mux.HandleFunc("/assets/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Query().Has("nosniff") {
			w.Header().Set("X-Content-Type-Options", "nosniff")
		}
		fmt.Fprint(w, index)
	})
	s.js("/app.js", `document.getElementById('app').dataset.ready = 1`)
	// A CDN that sends scripts as text/plain and no nosniff: browsers run them.
	s.mux.HandleFunc("/plain.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, `document.getElementById('app').dataset.ready = 1`)
	})
	s.mux.HandleFunc("/moved.js", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/gone.js", http.StatusFound) })
	withCSP := func(path, policy, body string) {
		s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set(strings.SplitN(policy, ": ", 2)[0], strings.SplitN(policy, ": ", 2)[1])
			fmt.Fprint(w, body)
		})
	}
	s.html("/module", index+`<script type=module src="/assets/index-3f9a1c.js"></script>`)
	s.html("/nosniff", index+`<script src="/assets/main-3f9a1c.js?nosniff=1"></script>`)
	withCSP("/inline", "Content-Security-Policy: script-src 'self'", index+"\n\n<script>document.getElementById('app').dataset.ready = 1</script>")
	s.html("/missing", index+`<script src="/gone.js"></script><script type=module src="/gone.mjs"></script>`)
	s.html("/redirected", index+`<script src="/moved.js"></script>`)
	withCSP("/foreign", "Content-Security-Policy: script-src 'self'", index+`<script src="`+other+`/app.js"></script>`)
	s.html("/fine", index+`<script type=module src="/app.js"></script><script src="/plain.js"></script>`)
	withCSP("/report-only", "Content-Security-Policy-Report-Only: script-src 'self'", index+`<script>document.getElementById('app').dataset.ready = 1</script>`)
	withCSP("/nonce", "Content-Security-Policy: script-src 'nonce-r4nd0m'", index+`<script nonce=r4nd0m>document.getElementById('app').dataset.ready = 1</script>`)

	for _, c := range []struct {
		path string
		want []string // the failed requests, sorted
	}{
		{"/module", []string{"GET " + s.URL + "/assets/index-3f9a1c.js: answered 200 OK as text/html, which the browser refused to run (script)"}},
		{"/nosniff", []string{"GET " + s.URL + "/assets/main-3f9a1c.js?nosniff=1: answered 200 OK as text/html, which the browser refused to run (script)"}},
		{"/inline", []string{s.URL + "/inline: inline script at line 3 blocked by the page's Content-Security-Policy (script-src-elem in \"script-src 'self'\"): it never ran (script)"}},
		{"/missing", []string{"GET " + s.URL + "/gone.js: 404 Not Found (script)", "GET " + s.URL + "/gone.mjs: 404 Not Found (script)"}},
		{"/redirected", []string{"GET " + s.URL + "/gone.js: 404 Not Found (script)"}},
		{"/foreign", []string{"GET " + other + "/app.js: ", "(blocked: csp) (script)"}},
		{"/fine", nil},
		{"/report-only", nil},
		{"/nonce", nil},
	} {
		t.Run(strings.TrimPrefix(c.path, "/"), func(t *testing.T) {
			v := &Visit{URL: s.URL + c.path}
			if c.want == nil {
				v.WaitFor = "#app[data-ready]"
			}
			rep, took, err := visit(t, shared, 15*time.Second, v)
			checkEnded(t, took, 15*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range rep.FailedRequests {
				got = append(got, f.String())
			}
			if len(rep.Exceptions)+len(rep.ConsoleErrors) > 0 || !rep.WaitForFound {
				t.Errorf("found %t, problems:\n%s", rep.WaitForFound, problems(rep))
			}
			if c.path == "/foreign" && len(got) == 1 && strings.HasPrefix(got[0], c.want[0]) && strings.HasSuffix(got[0], c.want[1]) {
				return
			}
			slices.Sort(got)
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("failed requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			for _, f := range rep.FailedRequests {
				if f.Type != "script" {
					t.Errorf("%s: type %q, want script", f, f.Type)
				}
			}
		})
	}
}

func TestDecodeRefusal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want refusal
		bad  bool
	}{
		{in: `{"t":"load","k":"script","u":"http://h/a.js#x"}`, want: refusal{typ: "script", url: "http://h/a.js"}},
		{in: `{"t":"load","k":"stylesheet","u":"http://h/a.css"}`, want: refusal{typ: "stylesheet", url: "http://h/a.css"}},
		{in: `{"t":"csp","m":"script-src-elem","s":"script-src 'self'","u":"http://h/","l":3,"c":-2}`,
			want: refusal{typ: "script", url: "http://h/", line: 3, directive: "script-src-elem", policy: "script-src 'self'"}},
		{in: `{"t":"load","k":"image","u":"http://h/a.png"}`, bad: true},
		{in: `{"t":"load","k":"script"}`, bad: true},
		{in: `{"t":"csp","u":"http://h/"}`, bad: true},
		{in: `{"t":"error","m":"x"}`, bad: true},
		{in: `[]`, bad: true},
	} {
		got, err := decodeRefusal(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("%s: got %+v, %v; want %+v (bad %t)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// FuzzDecodeRefusal: the payload comes from the page, which can call the binding with
// anything before the injected script hides it.
func FuzzDecodeRefusal(f *testing.F) {
	f.Add(`{"t":"load","k":"script","u":"http://h/a.js"}`)
	f.Add(`{"t":"csp","m":"script-src-elem","s":"script-src 'self'","u":"http://h/","l":3,"c":9}`)
	f.Fuzz(func(t *testing.T, in string) {
		rf, err := decodeRefusal(in)
		if err != nil {
			return
		}
		if rf.typ != "script" && rf.typ != "stylesheet" {
			t.Fatalf("type %q", rf.typ)
		}
		if len(rf.url) > maxURL+len("…") || len(rf.policy) > maxPolicy+len("…") || len(rf.directive) > 100+len("…") || rf.line < 0 || rf.col < 0 {
			t.Fatalf("unbounded: %+v", rf)
		}
		r := newRecorder()
		r.addRefusal(rf)
		for _, f := range r.refusedFiles() {
			_ = f.String()
		}
	})
}
