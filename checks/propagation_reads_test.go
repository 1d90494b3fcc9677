package checks

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// item serves GET /api/items/{marker}: the item once it is committed at least lag ago,
// else a 404 whose body names the path asked, as Spring Boot's, Express's and many
// frameworks' error pages do.
func (f *feed) item(lag time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m := strings.TrimPrefix(r.URL.Path, "/api/items/")
		f.mu.Lock()
		at, ok := f.items[m]
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if !ok || time.Since(at) < lag {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]any{"status": 404, "error": "Not Found", "path": r.URL.Path})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"marker": m})
	}
}

// TestPropagationAnErrorPageIsNoShowing: the reader asks for the item by its marker
// (GET /api/items/{{ .Nonce }}) and answers 404 until its 400 ms lag has passed, with an
// error page that names the path asked, marker and all. The body contained the marker, so
// the first read "showed" it and the run passed at 0 ms on a reader that had nothing. Only
// a 2xx answer shows the marker now, whatever the match.
func TestPropagationAnErrorPageIsNoShowing(t *testing.T) {
	const lag = 400 * time.Millisecond
	f := newFeed()
	w, r := serve(t, f.writer(http.StatusCreated)), serve(t, f.item(lag))
	for _, match := range []string{"", `, match: {contains: '{{ .Nonce }}'}`, `, match: {expr: 'body contains nonce'}`} {
		t.Run(match, func(t *testing.T) {
			c := buildOne(t, fmt.Sprintf(`
checks:
  - name: p
    kind: propagation
    timeout: 3s
    poll: 50ms
    write: {url: "%s/api/items", body: '{"marker":"{{ .Nonce }}"}'}
    read:
      - {name: by-id, request: {url: "%s/api/items/{{ .Nonce }}"}%s}
`, w.URL, r.URL, match))
			res := run(t, c, Input{})
			wantOutcome(t, res, Pass)
			if got := res.Vars["propagation_ms"].(float64); got < float64(lag.Milliseconds())-10 {
				t.Fatalf("propagation measured %.0fms; the reader answered 404 for %s", got, lag)
			}
		})
	}
}

// roundRobin hands each request to the next backend in turn, as a request-level balancer
// (nginx, Envoy, an L7 cloud balancer) does.
func roundRobin(backends ...http.Handler) http.HandlerFunc {
	var mu sync.Mutex
	n := 0
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := backends[n%len(backends)]
		n++
		mu.Unlock()
		h.ServeHTTP(w, r)
	}
}

// TestPropagationReaderBehindABalancerWithOneLaggingBackend: the reader is a balancer over
// three replicas, one a second behind, and each read lands on the next. The first read that
// landed on a replica with the marker ended the reader: the run passed at about 0 ms while
// one read in three, for a second, did not show the item. Now a reader shows the marker when
// `confirm` reads in a row (3 by default, on new connections) show it; a read without it in
// between starts over, and the time measured is the first read of the run that held.
func TestPropagationReaderBehindABalancerWithOneLaggingBackend(t *testing.T) {
	const lag = time.Second
	f := newFeed()
	w := serve(t, f.writer(http.StatusCreated))
	lb := serve(t, roundRobin(f.replica(0), f.replica(lag), f.replica(0)))
	c := buildOne(t, fmt.Sprintf(`
checks:
  - name: p
    kind: propagation
    timeout: 5s
    poll: 50ms
    backoff: {factor: 1, max: 50ms}
    write: {url: "%s/api/items", body: '{"marker":"{{ .Nonce }}"}'}
    read: [{name: replicas, request: {url: "%s/api/items"}}]
`, w.URL, lb.URL))
	res := run(t, c, Input{})
	wantOutcome(t, res, Pass)
	if got := res.Vars["propagation_ms"].(float64); got < float64(lag.Milliseconds())/2 { // the streak's first read, up to 2 reads before the lagging one; margins for a busy CI
		t.Fatalf("propagation measured %.0fms; one replica of three behind the reader is %s behind", got, lag)
	}
	t.Logf("measured %.0fms", res.Vars["propagation_ms"].(float64))
	if tr := strings.Join(res.Transcript, "\n"); !strings.Contains(tr, "then did not") {
		t.Errorf("the transcript does not say the marker came and went:\n%s", tr)
	}
}

// draining answers 503, as a pod being drained behind its balancer, or a proxy with no
// healthy upstream, does.
var draining = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "no healthy upstream", http.StatusServiceUnavailable)
})

// TestPropagationReaderAnsweringServerErrors: a 5xx answer is the reader failing to
// answer, which says nothing of the marker. Behind a balancer where one of two pods is
// draining (503 every other read) and the other has the marker at once, the 503s broke
// every run of reads that showed it (a2e6f1f): the run failed, or measured the last
// run's start, near the timeout. They now neither count toward nor break the run. A
// reader that answered nothing but 5xx until the timeout could not be read: `error`
// (retried), where it was a `fail` saying it never showed the marker.
func TestPropagationReaderAnsweringServerErrors(t *testing.T) {
	f := newFeed()
	w := serve(t, f.writer(http.StatusCreated))
	check := func(reader string) *Check {
		return buildOne(t, fmt.Sprintf(`
checks:
  - name: p
    kind: propagation
    timeout: 2s
    poll: 50ms
    backoff: {factor: 1, max: 50ms}
    write: {url: "%s/api/items", body: '{"marker":"{{ .Nonce }}"}'}
    read: [{name: r, request: {url: "%s/api/items"}}]
`, w.URL, reader))
	}
	t.Run("one pod draining", func(t *testing.T) {
		res := run(t, check(serve(t, roundRobin(f.replica(0), draining)).URL), Input{})
		wantOutcome(t, res, Pass)
		if got := res.Vars["propagation_ms"].(float64); got > 500 {
			t.Fatalf("propagation measured %.0fms; the pod that answers had the marker at once", got)
		}
	})
	t.Run("only server errors", func(t *testing.T) {
		res := run(t, check(serve(t, draining).URL), Input{})
		wantOutcome(t, res, Error, "no answer from 1 of 1 readers", "r answered only server errors", "503 no healthy upstream")
	})
}
