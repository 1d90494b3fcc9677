package checks_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// build loads a config with ${T} set to the target URL and builds its checks by name.
func build(t testing.TB, target, yaml string) map[string]*checks.Check {
	t.Helper()
	client := checks.NewHTTPClient("vigil-test")
	t.Cleanup(client.CloseIdle)
	return buildDeps(t, checks.Deps{HTTP: client}, target, yaml)
}

// buildDeps is build with the given shared parts.
func buildDeps(t testing.TB, deps checks.Deps, target, yaml string) map[string]*checks.Check {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(p, configs.Options{Environ: []string{"T=" + target}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := checks.Build(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*checks.Check{}
	for _, c := range list {
		out[c.Name] = c
	}
	return out
}

func TestHTTPPassAndFail(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"token":"abc","items":[1,2,3]}`)
		case "/broken":
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, "database is down")
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Method", r.Method)
			w.Header().Set("X-Auth", r.Header.Get("Authorization"))
			fmt.Fprintf(w, "%s", b)
		}
	}))
	defer srv.Close()
	cs := build(t, srv.URL, `
checks:
  - name: ok
    kind: http
    request: {url: "${T}/ok"}
    assert: ["status == 200", "json.token == 'abc'", "len(json.items) == 3", "headers['Content-Type'] contains 'json'", "duration_ms < 5000"]
  - name: broken
    kind: http
    request: {url: "${T}/broken"}
    assert: ["status == 200", "body contains 'ok'"]
  - name: default-assert
    kind: http
    request: {url: "${T}/broken"}
  - name: echo
    kind: http
    request:
      method: PUT
      url: "${T}/echo"
      body: '{"n":1}'
      auth: {bearer: s3cret}
    assert: ["body == '{\"n\":1}'", "headers['X-Method'] == 'PUT'", "headers['X-Auth'] == 'Bearer s3cret'"]
`)
	ctx := context.Background()
	if r := cs["ok"].Run(ctx, checks.Input{}); r.Outcome != checks.Pass {
		t.Errorf("ok: %s %v\n%s", r.Outcome, r.Reasons, strings.Join(r.Transcript, "\n"))
	}
	r := cs["broken"].Run(ctx, checks.Input{})
	if r.Outcome != checks.Fail || len(r.Reasons) != 2 {
		t.Fatalf("broken: %s %v", r.Outcome, r.Reasons)
	}
	if r.Reasons[0] != "status == 200 is false: status = 500" ||
		r.Reasons[1] != `body contains 'ok' is false: body = "database is down"` {
		t.Errorf("reasons must quote the assertion and the values seen: %q", r.Reasons)
	}
	if r := cs["default-assert"].Run(ctx, checks.Input{}); r.Outcome != checks.Fail {
		t.Errorf("the default assertion must reject a 500: %s", r.Outcome)
	}
	r = cs["echo"].Run(ctx, checks.Input{})
	if r.Outcome != checks.Pass {
		t.Errorf("echo: %v", r.Reasons)
	}
	for _, line := range r.Transcript {
		if strings.HasPrefix(line, ">") && strings.Contains(line, "s3cret") {
			t.Errorf("transcript leaks the bearer token: %s", line)
		}
	}
	if r.Vars["status"] != 200 || r.Vars["cert_expiry_days"] != -1.0 {
		t.Errorf("vars: status=%v cert=%v", r.Vars["status"], r.Vars["cert_expiry_days"])
	}
}

func TestHTTPConnectionRefusedIsError(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cs := build(t, "http://"+addr, `checks: [{name: gone, kind: http, request: {url: "${T}/"}}]`)
	r := cs["gone"].Run(context.Background(), checks.Input{})
	if r.Outcome != checks.Error || !strings.Contains(r.Summary(), "connection refused") {
		t.Errorf("got %s: %v", r.Outcome, r.Reasons)
	}
}

// TestHTTPTargetThatNeverAnswers: the listener accepts and then says nothing. The run must
// end at its timeout as an error.
func TestHTTPTargetThatNeverAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, never answer
		}
	}()
	cs := build(t, "http://"+ln.Addr().String(), `checks: [{name: silent, kind: http, timeout: 300ms, request: {url: "${T}/"}}]`)
	start := time.Now()
	r := cs["silent"].Run(context.Background(), checks.Input{})
	took := time.Since(start)
	if r.Outcome != checks.Error || !strings.Contains(r.Summary(), "timed out") {
		t.Errorf("got %s: %v", r.Outcome, r.Reasons)
	}
	if took > 10*time.Second {
		t.Errorf("a 300ms check took %s: something ignores the deadline", took)
	}
	t.Logf("ended after %s (timeout 300ms)", took.Round(time.Millisecond))
}

// TestHTTPHugeBodyIsCut serves 1 GiB; vigil must read only its cap and drop the connection.
func TestHTTPHugeBodyIsCut(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(1<<30))
		chunk := make([]byte, 64<<10)
		for i := 0; i < (1<<30)/len(chunk); i++ {
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	cs := build(t, srv.URL, `
checks:
  - {name: huge, kind: http, timeout: 20s, request: {url: "${T}/"}, assert: ["body_truncated", "body_bytes == 1048576"]}
  - {name: small-cap, kind: http, timeout: 20s, request: {url: "${T}/", max_body_bytes: 1000}, assert: ["body_bytes == 1000"]}
`)
	for _, name := range []string{"huge", "small-cap"} {
		r := cs[name].Run(context.Background(), checks.Input{})
		if r.Outcome != checks.Pass {
			t.Errorf("%s: %s %v", name, r.Outcome, r.Reasons)
		}
	}
	if s := sent.Load(); s >= 1<<30 {
		t.Errorf("the server managed to send the whole GiB (%d bytes): the body was read, not cut", s)
	}
	t.Logf("server wrote %d MiB before the connection was dropped", sent.Load()>>20)
}

func TestScriptJourneyWithExtraction(t *testing.T) {
	var broken atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cart", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v7"`)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"cart":{"id":42}}`)
	})
	mux.HandleFunc("GET /cart/{id}", func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() || r.PathValue("id") != "42" || r.Header.Get("If-Match") != `"v7"` {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		fmt.Fprint(w, `{"id":42,"status":"open"}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cs := build(t, srv.URL, `
checks:
  - name: flow
    kind: script
    steps:
      - name: create
        request: {method: POST, url: "${T}/cart"}
        extract: {cart: json.cart.id, etag: header.ETag}
        assert: ["status == 201"]
      - name: read back
        request: {url: "${T}/cart/{{ .cart }}", headers: {If-Match: "{{ .etag }}"}}
        assert: ["status == 200", "json.status == 'open'", "vars.cart == 42"]
    assert: ["steps == 2", "failed_step == ''"]
`)
	r := cs["flow"].Run(context.Background(), checks.Input{})
	if r.Outcome != checks.Pass {
		t.Fatalf("journey: %s %v\n%s", r.Outcome, r.Reasons, strings.Join(r.Transcript, "\n"))
	}
	broken.Store(true)
	r = cs["flow"].Run(context.Background(), checks.Input{})
	want := `step 2 (read back): status == 200 is false: status = 404 (variables: cart=42, etag="\"v7\"")`
	if r.Outcome != checks.Fail || len(r.Reasons) == 0 || r.Reasons[0] != want {
		t.Errorf("got %s %q\nwant %q", r.Outcome, r.Reasons, want)
	}
	if r.Vars["failed_step"] != "read back" {
		t.Errorf("failed_step = %v", r.Vars["failed_step"])
	}
}

func TestScriptMissingExtractionFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"other":1}`) }))
	defer srv.Close()
	cs := build(t, srv.URL, `
checks:
  - name: flow
    kind: script
    steps:
      - {request: {url: "${T}/a"}, extract: {id: json.id}}
      - {request: {url: "${T}/b/{{ .id }}"}}
`)
	r := cs["flow"].Run(context.Background(), checks.Input{})
	if r.Outcome != checks.Fail || !strings.Contains(r.Summary(), "extract id from json.id: no value there") {
		t.Errorf("got %s %v", r.Outcome, r.Reasons)
	}
}

// An extracted object or list is decoded as encoding/json decodes it; one nested deeper
// than its 10,000 levels (a hostile answer) is refused at once with the reason, where
// gjson's Value spent a minute of CPU on 100,000 levels, past any timeout.
func TestScriptExtractsNestedValues(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 100_000) + "1" + strings.Repeat("}", 100_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/deep" {
			fmt.Fprint(w, deep)
			return
		}
		fmt.Fprint(w, `{"cart":{"id":42,"items":[{"sku":"a","qty":2}],"tags":["x",null,true]}}`)
	}))
	defer srv.Close()
	cs := build(t, srv.URL, `
checks:
  - name: flow
    kind: script
    steps:
      - {request: {url: "${T}/cart"}, extract: {cart: json.cart, items: json.cart.items}}
      - {request: {url: "${T}/cart/{{ .cart.id }}/{{ (index .items 0).sku }}"}, extract: {deep: json.a.a}}
  - name: deep
    kind: script
    steps:
      - {request: {url: "${T}/deep"}, extract: {deep: json.a.a}}
