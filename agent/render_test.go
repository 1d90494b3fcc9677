package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The page tells how long it took to build, in place of the layout's marker, and a buffer
// sized from the page before never changes what is sent: a page longer than the hint (the
// hint set to a byte) is whole, and the same page as with no hint at all.
func TestRenderBuildTimeAndSizeHint(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv.Close()
	var cfg strings.Builder
	cfg.WriteString("checks:\n")
	for i := range 50 {
		fmt.Fprintf(&cfg, "  - {name: c%02d, kind: http, every: 24h, timeout: 2s, request: {url: %q}}\n", i, srv.URL+"/")
	}
	l := launch(t, t.TempDir(), cfg.String(), Options{})
	defer func() {
		if err := l.stop(); err != nil {
			t.Error(err)
		}
	}()
	h := l.a.Handler()
	get := func() string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("status page: %d", rec.Code)
		}
		return rec.Body.String()
	}
	built := regexp.MustCompile(`page built in <span id="build-time">\d+\.\d ms *</span> at [0-9: Z-]+`)
	normal := func(page string) string { return built.ReplaceAllString(page, "BUILT") }

	first := get() // no hint yet
	// The agent runs every check once as it starts: the page settles once they are done
	// and the history is read.
	for deadline := time.Now().Add(20 * time.Second); ; {
		next := get()
		if normal(next) == normal(first) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the status page did not settle within 20 s")
		}
		first = next
		time.Sleep(100 * time.Millisecond)
	}
	if !built.MatchString(first) || strings.Contains(first, buildMarker) {
		t.Fatalf("the footer does not say how long the page took: %q", first[max(0, strings.Index(first, "<footer")):])
	}
	if len(l.a.pageSizes.sizes) == 0 {
		t.Fatal("no page size kept after a page was rendered")
	}
	for name := range l.a.pageSizes.sizes {
		l.a.pageSizes.set(name, 1)
	}
	short := get()
	hinted := get() // with the hint of the page before
	for what, page := range map[string]string{"a hint of a byte": short, "the last page's size": hinted} {
		if normal(page) != normal(first) {
			t.Errorf("with %s the page differs from the one with no hint (%d bytes against %d)", what, len(page), len(first))
		}
		if n := strings.Count(page, `<tr class="check"`); n != 50 || !strings.HasSuffix(strings.TrimSpace(page), "</html>") {
			t.Errorf("with %s: %d check rows, ends %q", what, n, page[max(0, len(page)-20):])
		}
	}
}
