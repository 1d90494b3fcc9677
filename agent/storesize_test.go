package agent

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// storeFiles is the size of the SQLite database with its WAL and shared-memory files.
func storeFiles(t testing.TB, dir string) int64 {
	files, _ := filepath.Glob(filepath.Join(dir, "vigil.db*"))
	var n int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func metricsText(t testing.TB, l *launched) string {
	var b strings.Builder
	mfs, _, err := l.a.gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.GetCounter() != nil {
				fmt.Fprintf(&b, "%s{} %v\n", mf.GetName(), m.GetCounter().GetValue())
			}
		}
	}
	return b.String()
}

// emptyStore is the size of a new store's files, closed.
// checkRuns is how many runs the agent's checks have made (vigil_check_runs_total).
func checkRuns(t testing.TB, l *launched) int64 {
	ran := int64(0)
	for _, line := range strings.Split(metricsText(t, l), "\n") {
		if strings.HasPrefix(line, "vigil_check_runs_total{") {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			ran += int64(v)
		}
	}
	return ran
}

func emptyStore(t testing.TB) int64 {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	return storeFiles(t, dir)
}

// storeSeconds is how long the store-size tests run: a few seconds in the suite,
// VIGIL_STORE_SECONDS=60 for the figure in docs/RELIABILITY.md.
func storeSeconds() time.Duration {
	if n, err := strconv.Atoi(os.Getenv("VIGIL_STORE_SECONDS")); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 5 * time.Second
}

// TestStoreGrowthIsBounded is issue 11's measurement: four checks whose target answers
// 1 MiB, every second. The store grew by the whole body per run (585 MB a minute); now a
// passing run keeps a few KiB, with store_body an excerpt, and a failing run with store_body
// its evidence up to 256 KiB, while store.max_size bounds the whole store.
func TestStoreGrowthIsBounded(t *testing.T) {
	page := bytes.Repeat([]byte(`{"item":"0123456789abcdef"},`), (1<<20)/28)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/broken" {
			w.WriteHeader(http.StatusInternalServerError)
		}
		_, _ = w.Write(page)
	}))
	defer srv.Close()
	for _, c := range []struct {
		name, check, store string
		perRun             int64 // bytes per run at most
		total              int64 // bytes of store files at most, 0: no bound
	}{
		{name: "default", check: "request: {url: %q}", perRun: 16 << 10},
		{name: "store_body", check: "store_body: true\n    request: {url: %q}", perRun: 32 << 10},
		{name: "store_body-failing-max_size", check: "store_body: true\n    request: {url: \"%s/broken\"}",
			store: "store: {max_size: 2MB}", total: 3e6},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var yaml strings.Builder
			fmt.Fprintf(&yaml, "%s\ndefaults: {every: 1s, timeout: 5s, retries: 0}\nchecks:\n", c.store)
			for i := range 4 {
				fmt.Fprintf(&yaml, "  - name: big-%d\n    kind: http\n    "+c.check+"\n", i, srv.URL)
			}
			l := launch(t, dir, yaml.String(), Options{})
			before := emptyStore(t)
			// At least storeSeconds, and at least 8 runs: under -race on a busy machine a
			// run of a 1 MiB answer can take more than its second (3 runs in 5 s were seen).
			began := time.Now()
			for time.Since(began) < storeSeconds() || checkRuns(t, l) < 8 {
				if time.Since(began) > 3*time.Minute {
					t.Fatalf("only %d runs in 3 minutes", checkRuns(t, l))
				}
				time.Sleep(250 * time.Millisecond)
			}
			took := time.Since(began)
			if err := l.stop(); err != nil {
				t.Fatal(err)
			}
			after := storeFiles(t, dir)
			st, err := store.Open(context.Background(), filepath.Join(dir, "vigil.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			n, _ := st.CountRuns(context.Background())
			ran := checkRuns(t, l)
			per := (after - before) / max(n, 1)
			rate := fmt.Sprintf("a minute at this rate: %.1f MB", float64(after-before)/took.Minutes()/1e6)
			if c.total > 0 {
				rate = "bounded by " + c.store
			}
			t.Logf("reliability: store, %s: %d runs of 1 MiB answers in %s, %d kept: store %.2f MB -> %.2f MB, %d bytes per kept run; %s",
				c.name, ran, took.Round(time.Second), n, float64(before)/1e6, float64(after)/1e6, per, rate)
			if c.total == 0 && per > c.perRun {
				t.Errorf("%d bytes per run, want at most %d", per, c.perRun)
			}
			if c.total > 0 && after > c.total {
				t.Errorf("the store is %d bytes, over max_size and its slack (%d)", after, c.total)
			}
		})
	}
}
