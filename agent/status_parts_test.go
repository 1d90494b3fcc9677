package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The overview sent in parts, each redacted alone, is the page its template and rows make
// whole, redacted whole: secrets from the config (a header's value, also used as a label)
// and secrets by place (a URL's password, a token= pair, a Bearer token) are masked the
// same, in rows spread over several batches and groups. Text that looks like a rows
// marker reaches the page escaped and is never taken for one.
func TestOverviewPartsRedactAsTheWhole(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv.Close()
	var cfg strings.Builder
	cfg.WriteString("checks:\n")
	notes := []string{"planted-page-secret", "http://ops:pw-in-url-99@example.test/x", "token=abcdefgh123", "Bearer xyzxyzxyz42", rowsMarkPrefix + "0-->"}
	for i := range 90 {
		fmt.Fprintf(&cfg, "  - {name: c%02d, kind: http, every: 24h, timeout: 2s, request: {url: %q, headers: {X-Api-Key: planted-page-secret}}, labels: {team: t%d, note: %q}}\n",
			i, srv.URL+"/", i%3, notes[i%len(notes)])
	}
	l := launch(t, t.TempDir(), cfg.String(), Options{})
	defer func() {
		if err := l.stop(); err != nil {
			t.Error(err)
		}
	}()
	<-l.a.HistoryRead()
	built := regexp.MustCompile(`<span id="build-time">[^<]*</span> at [0-9: Z-]+`)
	for _, q := range []string{"/", "/?group=label:team", "/?group=kind&closed=kind-http"} {
		var sent, want string
		// The bars are the last 24 hours in half-hour bars: two pages made across a
		// half-hour boundary differ in every bar's time, so such a pair is made again.
		for range 2 {
			bucket := time.Now().Truncate(30 * time.Minute)
			// Sent: through redactOutput, in parts.
			rec := httptest.NewRecorder()
			l.a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, q, nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("%s: %d", q, rec.Code)
			}
			sent = rec.Body.String()
			// Whole: the handler alone writes the parts unredacted, one after another.
			whole := httptest.NewRecorder()
			l.a.statusPage(whole, httptest.NewRequest(http.MethodGet, q, nil))
			want = string(l.a.redactor().Bytes(whole.Body.Bytes()))
			if time.Now().Truncate(30 * time.Minute).Equal(bucket) {
				break
			}
		}
		if a, b := built.ReplaceAllString(sent, ""), built.ReplaceAllString(want, ""); a != b {
			i := 0
			for i < min(len(a), len(b)) && a[i] == b[i] {
				i++
			}
			t.Errorf("%s: redacted in parts, the page differs from the page redacted whole at %d: %q against %q", q, i,
				a[max(0, i-60):min(len(a), i+60)], b[max(0, i-60):min(len(b), i+60)])
		}
		rows := strings.Count(sent, `<tr class="check"`)
		if strings.Contains(q, "closed") {
			if rows != 0 {
				t.Errorf("%s: %d rows in a closed group", q, rows)
			}
		} else if rows != 90 {
			t.Errorf("%s: %d check rows; want 90", q, rows)
		}
		for _, s := range []string{"planted-page-secret", "pw-in-url-99", "abcdefgh123", "xyzxyzxyz42", rowsMarkPrefix, buildMarker} {
			if strings.Contains(sent, s) {
				t.Errorf("%s: the page holds %q", q, s)
			}
		}
		if rows > 0 && !strings.Contains(sent, "&lt;!--vigil:rows:0--&gt;") {
			t.Errorf("%s: the label that looks like a marker is not on the page, escaped", q)
		}
	}
}

// pageParts writes each group's rows in its marker's place, in batches of about rowsBatch
// that end at a row's end, and leaves what is not a marker of one of the groups as it is,
// going on past it.
// The build time goes into the last part.
func TestPageParts(t *testing.T) {
	row := func(name string) *rowView {
		return &rowView{Name: name, Kind: "http", Class: "ok", State: "passing", Reason: strings.Repeat("r", 3000)}
	}
	var g0, g1 []*rowView
	for i := range 50 {
		g0 = append(g0, row(fmt.Sprintf("a%02d", i)))
	}
	g1 = append(g1, row("b00"))
	groups := []*groupView{{Rows: g0}, {Rows: nil, index: 1}, {Rows: g1, index: 2}}
	page := "<h1>x</h1>\n" + groups[0].RowsMark() + "</table>\n" + groups[1].RowsMark() + "</table>\n" +
		rowsMarkPrefix + "7-->" + groups[2].RowsMark() + "<footer>" + buildMarker + "</footer>"
	var out bytes.Buffer
	var sizes []int
	for p := range pageParts([]byte(page), groups, time.Now().Add(-time.Millisecond)) {
		if len(p) > rowsBatch+4096 {
			t.Errorf("a part of %d bytes", len(p))
		}
		if bytes.Contains(p, []byte(`<tr class="check"`)) && !bytes.HasSuffix(p, []byte("</tr>\n")) {
			t.Errorf("a part of rows ends %q", p[max(0, len(p)-20):])
		}
		sizes = append(sizes, len(p))
		out.Write(p)
	}
	var want []byte
	want = append(want, "<h1>x</h1>\n"...)
	for _, r := range g0 {
		want = r.appendHTML(want)
	}
	want = append(want, "</table>\n</table>\n"+rowsMarkPrefix+"7-->"...)
	want = g1[0].appendHTML(want)
	want = append(want, "<footer>"...)
	got := out.String()
	if !strings.HasPrefix(got, string(want)) {
		t.Fatalf("the parts make %q...; want %q...", got[:min(len(got), 200)], want[:200])
	}
	if !regexp.MustCompile(`<footer>\d+\.\d ms *</footer>$`).MatchString(got) {
		t.Errorf("the page ends %q", got[max(0, len(got)-60):])
	}
	if len(sizes) < 4 {
		t.Errorf("parts of %v bytes: the rows of the first group were not cut into batches", sizes)
	}
	// A reader that stops early stops the parts.
	n := 0
	for range pageParts([]byte(page), groups, time.Now()) {
		if n++; n == 2 {
			break
		}
	}
}