`)
	r := cs["flow"].Run(context.Background(), checks.Input{})
	if r.Outcome != checks.Fail || !strings.Contains(r.Summary(), "extract deep from json.a.a: no value there") ||
		!strings.Contains(strings.Join(r.Transcript, "\n"), "/cart/42/a") {
		t.Errorf("an object and a list extracted: got %s %v\n%s", r.Outcome, r.Reasons, strings.Join(r.Transcript, "\n"))
	}
	r = cs["deep"].Run(context.Background(), checks.Input{})
	if r.Outcome != checks.Fail || !strings.Contains(r.Summary(), "extract deep from json.a.a: the value there could not be read: ") ||
		!strings.Contains(r.Summary(), "exceeded max depth") {
		t.Errorf("100,000 levels: got %s %v", r.Outcome, r.Reasons)
	}
}

func TestBaselineAndDeployVariables(t *testing.T) {
	var delay atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Duration(delay.Load()))
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	cs := build(t, srv.URL, `
checks:
  - name: latency
    kind: http
    request: {url: "${T}/"}
    assert: ["duration_ms < baseline.duration_ms * 1.5 + 20", "deploy.version != 'v0'"]
`)
	c := cs["latency"]
	ctx := context.Background()

	r := c.Run(ctx, checks.Input{Deploy: &checks.Deploy{ID: "d0", Version: "v1"}})
	if r.Outcome != checks.Inconclusive || !strings.Contains(r.Summary(), "no baseline yet") {
		t.Fatalf("a deploy without a baseline: %s %v", r.Outcome, r.Reasons)
	}
	// Outside a deploy (scheduled monitoring, vigil run) baseline assertions do not apply.
	if r := c.Run(ctx, checks.Input{}); r.Outcome != checks.Pass {
		t.Fatalf("no deploy: %s %v; want pass on the other assertions", r.Outcome, r.Reasons)
	}
	var prev []*checks.Result
	for range 3 {
		res := c.Run(ctx, checks.Input{Baseline: map[string]any{"duration_ms": 1000.0}, Deploy: &checks.Deploy{ID: "d0", Version: "v1"}})
		if res.Outcome != checks.Pass {
			t.Fatalf("%v", res.Reasons)
		}
		prev = append(prev, res)
	}
	base := c.Baseline(prev, 5)
	if base == nil || base["duration_ms"].(float64) > 1000 {
		t.Fatalf("baseline: %v", base)
	}
	delay.Store(int64(300 * time.Millisecond))
	r = c.Run(ctx, checks.Input{Baseline: base, Deploy: &checks.Deploy{ID: "d1", Version: "v2"}})
	if r.Outcome != checks.Fail || !strings.Contains(r.Summary(), "baseline.duration_ms = ") {
		t.Errorf("slower than baseline must fail and quote the baseline: %s %v", r.Outcome, r.Reasons)
	}
	r = c.Run(ctx, checks.Input{Baseline: map[string]any{"duration_ms": 1e6}, Deploy: &checks.Deploy{ID: "d1", Version: "v0"}})
	if r.Outcome != checks.Fail || !strings.Contains(r.Summary(), `deploy.version = "v0"`) {
		t.Errorf("deploy variables: %s %v", r.Outcome, r.Reasons)
	}
}

func TestRetriesOnlyErrors(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	cs := build(t, srv.URL, `checks: [{name: fails, kind: http, request: {url: "${T}/"}}]`)
	r := checks.RunWithRetries(context.Background(), cs["fails"], checks.Input{}, checks.Retry{Attempts: 3, Backoff: time.Millisecond})
	if r.Outcome != checks.Fail || r.Attempts != 1 || calls.Load() != 1 {
		t.Errorf("a fail is an answer and must not be retried: outcome=%s attempts=%d calls=%d", r.Outcome, r.Attempts, calls.Load())
	}

	// An error is retried: the first two connections are cut before any response.
	var n atomic.Int32
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.Close()
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer flaky.Close()
	cs = build(t, flaky.URL, `checks: [{name: flaky, kind: http, request: {url: "${T}/"}}]`)
	r = checks.RunWithRetries(context.Background(), cs["flaky"], checks.Input{}, checks.Retry{Attempts: 3, Backoff: time.Millisecond})
	if r.Outcome != checks.Pass || r.Attempts != 3 {
		t.Errorf("outcome=%s attempts=%d %v", r.Outcome, r.Attempts, r.Reasons)
	}
	if len(r.Transcript) == 0 || !strings.HasPrefix(r.Transcript[0], "!! attempt 1 ended in error") {
		t.Errorf("the transcript must say it retried: %q", r.Transcript)
	}
	// Both cut attempts were the service's silence: the run that passed on its retry says so
	// (a deploy's verification counts it toward "keeps going away").
	if !strings.Contains(r.RetriedSilence, "EOF") {
		t.Errorf("RetriedSilence = %q; want the cut attempt's summary", r.RetriedSilence)
	}
}

func TestRunAllBoundsConcurrency(t *testing.T) {
	var inflight vigiltest.InFlight
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer inflight.Enter()()
		time.Sleep(20 * time.Millisecond)
	}))
	defer srv.Close()
	var b strings.Builder
	b.WriteString("checks:\n")
	for i := range 12 {
		fmt.Fprintf(&b, "  - {name: c%d, kind: http, request: {url: \"${T}/\"}}\n", i)
	}
	cs := build(t, srv.URL, b.String())
	var list []*checks.Check
	for _, c := range cs {
		list = append(list, c)
	}
	results := checks.RunAll(context.Background(), list, 3, nil, nil, nil, nil)
	for i, r := range results {
		if r.Check != list[i].Name || r.Outcome != checks.Pass {
			t.Errorf("result %d: %s %s", i, r.Check, r.Outcome)
		}
	}
	if p := inflight.Peak(); p > 3 || p < 1 {
		t.Errorf("peak concurrency %d, limit 3", p)
	}
}

// TestHTTPNonce: {{ .Nonce }} in an http request's url, header or body is one fresh marker
// per run, the same wherever it appears in that run; a request without a template is sent
// exactly as written (braces it does not have are not looked for).
func TestHTTPNonce(t *testing.T) {
	type seen struct{ path, header, body string }
	got := make(chan seen, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.URL.Path, r.Header.Get("X-Marker"), string(b)}
	}))
	defer srv.Close()
	cs := build(t, srv.URL, `
