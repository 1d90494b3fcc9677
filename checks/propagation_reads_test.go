package checks

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
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