// A reader that has gone stops the page: the rows after are not made.
func TestOverviewStopsWhenTheReaderHasGone(t *testing.T) {
	var cfg strings.Builder
	cfg.WriteString("checks:\n")
	for i := range 200 {
		fmt.Fprintf(&cfg, "  - {name: c%03d, kind: http, every: 24h, timeout: 2s, request: {url: \"http://127.0.0.1:9/\"}}\n", i)
	}
	l := launch(t, t.TempDir(), cfg.String(), Options{})
	defer func() {
		if err := l.stop(); err != nil {
			t.Error(err)
		}
	}()
	<-l.a.HistoryRead()
	ctx, cancel := context.WithCancel(context.Background())
	rec := &cancelAfter{ResponseRecorder: httptest.NewRecorder(), n: 2 * rowsBatch, cancel: cancel}
	l.a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
	all := httptest.NewRecorder()
	l.a.Handler().ServeHTTP(all, httptest.NewRequest(http.MethodGet, "/", nil))
	got, want := strings.Count(rec.Body.String(), `<tr class="check"`), strings.Count(all.Body.String(), `<tr class="check"`)
	if want != 200 || got == 0 || got >= want {
		t.Errorf("%d rows sent to a reader that left after %d bytes, %d to one that stayed", got, rec.n, want)
	}
}

// cancelAfter cancels the request once n bytes were written, as a reader that leaves.
type cancelAfter struct {
	*httptest.ResponseRecorder
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	if c.Body.Len()+len(p) >= c.n {
		c.cancel()
	}
	return c.ResponseRecorder.Write(p)
}

// failingIndex is an overview whose template fails after the rows' markers: its events
// cannot be read.
type failingIndex struct{ *indexView }

func (failingIndex) Events() ([]*eventView, error) { return nil, errors.New("planted failure") }

// A page whose template fails answers 500 and nothing of the page, though its rows would
// have been written after the template ran: never half a page.
func TestOverviewThatFailsSendsNothingOfIt(t *testing.T) {
	l := launch(t, t.TempDir(), "checks: []\n", Options{})
	defer func() {
		if err := l.stop(); err != nil {
			t.Error(err)
		}
	}()
	g := &groupView{Name: "g", Key: "g", Checks: 1, Rows: []*rowView{{Name: "planted-row", Kind: "http", Class: "ok", State: "pass"}}}
	for _, v := range []any{&indexView{Groups: []*groupView{g}}, failingIndex{&indexView{Groups: []*groupView{g}}}} {
		rec := httptest.NewRecorder()
		l.a.redactOutput(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			l.a.render(w, "index.html", v, time.Now())
		})).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		body := rec.Body.String()
		if _, failing := v.(failingIndex); failing {
			if rec.Code != http.StatusInternalServerError || strings.Contains(body, "planted-row") || strings.Contains(body, "<html") {
				t.Errorf("a page that failed: %d, %q", rec.Code, body[:min(len(body), 200)])
			}
		} else if rec.Code != http.StatusOK || !strings.Contains(body, "planted-row") || !strings.Contains(body, "</html>") {
			t.Errorf("the same page that did not fail: %d, %d bytes, its row there: %v", rec.Code, len(body), strings.Contains(body, "planted-row"))
		}
	}
}

// Every rows marker in the templates starts a line, and a row ends one: a part of the
// overview never ends inside a line, which the redaction by place reads whole (a header
// line). Editing the template otherwise would break what the parts rest on.
func TestRowsMarksStartLines(t *testing.T) {
	src, err := templateFS.ReadFile("templates/index.html")
	if err != nil {
		t.Fatal(err)
	}
	n := strings.Count(string(src), "{{.RowsMark}}")
	if n == 0 || strings.Count(string(src), "\n{{.RowsMark}}") != n {
		t.Errorf("index.html has %d rows markers, %d of them at a line's start", n, strings.Count(string(src), "\n{{.RowsMark}}"))
	}
	row := (&rowView{Name: "a\nb", Kind: "http", Reason: "x\ny"}).appendHTML(nil)
	if !bytes.HasSuffix(row, []byte("</tr>\n")) {
		t.Errorf("a row ends %q", row[max(0, len(row)-20):])
	}
}
