package browser

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// markerEnv is set in the test process's environment; Chromium and every helper it
// starts inherit it, which is how TestMain finds any process the tests left behind.
const markerEnv = "VIGIL_BROWSER_TEST_MARKER"

// shared is the pool most tests use: one browser for the package, as in production. It is
// nil when Chromium is not installed.
var shared *Pool

// noBrowser says why browser tests skip; "" when Chromium was found.
var noBrowser string

func TestMain(m *testing.M) {
	if _, err := Find("", nil); err != nil {
		if os.Getenv("VIGIL_REQUIRE_BROWSER") != "" {
			fmt.Fprintln(os.Stderr, "FAIL: VIGIL_REQUIRE_BROWSER is set and browser tests need Chromium:", err)
			os.Exit(1)
		}
		noBrowser = err.Error()
		fmt.Fprintln(os.Stderr, "browser tests that need Chromium are skipped:", err)
		os.Exit(m.Run())
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	marker := hex.EncodeToString(b)
	os.Setenv(markerEnv, marker)
	shared = NewPool(Options{Concurrency: 2})
	code := m.Run()
	shared.Close()
	if left := waitNoMarkedProcesses(marker, 10*time.Second); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: Chromium processes left running after the tests: %v\n", left)
		code = 1
	}
	os.Exit(code)
}

// needBrowser skips the test when Chromium is missing (and VIGIL_REQUIRE_BROWSER unset).
func needBrowser(t testing.TB) {
	t.Helper()
	if noBrowser != "" {
		t.Skip("Chromium is not installed (set VIGIL_REQUIRE_BROWSER=1 to make this a failure): " + noBrowser)
	}
}

// proc is one process as /proc/PID/stat shows it.
type proc struct {
	pid, ppid int
	comm      string
	state     byte
}

// procs lists every process on the machine.
func procs() []proc {
	entries, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		if comm, state, ppid, ok := parseStat(stat); ok {
			out = append(out, proc{pid: pid, ppid: ppid, comm: comm, state: state})
		}
	}
	return out
}

// markedProcesses lists live (non-zombie) processes whose environment carries marker.
func markedProcesses(marker string) []string {
	want := []byte(markerEnv + "=" + marker)
	var out []string
	for _, p := range procs() {
		if p.pid == os.Getpid() || p.state == 'Z' {
			continue
		}
		if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.pid)); err == nil && bytes.Contains(env, want) {
			out = append(out, fmt.Sprintf("%d(%s)", p.pid, p.comm))
		}
	}
	return out
}

func waitNoMarkedProcesses(marker string, limit time.Duration) []string {
	deadline := time.Now().Add(limit)
	for {
		left := markedProcesses(marker)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// site is a loopback web server with the test pages.
type site struct {
	URL string
	mux *http.ServeMux
	srv *http.Server
	// inFlight and maxInFlight count concurrent requests to /slow-doc.
	inFlight, maxInFlight atomic.Int32
	// hits counts requests by path.
	mu   sync.Mutex
	hits map[string]int
	reqs []*http.Request
}

func newSite(t testing.TB) *site {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &site{URL: "http://" + ln.Addr().String(), mux: http.NewServeMux(), hits: map[string]int{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		s.mu.Unlock()
		s.mux.ServeHTTP(w, r)
	})}
	go s.srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.srv.Shutdown(ctx)
		s.srv.Close()
	})
	return s
}

func (s *site) html(path, body string) {
	if path == "/" {
		path = "/{$}" // not a catch-all: a missing script must 404
	}
	s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, body)
	})
}

func (s *site) js(path, body string) {
	s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/javascript")
		fmt.Fprint(w, body)
	})
}

func (s *site) hitCount(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// requestsTo returns the requests the site received for path.
func (s *site) requestsTo(path string) []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*http.Request
	for _, r := range s.reqs {
		if r.URL.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// hang is a handler that answers only when the client goes away or the test ends.
func hang(started chan<- struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if started != nil {
			select {
			case started <- struct{}{}:
			default:
			}
		}
		select {
		case <-r.Context().Done():
		case <-time.After(time.Minute):
		}
	}
}

// visit runs v on p within timeout.
func visit(t testing.TB, p *Pool, timeout time.Duration, v *Visit) (*Report, time.Duration, error) {
	t.Helper()
	if v.Logf == nil {
		v.Logf = func(f string, a ...any) { t.Logf("  "+f, a...) }
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	rep, err := p.Visit(ctx, v)
	return rep, time.Since(start), err
}

// checkEnded fails the test only on a gross hang: wall-clock time on a shared 2-core
// machine is not a test signal, but a visit that overran its timeout by seconds is the
// bug this package exists to prevent.
func checkEnded(t *testing.T, took, timeout time.Duration) {
	t.Helper()
	t.Logf("ended after %s (timeout %s)", took.Round(time.Millisecond), timeout)
	if took > timeout+5*time.Second {
		t.Fatalf("the visit took %s, far past its %s timeout", took, timeout)
	}
}

func problems(r *Report) string { return strings.Join(r.Problems(), "\n") }
