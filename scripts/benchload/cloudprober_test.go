package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The peer's runs are what the target counts: a request at peerPath counts; vigil's, beside
// it, and asking the count do not.
func TestTargetCountsWhatItServes(t *testing.T) {
	srv := httptest.NewServer(targetHandler())
	defer srv.Close()
	n0, err := served(srv.URL + "/")
	if err != nil || n0 != 0 {
		t.Fatalf("before any request: %d, %v", n0, err)
	}
	for i := range 9 {
		path := peerPath
		if i%3 == 2 {
			path = "/" // vigil's
		}
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", path, resp.Status)
		}
		resp.Body.Close()
	}
	for range 2 { // asking twice changes nothing
		if n, err := served(srv.URL); err != nil || n != 6 {
			t.Fatalf("after 6 requests at peerPath and 3 elsewhere: %d, %v", n, err)
		}
	}
}

func TestProbeCounters(t *testing.T) {
	const page = `# TYPE total counter
total{ptype="http",probe="c0",dst="127.0.0.1"} 10 1764835200000
total{ptype="http",probe="c1",dst="127.0.0.1"} 12
success{ptype="http",probe="c0",dst="127.0.0.1"} 10
success{ptype="http",probe="c1",dst="127.0.0.1"} 9
total_bytes{probe="x"} 1000
latency{ptype="http",probe="c0",dst="127.0.0.1"} 2091.420
`
	for _, tc := range []struct {
		name, body     string
		total, success int
		bad            string // in the error, when it must fail
	}{
		{name: "two probes", body: page, total: 22, success: 19},
		{name: "no counters", body: "uptime_msec 5\n", bad: "no total or success"},
		{name: "a value that is no number", body: `total{probe="c0"} ten` + "\n", bad: "ten"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(tc.body)) }))
			defer srv.Close()
			total, success, err := probeCounters(srv.URL)
			if tc.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("want an error naming %q, got %d %d %v", tc.bad, total, success, err)
				}
				return
			}
			if err != nil || total != tc.total || success != tc.success {
				t.Fatalf("got total %d success %d (%v), want %d %d", total, success, err, tc.total, tc.success)
			}
		})
	}
}
