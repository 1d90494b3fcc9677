package browser

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// A single-page app's route chunk is fetched with import() in a task after its module
// ran, which does not hold the load event back. After a deploy the chunk may be missing
// (a hashed file an old server does not have): a visit without wait_for ended at the load
// event and saw nothing. It now waits for the page to settle, and sees the 404 and the
// rejection. A page with an open long poll and event stream settles all the same, and
// one that polls without pause is judged once the wait's bound is reached.
func TestLazyChunkAfterTheLoadEvent(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	const index = `<!doctype html><title>Shop</title><div id=app></div>`
	s.js("/assets/index.js", `setTimeout(() => import('/assets/route-3f9a1c.js').then((m) => m.render()), 0)`)
	// The CDN asks the origin, which no longer has the file: the 404 takes a second.
	s.mux.HandleFunc("/assets/route-3f9a1c.js", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Second)
		http.NotFound(w, r)
	})
	s.js("/assets/route-ok.js", `export function render() { document.getElementById('app').dataset.ready = 1 }`)
	s.js("/assets/live.js", `setTimeout(() => import('/assets/route-ok.js').then((m) => m.render()), 0);
fetch('/poll'); new EventSource('/events');`)
	s.js("/assets/busy.js", `const ping = () => fetch('/ping').then(() => setTimeout(ping, 50)); ping()`)
	s.mux.HandleFunc("/poll", hang(nil))
	s.mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": hello\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	s.mux.HandleFunc("/ping", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		fmt.Fprint(w, "pong")
	})
	s.html("/", index+`<script type=module src="/assets/index.js"></script>`)
	s.html("/live", index+`<script type=module src="/assets/live.js"></script>`)
	s.html("/busy", index+`<script type=module src="/assets/busy.js"></script>`)
	for _, c := range []struct{ name, path, want, says string }{
		{"missing chunk", "/", "GET " + s.URL + "/assets/route-3f9a1c.js: 404 Not Found (script)\nunhandled rejection: TypeError: Failed to fetch dynamically imported module: " + s.URL + "/assets/route-3f9a1c.js", ""},
		{"long poll", "/live", "", "settled: nothing sent or received for 500ms after the load event"},
		{"polling", "/busy", "", "the page was still sending, receiving or loading code 3s after the load event: judged as it is"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			var log []string
			v := &Visit{URL: s.URL + c.path, Logf: func(f string, a ...any) {
				mu.Lock()
				defer mu.Unlock()
				log = append(log, fmt.Sprintf(f, a...))
				t.Logf("  "+f, a...)
			}}
			rep, took, err := visit(t, shared, 20*time.Second, v)
			checkEnded(t, took, 20*time.Second)
			if err != nil || !rep.Loaded {
				t.Fatalf("err %v, loaded %t", err, rep.Loaded)
			}
			var got []string
			for _, f := range rep.FailedRequests {
				got = append(got, f.String())
			}
			for _, e := range rep.Exceptions {
				got = append(got, strings.SplitN(e.String(), " (", 2)[0])
			}
			if strings.Join(got, "\n") != c.want || len(rep.ConsoleErrors) > 0 {
				t.Errorf("problems:\n%s\nwant:\n%s", problems(rep), c.want)
			}
			mu.Lock()
			defer mu.Unlock()
			if !strings.Contains(strings.Join(log, "\n"), c.says) {
				t.Errorf("the transcript does not say %q", c.says)
			}
		})
	}
}
