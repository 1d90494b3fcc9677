package agent

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// agent.shutdown_grace is how long runs in flight may finish after SIGTERM. A run whose
// target answers 4 s into the shutdown finishes under a grace of 1m and is cancelled under
// one of 1s; the default (10s) in place of either would fail one case.
func TestShutdownGraceBoundsRunsInFlight(t *testing.T) {
	for _, tc := range []struct {
		grace string
		want  string
	}{{"1s", "cancelled"}, {"1m", "answered"}} {
		t.Run(tc.grace, func(t *testing.T) {
			arrived, release, ended := make(chan struct{}), make(chan struct{}), make(chan string, 1)
			var once sync.Once
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				first := false
				once.Do(func() { first = true })
				if !first {
					return // a later run; the first one is the run in flight
				}
				close(arrived)
				select {
				case <-release:
					w.WriteHeader(http.StatusOK)
					ended <- "answered"
				case <-r.Context().Done():
					ended <- "cancelled"
				}
			}))
			t.Cleanup(srv.Close)
			t.Cleanup(func() {
				select {
				case <-release:
				default:
					close(release)
				}
			})
			l := launch(t, t.TempDir(), fmt.Sprintf(`
agent: {shutdown_grace: %s}
checks:
  - {name: slow, kind: http, every: 1s, timeout: 2m, retries: 0, request: {url: %q, timeout: 2m}}
`, tc.grace, srv.URL+"/"), Options{Logger: slog.New(slog.DiscardHandler)})
			select {
			case <-arrived:
			case <-time.After(20 * time.Second):
				_ = l.stop()
				t.Fatal("the check's first run did not reach the target in 20 s")
			}
			stopped := make(chan error, 1)
			go func() { stopped <- l.stop() }()
			timer := time.AfterFunc(4*time.Second, func() { close(release) })
			defer timer.Stop()
			var got string
			select {
			case got = <-ended:
			case <-time.After(30 * time.Second):
				t.Fatal("the run in flight neither finished nor was cancelled in 30 s")
			}
			if got != tc.want {
				t.Errorf("shutdown_grace %s: the run in flight was %s; want %s", tc.grace, got, tc.want)
			}
			if err := <-stopped; err != nil {
				t.Errorf("agent.Run: %v", err)
			}
		})
	}
}
