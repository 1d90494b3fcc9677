package checks

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestPropagationReaderThatStopsAnswering: reader b answers twice without the marker, then
// goes away (scaled down, its process gone: connections refused). What b would have shown
// after its last answer is unknown, so "never showed the marker within 1s" was a claim
// about 0.9 s in which b was not read at all, and a fail that can roll a deploy back. It is
// an error, as a reader that never answered is, saying since when it gave no answer.
func TestPropagationReaderThatStopsAnswering(t *testing.T) {
	f := newFeed()
	w := serve(t, f.writer(http.StatusCreated))
	a := serve(t, f.replica(0))
	var n atomic.Int64
	var b *httptest.Server
	slow := f.replica(time.Hour)
	b = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		slow(rw, r)
		if n.Add(1) == 2 {
			go b.Close() // after this answer, nothing listens
		}
	}))
	t.Cleanup(b.Close)
	c := buildOne(t, fmt.Sprintf(`
checks:
  - name: feed-propagation
    kind: propagation
    timeout: 1s
    poll: 50ms
    write: {url: "%s/api/items", body: '{"marker":"{{ .Nonce }}"}', headers: {Content-Type: application/json}}
    read:
      - {name: a, request: {url: "%s/api/items"}}
      - {name: b, request: {url: "%s/api/items"}}
`, w.URL, a.URL, b.URL))
	res := run(t, c, Input{})
	wantOutcome(t, res, Error, "b stopped answering", "connection refused")
}

// TestPropagationStaleReaderWithOneLostRead: a reader that answers without the marker all
// along and loses only its last read (a reset) is still stale: that one read does not make
// the rest of its answers unknown.
func TestPropagationStaleReaderWithOneLostRead(t *testing.T) {
	f := newFeed()
	w := serve(t, f.writer(http.StatusCreated))
	slow := f.replica(time.Hour)
	var first atomic.Int64
	b := serve(t, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		first.CompareAndSwap(0, time.Now().UnixNano())
		if time.Since(time.Unix(0, first.Load())) > 750*time.Millisecond { // from here on, every read is reset
			if c, _, err := http.NewResponseController(rw).Hijack(); err == nil {
				c.Close()
				return
			}
		}
		slow(rw, r)
	}))
	c := buildOne(t, fmt.Sprintf(`
checks:
  - name: feed-propagation
    kind: propagation
    timeout: 1s
    poll: 100ms
    backoff: {factor: 1, max: 600ms}
    write: {url: "%s/api/items", body: '{"marker":"{{ .Nonce }}"}', headers: {Content-Type: application/json}}
    read: [{name: b, request: {url: "%s/api/items"}}]
`, w.URL, b.URL))
	wantOutcome(t, run(t, c, Input{}), Fail, "1 of 1 readers never showed the marker", ": b")
}
