package main

import (
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// A check that stored fewer runs than the whole intervals of the window counts as short by
// the difference, one that stored none by all of them; a window's edge holding one more
// run of a check than its length says is no loss.
func TestMissingRuns(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vigil.db")
	s, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
	to := from.Add(20*time.Second + time.Millisecond) // 20 whole intervals of 1 s, and an edge
	var runs []*store.RunRecord
	add := func(check string, at time.Time) {
		runs = append(runs, &store.RunRecord{Check: check, Kind: "http", Started: at, Outcome: "pass", Attempts: 1, Reasons: []string{}})
	}
	for i := range 21 { // c0: 21 runs, the last in the window's last millisecond
		add("c0", from.Add(time.Duration(i)*time.Second))
	}
	for i := range 20 { // c1: 20, at the window's far end of each second
		add("c1", from.Add(time.Duration(i)*time.Second+999*time.Millisecond))
	}
	for i := range 20 { // c2: 17 (three lost)
		if i%6 != 5 {
			add("c2", from.Add(time.Duration(i)*time.Second+500*time.Millisecond))
		}
	}
	add("c3", from.Add(-time.Second)) // before the window: c3 stored none of its 20
	add("c3", to.Add(edgeLag))        // and after it, later than a run may start late
	for i := range 20 {               // c4: 20, the last due in the window's last 2 ms and started 3 ms late, after it
		at := from.Add(time.Duration(i)*time.Second + 999500*time.Microsecond)
		if i == 19 {
			at = at.Add(3 * time.Millisecond)
		}
		add("c4", at)
	}
	if err := s.SaveRuns(ctx, runs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		checks int
		want   int
	}{{5, 3 + 20}, {6, 3 + 20 + 20}, {3, 3}} { // told of fewer checks than it found: no negative count
		got, err := missingRuns(path, from, to, c.checks, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%d checks: %d runs missing, want %d", c.checks, got, c.want)
		}
	}
	n, err := countRuns(path, from, to)
	if err != nil || n != 21+20+17+19 { // c4's last started after the window
		t.Fatalf("countRuns: %d, %v; want %d", n, err, 21+20+17+19)
	}
}

// The status page's views are counted as a browser gets them: gzipped when the server
// compresses, as many as asked, and a page that is not 200 fails the bench.
func TestViewPage(t *testing.T) {
	var views, gzipped atomic.Int32
	page := strings.Repeat("<tr><td>check</td></tr>", 10000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		views.Add(1)
		if r.URL.Path != "/" {
			http.Error(w, "no such page", http.StatusNotFound)
			return
		}
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			gzipped.Add(1)
			w.Header().Set("Content-Encoding", "gzip")
			z := gzip.NewWriter(w)
			_, _ = z.Write([]byte(page))
			_ = z.Close()
			return
		}
		_, _ = w.Write([]byte(page))
	}))
	defer srv.Close()
	slowest, size, err := viewPage(srv.URL+"/", 3)
	if err != nil || slowest <= 0 || size <= 0 || size >= len(page)/10 || views.Load() != 3 || gzipped.Load() != 3 {
		t.Errorf("viewPage: slowest %v, %d bytes (page %d), %v; %d views, %d asked gzip", slowest, size, len(page), err, views.Load(), gzipped.Load())
	}
	if _, _, err := viewPage(srv.URL+"/missing", 1); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a page answered 404: %v", err)
	}
	if _, _, err := viewPage("http://127.0.0.1:1/", 1); err == nil {
		t.Error("a page nobody serves: no error")
	}
}

// viewPageAtOnce asks at once: the server answers only once all k asks are in (or fails
// them after 10 s), so views one after the other would fail.
func TestViewPageAtOnce(t *testing.T) {
	const k = 4
	var in sync.WaitGroup
	in.Add(k)
	all := make(chan struct{})
	go func() { in.Wait(); close(all) }()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.Done()
		select {
		case <-all:
			_, _ = w.Write([]byte("<p>page</p>"))
		case <-time.After(10 * time.Second):
			http.Error(w, "the others did not come", http.StatusGatewayTimeout)
		}
	}))
	defer srv.Close()
	if slowest, err := viewPageAtOnce(srv.URL+"/", k); err != nil || slowest <= 0 {
		t.Errorf("%d at once: slowest %v, %v", k, slowest, err)
	}
	if _, err := viewPageAtOnce("http://127.0.0.1:1/", 2); err == nil {
		t.Error("a page nobody serves: no error")
	}
}
