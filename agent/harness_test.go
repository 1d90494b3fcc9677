package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
	"github.com/vigil-monitor/vigil/store"
)

// target is the service under test: a loopback app whose version a test switches.
type target struct {
	srv   *httptest.Server
	mode  atomic.Value // "good", "broken", "slow"
	hits  atomic.Int64
	delay atomic.Int64 // ns added in "slow" mode
}

func newTarget(t *testing.T) *target {
	t.Helper()
	tg := &target{}
	tg.mode.Store("good")
	tg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.hits.Add(1)
		switch tg.mode.Load().(string) {
		case "broken":
			http.Error(w, `{"error":"login service unavailable"}`, http.StatusInternalServerError)
			return
		case "slow":
			time.Sleep(time.Duration(tg.delay.Load()))
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(tg.srv.Close)
	return tg
}

func (tg *target) set(mode string) { tg.mode.Store(mode) }

// harness is an agent running on a loopback port with a real SQLite store.
type harness struct {
	t       *testing.T
	a       *Agent
	dir     string
	cfgPath string
	url     string
	token   string
	logs    *vigiltest.Buffer
	stopFn  func()
}

// launched is an agent running in-process on dir/vigil.yaml, with its store in dir and a
// loopback listener: what tests and benchmarks share.
type launched struct {
	a    *Agent
	path string
	url  string
	cfg  *configs.Config
	stop func() error // stops the agent (waiting at most 30s) and closes what it opened
}

// launch writes yaml into dir, builds the agent on it and runs it until stop; it returns
// once the agent has started.
func launch(tb testing.TB, dir, yaml string, opts Options) *launched {
	tb.Helper()
	path := vigiltest.WriteConfig(tb, dir, yaml)
	load := func() (*configs.Config, error) { return configs.Load(path, configs.Options{Environ: []string{}}) }
	cfg, err := load()
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	// A test may bring its own store (a shared PostgreSQL); it closes it itself.
	st, owned := opts.Store, opts.Store == nil
	if owned {
		sq, err := store.Open(context.Background(), filepath.Join(dir, "vigil.db"))
		if err != nil {
			tb.Fatal(err)
		}
		st = sq
	}
	ln := opts.Listener // a test may bring its own (see publicListener)
	if ln == nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			tb.Fatal(err)
		}
	}
	hc := checks.NewHTTPClient("vigil-test")
	hc.Wrap = opts.Tracing.Transport // unchanged when tracing is off
	opts.Config, opts.ConfigPath, opts.LoadConfig, opts.Store, opts.Listener = cfg, path, load, st, ln
	opts.NoStartRuns = true // these tests count what reaches their targets; cmd/vigil tests the start runs
	opts.Deps, opts.Registry, opts.Version = checks.Deps{HTTP: hc, Tracing: opts.Tracing}, prometheus.NewRegistry(), "test"
	a, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	<-a.started
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		if closer, ok := st.(interface{ Close() error }); ok && owned {
			defer closer.Close()
		}
		defer hc.CloseIdle()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("the agent did not stop within 30s")
		}
	}
	return &launched{a: a, path: path, url: "http://" + ln.Addr().String(), cfg: cfg, stop: stop}
}

// startAgent runs an agent on yaml in dir (a fresh temp dir when ""), with the store in it.
func startAgent(t *testing.T, dir, yaml string) *harness {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	logs := &vigiltest.Buffer{}
	l := launch(t, dir, yaml, Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	h := &harness{t: t, a: l.a, dir: dir, cfgPath: l.path, url: l.url, token: l.cfg.Agent.APIToken.Value(), logs: logs}
	h.stopFn = func() {
		if err := l.stop(); err != nil {
			t.Errorf("agent.Run: %v", err)
		}
	}
	t.Cleanup(func() {
		h.stop()
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})
	return h
}

// openSQLite opens a store in dir, closed at cleanup: for a test that wraps it.
func openSQLite(t *testing.T, dir string) *store.SQLite {
	t.Helper()
	sq, err := store.Open(t.Context(), filepath.Join(dir, "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	return sq
}

// startAgentWith is startAgent with opts (a store the test wraps), stopped at cleanup.
func startAgentWith(t *testing.T, dir, yaml string, opts Options) *harness {
	t.Helper()
	l := launch(t, dir, yaml, opts)
	h := &harness{t: t, a: l.a, dir: dir, cfgPath: l.path, url: l.url, token: l.cfg.Agent.APIToken.Value()}
	h.stopFn = func() {
		if err := l.stop(); err != nil {
			t.Errorf("agent.Run: %v", err)
		}
	}
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() { h.stopFn() }

// request sends a request to the agent's API and decodes a JSON answer.
func (h *harness) request(method, path, body string, header ...string) (int, map[string]any) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			h.t.Fatalf("%s %s: answer is not JSON: %v\n%s", method, path, err, raw)
		}
	}
	return resp.StatusCode, out
}

// deploy registers a deploy of service and returns its id.
func (h *harness) deploy(service, version string) string {
	h.t.Helper()
	status, out := h.request("POST", "/api/v1/deploys", fmt.Sprintf(`{"service":%q,"version":%q,"environment":"test"}`, service, version))
	if status != http.StatusAccepted {
		h.t.Fatalf("POST /api/v1/deploys = %d %v", status, out)
	}
	return out["id"].(string)
}

// verdict long-polls a deploy until it is decided (or fails the test after limit).
func (h *harness) verdict(id string, limit time.Duration) map[string]any {
	h.t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		status, out := h.request("GET", "/api/v1/deploys/"+id+"?wait=5s", "")
		if status != http.StatusOK {
			h.t.Fatalf("GET deploy = %d %v", status, out)
		}
		if out["status"] != store.StatusVerifying {
			return out
		}
	}
	h.t.Fatalf("deploy %s: no verdict within %s", id, limit)
	return nil
}

