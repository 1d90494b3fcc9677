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

	// Until the agent has read the store's history its rows say they count in part, and
	// stop saying so between any two pages: the page settles once it is read. (The
	// checks, every 24 h, have their first runs spread over the day.)
	select {
	case <-l.a.HistoryRead():
	case <-time.After(20 * time.Second):
		t.Fatal("the history was not read within 20 s")
	}
	var first, short, hinted string
	// The bars are the last 24 hours in half-hour bars: pages made across a half-hour
	// boundary differ in every bar's time, so such a set is made again.
	for range 2 {
		bucket := time.Now().Truncate(30 * time.Minute)
		l.a.pageSizes.mu.Lock()
		l.a.pageSizes.sizes = nil // no hint yet, on the second try too
		l.a.pageSizes.mu.Unlock()
		first = get() // no hint yet
		if !built.MatchString(first) || strings.Contains(first, buildMarker) {
			t.Fatalf("the footer does not say how long the page took: %q", first[max(0, strings.Index(first, "<footer")):])
		}
		if len(l.a.pageSizes.sizes) == 0 {
			t.Fatal("no page size kept after a page was rendered")
		}
		for name := range l.a.pageSizes.sizes {
			l.a.pageSizes.set(name, 1)
		}
		short = get()
		hinted = get() // with the hint of the page before
		if time.Now().Truncate(30 * time.Minute).Equal(bucket) {
			break
		}
	}
	for what, page := range map[string]string{"a hint of a byte": short, "the last page's size": hinted} {
		if a, b := normal(page), normal(first); a != b {
			i := 0
			for i < min(len(a), len(b)) && a[i] == b[i] {
				i++
			}
			t.Errorf("with %s the page differs from the one with no hint (%d bytes against %d), from %q against %q", what, len(page), len(first),
				a[max(0, i-40):min(len(a), i+80)], b[max(0, i-40):min(len(b), i+80)])
		}
		if n := strings.Count(page, `<tr class="check"`); n != 50 || !strings.HasSuffix(strings.TrimSpace(page), "</html>") {
			t.Errorf("with %s: %d check rows, ends %q", what, n, page[max(0, len(page)-20):])
		}
	}
}
