package checks

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/configs"
)

// buildOne loads a config holding one check and compiles it, as `vigil validate` would.
func buildOne(t *testing.T, yaml string) *Check {
	t.Helper()
	list, err := buildYAML(t, yaml)
	if err != nil {
		t.Fatalf("config does not build:\n%v\n--- config ---\n%s", err, yaml)
	}
	if len(list) != 1 {
		t.Fatalf("want one check, got %d", len(list))
	}
	return list[0]
}

func buildYAML(t *testing.T, yaml string) ([]*Check, error) {
	t.Helper()
	cfg, err := configs.Parse(t.TempDir()+"/vigil.yaml", []byte(yaml), configs.Options{Environ: []string{}})
	if err != nil {
		return nil, err
	}
	client := NewHTTPClient("vigil-test")
	t.Cleanup(client.CloseIdle)
	return Build(cfg, Deps{HTTP: client})
}

// wantBuildError asserts the config is rejected with every one of the fragments in one message.
func wantBuildError(t *testing.T, yaml string, fragments ...string) {
	t.Helper()
	_, err := buildYAML(t, yaml)
	if err == nil {
		t.Fatalf("config was accepted; want an error with %q\n%s", fragments, yaml)
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		all := true
		for _, f := range fragments {
			if !strings.Contains(line, f) {
				all = false
			}
		}
		if all {
			return
		}
	}
	t.Fatalf("no error line has all of %q; got:\n%v", fragments, err)
}

func run(t *testing.T, c *Check, in Input) *Result {
	t.Helper()
	res := c.Run(context.Background(), in)
	t.Logf("%s: %s %v (%s)", c.Name, res.Outcome, res.Reasons, res.Duration.Round(time.Millisecond))
	return res
}

func wantOutcome(t *testing.T, res *Result, want Outcome, reasonFragments ...string) {
	t.Helper()
	if res.Outcome != want {
		t.Fatalf("outcome %s, want %s; reasons %q\ntranscript:\n%s", res.Outcome, want, res.Reasons, strings.Join(res.Transcript, "\n"))
	}
	all := strings.Join(res.Reasons, "\n")
	for _, f := range reasonFragments {
		if !strings.Contains(all, f) {
			t.Fatalf("reasons %q lack %q\ntranscript:\n%s", res.Reasons, f, strings.Join(res.Transcript, "\n"))
		}
	}
}

// wantNotServed fails unless res is inconclusive as the startup rules read it: news that
// the deploy's version did not answer (Result.NotServed) when notServed, nothing to
// measure otherwise.
func wantNotServed(t *testing.T, res *Result, notServed bool) {
	t.Helper()
	if res.Outcome != Inconclusive || res.NotServed != notServed {
		t.Errorf("%s, NotServed %v; want inconclusive with NotServed %v: %q", res.Outcome, res.NotServed, notServed, res.Reasons)
	}
}

// serve starts a loopback server that stops at the test's end.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// closedURL is a loopback URL nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// hang is a handler that never answers, until the client goes away or the test ends.
func hang(done <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// Read the body first: only then does the server watch the connection, so the
		// request's context ends when the client gives up (a POST would otherwise hang on).
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}
}

// testDone is closed when the test ends, releasing hanging handlers before servers close.
func testDone(t *testing.T) <-chan struct{} {
	ch := make(chan struct{})
	t.Cleanup(func() { close(ch) })
	return ch
}

// hugeBody streams n bytes of filler after prefix, as a hostile server would.
func hugeBody(prefix string, n int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(prefix))
		chunk := []byte(strings.Repeat(`"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",`, 1024))
		for sent := int64(0); sent < n; sent += int64(len(chunk)) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
}

// poolApp is seed 001's service: a pool of 10 database connections, and a call to a
// third-party API that blocks. The bad version holds its connection during that call, so
// it is fine at one client and queues at fifty, and (like Hikari's leak detector) it logs
// "WARNING: Possible connection leak detected" whenever a connection is held longer than
// the leak threshold.
type poolApp struct {
	pool      chan struct{}
	call      time.Duration // the blocking third-party call
	threshold time.Duration // leak detection
	bad       bool

	logMu  sync.Mutex
	logf   *os.File // appended to, like a logger's file
	leaks  atomic.Int64
	served atomic.Int64
}

func newPoolApp(t *testing.T, logPath string, bad bool) (*poolApp, *httptest.Server) {
	a := &poolApp{pool: make(chan struct{}, 10), call: 200 * time.Millisecond, threshold: 150 * time.Millisecond, bad: bad}
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		a.logf = f
	}
	return a, serve(t, a)
}

func (a *poolApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case a.pool <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	acquired := time.Now()
	query := func() { time.Sleep(time.Millisecond) }
	thirdParty := func() { time.Sleep(a.call) }
	query()
	if a.bad {
		thirdParty() // the defect: the connection is held through the blocking call
	}
	held := time.Since(acquired)
	<-a.pool
	if !a.bad {
		thirdParty()
	}
	if held > a.threshold {
		a.leaks.Add(1)
		a.log(fmt.Sprintf("WARNING: Possible connection leak detected. Connection held for %s by %s", held.Round(time.Millisecond), r.URL.Path))
	}
	a.log("INFO: served " + r.URL.Path)
	a.served.Add(1)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintln(w, `{"feed":[1,2,3]}`)
}

func (a *poolApp) log(msg string) {
	if a.logf == nil {
		return
	}
	a.logMu.Lock()
	defer a.logMu.Unlock()
	fmt.Fprintf(a.logf, "%s %s\n", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), msg)
}
