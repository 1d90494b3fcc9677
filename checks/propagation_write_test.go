package checks

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPropagationCleanupAfterAWriteWithNoAnswer: the write committed the marker and then
// gave no answer within its timeout (a slow commit acknowledgement, a proxy that dropped
// the response). The run is an error, and retried: each retry writes a new marker. The
// first one landed all the same, so it is cleaned up like any other; before, only a write
// that answered was, and every timed-out write left its marker behind.
func TestPropagationCleanupAfterAWriteWithNoAnswer(t *testing.T) {
	f := newFeed()
	done := testDone(t)
	store := f.writer(http.StatusCreated)
	w := serve(t, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			store(rw, r)
			return
		}
		store(httptestDiscard{}, r) // committed...
		hang(done)(rw, r)           // ...and never acknowledged
	}))
	r := serve(t, f.replica(0))
	c := buildOne(t, fmt.Sprintf(`
checks:
  - name: feed-propagation
    kind: propagation
    timeout: 5s
    write: {url: "%s/api/items", body: '{"marker":"{{ .Nonce }}"}', headers: {Content-Type: application/json}, timeout: 300ms}
    read: ["%s/api/items"]
    cleanup: {url: "%s/api/items/{{ .Nonce }}"}
`, w.URL, r.URL, w.URL))
	res := run(t, c, Input{})
	wantOutcome(t, res, Error, "write: POST ", "no complete answer within 300ms")
	f.mu.Lock()
	var written []string
	for m := range f.items {
		written = append(written, m)
	}
	f.mu.Unlock()
	if len(written) != 1 {
		t.Fatalf("markers written: %q, want one", written)
	}
	if got := f.deletions(); !slices.Equal(got, written) {
		t.Fatalf("cleaned up %q; the write that timed out had stored %q, which stays behind\ntranscript:\n%s",
			got, written, strings.Join(res.Transcript, "\n"))
	}
	if res.Duration > 4*time.Second {
		t.Errorf("the run took %s", res.Duration)
	}
}

// httptestDiscard is a ResponseWriter whose answer goes nowhere.
type httptestDiscard struct{}

func (httptestDiscard) Header() http.Header         { return http.Header{} }
func (httptestDiscard) Write(b []byte) (int, error) { return len(b), nil }
func (httptestDiscard) WriteHeader(int)             {}
