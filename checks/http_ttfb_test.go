package checks

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// ttfb_ms is the time to the final answer, not to a 1xx sent in front of it: a deploy that
// adds 103 Early Hints before a backend grown slow must not read as a faster service. The
// server sends its 1xx at once and its final answer 300 ms later, so ttfb_ms must be at
// least 300 (a lower bound on a deliberate delay, not a speed).
func TestTTFBIsTheFinalAnswers(t *testing.T) {
	const delay = 300 * time.Millisecond
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/early-hints":
			w.Header().Set("Link", "</app.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
		case "/continue":
			_, _ = io.ReadAll(r.Body) // reading the body is what sends the 100 Continue
		}
		time.Sleep(delay)
		_, _ = io.WriteString(w, "ok")
	}))
	for _, tc := range []struct{ name, path, extra string }{
		{"103 Early Hints", "/early-hints", ""},
		{"100 Continue", "/continue", `, method: POST, body: "{}", headers: {Expect: 100-continue}`},
		{"no 1xx", "/plain", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := httpCheck(t, srv.URL+tc.path, tc.extra, "status == 200 && body == 'ok'", "ttfb_ms >= 300", "ttfb_ms <= duration_ms")
			wantOutcome(t, res, Pass)
		})
	}
}

// A trace that watches 1xx answers lifts Go's own bound on them: vigil keeps it, so a
// server that sends 1xx answers without end fails as an answer no client reads (as Go's
// own bound made it), not a check that reads until its timeout.
func TestEndlessInformationalAnswersAreBounded(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Link", "</"+strings.Repeat("a", 4000)+".css>; rel=preload")
		for range 100 { // 100 × 4 KB: more than the 256 KiB cap
			w.WriteHeader(http.StatusEarlyHints)
		}
		w.Header().Del("Link")
		_, _ = io.WriteString(w, "ok")
	}))
	wantOutcome(t, httpCheck(t, srv.URL, "", "status == 200"), Fail, "informational (1xx) answers", "no HTTP client can read the answer")
}
