package checks

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// A compressed answer is judged as the service sent it and as it reads: the
// Content-Encoding header is there to assert on whether Go asked for gzip itself (and
// decoded it) or the request asked for it (and vigil decodes it); deflate too; a gzip bomb
// is cut at max_body_bytes; a body that is not in the coding it names (its header or its
// checksum), whoever asked for the coding, fails, and one whose stream ends early is an
// error, as any body that breaks off; a coding vigil
// does not decode is left as sent, and the transcript says so.
func TestCompressedAnswers(t *testing.T) {
	const doc = `{"status":"up"}`
	var gz, zl bytes.Buffer
	w := gzip.NewWriter(&gz)
	fmt.Fprint(w, doc)
	w.Close()
	z := zlib.NewWriter(&zl)
	fmt.Fprint(z, doc)
	z.Close()
	var bomb bytes.Buffer
	w = gzip.NewWriter(&bomb)
	_, _ = w.Write(bytes.Repeat([]byte("0"), 8<<20))
	w.Close()
	srv := serve(t, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		body, coding := []byte(doc), ""
		accept := r.Header.Get("Accept-Encoding")
		switch {
		case r.URL.Path == "/bomb":
			body, coding = bomb.Bytes(), "gzip"
		case r.URL.Path == "/liar":
			coding = "gzip"
		case r.URL.Path == "/corrupt": // a checksum that does not match
			body, coding = append(bytes.Clone(gz.Bytes()[:gz.Len()-8]), 0, 0, 0, 0, 0, 0, 0, 0), "gzip"
			body = append(body[:len(body)-4], gz.Bytes()[gz.Len()-4:]...)
		case r.URL.Path == "/cut": // the stream ends early: the body broke off
			body, coding = gz.Bytes()[:gz.Len()/2], "gzip"
		case r.URL.Path == "/br" && strings.Contains(accept, "br"):
			body, coding = []byte{0x0b, 0x07, 0x80}, "br"
		case strings.Contains(accept, "gzip"):
			body, coding = gz.Bytes(), "gzip"
		case strings.Contains(accept, "deflate"):
			body, coding = zl.Bytes(), "deflate"
		}
		if coding != "" {
			rw.Header().Set("Content-Encoding", coding)
		}
		rw.Header().Set("Content-Length", fmt.Sprint(len(body)))
		_, _ = rw.Write(body)
	}))
	check := func(path, headers string, asserts ...string) *Result {
		t.Helper()
		return run(t, buildOne(t, fmt.Sprintf(`
checks:
  - name: api
    kind: http
    request: {url: "%s%s", max_body_bytes: 65536%s}
    assert: [%s]
`, srv.URL, path, headers, `"`+strings.Join(asserts, `", "`)+`"`)), Input{})
	}
	wantOutcome(t, check("/", "", "headers['Content-Encoding'] == 'gzip'", "json.status == 'up'", "content_length == -1"), Pass)
	wantOutcome(t, check("/", ", headers: {Accept-Encoding: gzip}", "headers['Content-Encoding'] == 'gzip'", "json.status == 'up'"), Pass)
	wantOutcome(t, check("/", ", headers: {Accept-Encoding: deflate}", "headers['Content-Encoding'] == 'deflate'", "json.status == 'up'"), Pass)
	wantOutcome(t, check("/bomb", ", headers: {Accept-Encoding: gzip}", "body_truncated", "len(body) == 65536"), Pass)
	wantOutcome(t, check("/liar", ", headers: {Accept-Encoding: gzip}", "status == 200"), Fail,
		"200 OK, but the body says Content-Encoding: gzip and is not")
	// The same when Go asked for gzip itself (no Accept-Encoding of the check's own), which
	// was an error, "the body broke off after 0 bytes", retried as if the service were silent.
	wantOutcome(t, check("/liar", "", "status == 200"), Fail, "200 OK, but the body says Content-Encoding: gzip and is not: gzip: invalid header")
	wantOutcome(t, check("/corrupt", "", "status == 200"), Fail, "the body says Content-Encoding: gzip and is not: gzip: invalid checksum")
	wantOutcome(t, check("/corrupt", ", headers: {Accept-Encoding: gzip}", "status == 200"), Fail, "gzip: invalid checksum")
	wantOutcome(t, check("/cut", "", "status == 200"), Error, "the body broke off", "unexpected EOF")
	res := check("/br", ", headers: {Accept-Encoding: br}", "headers['Content-Encoding'] == 'br'", "json == nil")
	wantOutcome(t, res, Pass)
	if !strings.Contains(strings.Join(res.Transcript, "\n"), "the body is br-encoded, which vigil does not decode") {
		t.Errorf("transcript: %q", res.Transcript)
	}
}

// A body that looks like JSON and does not parse says why, where json is nil: nested
// past encoding/json's 10,000 levels, or not one value.
func TestJSONThatDoesNotParseSaysWhy(t *testing.T) {
	deep := strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000)
	srv := serve(t, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/deep" {
			fmt.Fprint(rw, deep)
			return
		}
		fmt.Fprint(rw, `{"a":1} {"b":2}`)
	}))
	for path, why := range map[string]string{"/deep": "exceeded max depth", "/two": "invalid character"} {
		res := run(t, buildOne(t, fmt.Sprintf(`
checks:
  - name: api
    kind: http
    request: {url: "%s%s"}
    assert: ["json != nil"]
`, srv.URL, path)), Input{})
		wantOutcome(t, res, Fail, "the body looks like JSON and does not parse: ", why)
	}
}
