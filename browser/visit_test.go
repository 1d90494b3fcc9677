package browser

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestGoodPagePasses(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/", `<!doctype html><title>Shop</title><link rel=stylesheet href=/app.css>
<div id=app></div><script src=/app.js></script>`)
	s.mux.HandleFunc("/app.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		w.Write([]byte("#app{color:#333}"))
	})
	s.js("/app.js", `document.getElementById('app').textContent = 'ready'; document.getElementById('app').dataset.ready = '1';`)
	rep, err, took := visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 20*time.Second)
	if err != nil {
		t.Fatalf("visit: %v", err)
	}
	if p := problems(rep); p != "" {
		t.Errorf("a good page reported problems:\n%s", p)
	}
	if rep.Status != 200 || rep.Title != "Shop" || !rep.Loaded || !rep.WaitForFound || !strings.HasPrefix(rep.URL, s.URL) {
		t.Errorf("report: status %d title %q loaded %t found %t url %q", rep.Status, rep.Title, rep.Loaded, rep.WaitForFound, rep.URL)
	}
	if rep.Requests < 3 {
		t.Errorf("requests = %d, want the document, the script and the stylesheet", rep.Requests)
	}
	if rep.Timings.Load <= 0 || rep.Timings.TTFB <= 0 {
		t.Errorf("timings not measured: %+v", rep.Timings)
	}
	if rep.Screenshot != nil {
		t.Errorf("a passing visit took a screenshot (%d bytes)", len(rep.Screenshot))
	}
}
