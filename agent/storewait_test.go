package agent

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// An agent on SQLite tells /metrics how long its writes waited for their turn: its
// heartbeat in the store, its readiness probe, each batch of runs. Without the store's
// observer set the histogram stays empty and this waits out its limit.
func TestStoreWriteWaitsAreMeasured(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", "checks:\n  - {name: home, kind: http, every: 1s, request: {url: \""+tg.srv.URL+"/\"}}\n")
	count := regexp.MustCompile(`(?m)^vigil_store_write_wait_seconds_count (\d+)$`)
	var last string
	eventually(t, 30*time.Second, "write waits counted on /metrics", func() bool {
		resp, err := http.Get(h.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := count.FindSubmatch(b)
		if m == nil {
			t.Fatalf("no vigil_store_write_wait_seconds_count on /metrics")
		}
		last = string(m[1])
		n, _ := strconv.Atoi(last)
		return n >= 3
	})
	t.Logf("writes counted: %s", last)
}