// outboxSettled is how a test proves that a notification went out once and that nothing
// will send it again, without waiting in silence for a while: it waits (up to 30s) until no
// outbox entry with key is pending, then checks every entry with the key, whatever its
// notifier or status: exactly one per notifier in want, in the status want gives it
// (store.OutboxDelivered, OutboxSilenced, OutboxDryRun, OutboxDead), and none for any other
// notifier; it waits for entries not written yet. The outbox sends pending entries only, so a settled key is sent no more; a
// receiver's count read after this is final. It returns the entries, oldest first.
func (h *harness) outboxSettled(key string, want map[string]string) []*store.OutboxEntry {
	h.t.Helper()
	var entries []*store.OutboxEntry
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		entries, err = h.a.store.OutboxByKey(h.t.Context(), key)
		// A read may fail while the database restarts (a pooled connection it ended): the
		// agent's own reads try again, and so does this one, until the deadline.
		if err != nil && time.Now().After(deadline) {
			h.t.Fatalf("reading the outbox for %s: %v", key, err)
		}
		pending := err != nil || slices.ContainsFunc(entries, func(e *store.OutboxEntry) bool { return e.Status == store.OutboxPending })
		if !pending && len(entries) >= len(want) {
			break
		}
		if !pending && time.Now().After(deadline) {
			break // entries missing: told below
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("outbox entries for %s still pending after 30s: %s", key, describeOutbox(entries))
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := map[string][]string{}
	for _, e := range entries {
		got[e.Notifier] = append(got[e.Notifier], e.Status)
	}
	for n, st := range want {
		if len(got[n]) != 1 || got[n][0] != st {
			h.t.Errorf("outbox for %s, notifier %s: %v; want exactly one entry, %s (all entries: %s)", key, n, got[n], st, describeOutbox(entries))
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			h.t.Errorf("outbox for %s: notifier %s has entries %v and should have none (all entries: %s)", key, n, got[n], describeOutbox(entries))
		}
	}
	return entries
}

// deliverNow makes one outbox pass here, synchronously: whatever is due is attempted before
// it returns, so a receiver that got nothing afterwards proves the pass sent nothing, with
// no waiting. Use it only when nothing is pending: the agent's own outbox loop runs beside
// it and could send a pending entry a second time.
func (h *harness) deliverNow() { h.a.deliverDue(h.t.Context()) }

// describeOutbox lists entries as notifier:status (attempts, last error).
func describeOutbox(entries []*store.OutboxEntry) string {
	parts := make([]string, 0, len(entries))
	for _, e := range entries {
		s := fmt.Sprintf("%s:%s (%d attempts", e.Notifier, e.Status, e.Attempts)
		if e.LastError != "" {
			s += ", " + e.LastError
		}
		parts = append(parts, s+")")
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// getOK GETs url and returns its body, failing the test unless the answer is a 200.
func getOK(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// eventually polls cond until it holds or fails the test after limit.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkOf(t *testing.T, d map[string]any, name string) map[string]any {
	t.Helper()
	list, _ := d["checks"].([]any)
	for _, c := range list {
		if m := c.(map[string]any); m["name"] == name {
			return m
		}
	}
	t.Fatalf("deploy has no check %q: %v", name, d["checks"])
	return nil
}