checks:
  - name: marked
    kind: http
    request: {method: POST, url: "${T}/items/{{ .Nonce }}", headers: {X-Marker: "{{ .Nonce }}"}, body: '{"marker":"{{ .Nonce }}"}'}
  - name: plain
    kind: http
    request: {method: POST, url: "${T}/items/x", headers: {X-Marker: "m"}, body: '{"marker":"{ .Nonce }"}'}
  - name: header-only
    kind: http
    request: {url: "${T}/h", headers: {X-Marker: "{{ .Nonce }}"}}
`)
	markers := map[string]bool{}
	for range 3 {
		if res := cs["marked"].Run(context.Background(), checks.Input{}); res.Outcome != checks.Pass {
			t.Fatalf("marked: %s %v", res.Outcome, res.Reasons)
		}
		s := <-got
		m := strings.TrimPrefix(s.path, "/items/")
		if !strings.HasPrefix(m, "vigil-") || len(m) != len("vigil-")+24 {
			t.Fatalf("the url's marker is %q, want vigil- and 24 hex digits", m)
		}
		if s.header != m || s.body != `{"marker":"`+m+`"}` {
			t.Fatalf("one run sent different markers: url %q, header %q, body %q", m, s.header, s.body)
		}
		markers[m] = true
	}
	if len(markers) != 3 {
		t.Errorf("three runs sent %d distinct markers, want a fresh one per run", len(markers))
	}
	if res := cs["plain"].Run(context.Background(), checks.Input{}); res.Outcome != checks.Pass {
		t.Fatalf("plain: %s %v", res.Outcome, res.Reasons)
	}
	if s := <-got; s != (seen{"/items/x", "m", `{"marker":"{ .Nonce }"}`}) {
		t.Errorf("a request without a template was sent as %+v", s)
	}
	if res := cs["header-only"].Run(context.Background(), checks.Input{}); res.Outcome != checks.Pass {
		t.Fatalf("header-only: %s %v", res.Outcome, res.Reasons)
	}
	if s := <-got; !strings.HasPrefix(s.header, "vigil-") {
		t.Errorf("a marker in a header alone was sent as %q", s.header)
	}
}
