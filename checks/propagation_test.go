package checks

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// feed is seed 002's service: a writer, and read replicas that show a new item only after
// their replication lag. The bad release made the lag about a minute.
type feed struct {
	mu      sync.Mutex
	items   map[string]time.Time // marker -> committed
	deleted []string
}

func newFeed() *feed { return &feed{items: map[string]time.Time{}} }

// writer stores {"marker": "..."} items.
func (f *feed) writer(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			f.mu.Lock()
			f.deleted = append(f.deleted, strings.TrimPrefix(r.URL.Path, "/api/items/"))
			f.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if status != http.StatusCreated {
			http.Error(w, "database is read-only", status)
			return
		}
		var in struct{ Marker string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Marker == "" {
			http.Error(w, "bad item", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.items[in.Marker] = time.Now()
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}
}

// replica lists the items committed at least lag ago.
func (f *feed) replica(lag time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		type item struct {
			Marker string `json:"marker"`
		}
		out := struct {
			Items []item `json:"items"`
		}{Items: []item{{Marker: "someone-else"}}}
		now := time.Now()
		f.mu.Lock()
		for m, at := range f.items {
			if now.Sub(at) >= lag {
				out.Items = append(out.Items, item{Marker: m})
			}
		}
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}
}

func (f *feed) deletions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.deleted...)
}

func propagationYAML(write, readA, readB, extra string) string {
	return fmt.Sprintf(`
checks:
  - name: feed-propagation
    kind: propagation
    timeout: 10s
    write: {url: "%s/api/items", body: '{"marker":"{{ .Nonce }}"}', headers: {Content-Type: application/json}}
    read:
      - {name: a, request: {url: "%s/api/items"}}
      - {name: b, request: {url: "%s/api/items"}}
    cleanup: {url: "%s/api/items/{{ .Nonce }}"}
%s`, write, readA, readB, write, extra)
}

// TestPropagationMeasuresTheLag: reader b lags by a known amount; the measured propagation
// must be within the polling interval of it, and never earlier than the truth by more than
// a loopback round trip. Once with a steady interval, once backing off.
func TestPropagationMeasuresTheLag(t *testing.T) {
	const lag = 1500 * time.Millisecond
	for _, tc := range []struct {
		name    string
		backoff string
		maxPoll time.Duration
	}{
		{"steady 50ms", "{factor: 1, max: 50ms}", 50 * time.Millisecond},
		{"backoff 50ms to 200ms", "{factor: 1.5, max: 200ms}", 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeed()
			w := serve(t, f.writer(http.StatusCreated))
			a := serve(t, f.replica(0))
			b := serve(t, f.replica(lag))
			c := buildOne(t, propagationYAML(w.URL, a.URL, b.URL, `    poll: 50ms
    backoff: `+tc.backoff+`
    assert: ["propagation_ms < 5000", "len(stale) == 0"]`))
			res := run(t, c, Input{})
			wantOutcome(t, res, Pass)

			readers := res.Vars["readers"].(map[string]float64)
			got := time.Duration(readers["b"] * float64(time.Millisecond))
			t.Logf("true lag %s, measured %s (error %s, poll interval at most %s); reader a %.1fms", lag, got, got-lag, tc.maxPoll, readers["a"])
			// Reads start at most maxPoll apart, so the first read after the item appeared
			// starts less than maxPoll after it (plus scheduling noise: on a loaded 2-core
			// machine a timer fired 400 ms late once); a read can start a little before the
			// replica looks, but not by more than the round trip.
			if got < lag-150*time.Millisecond || got > lag+tc.maxPoll+500*time.Millisecond {
				t.Fatalf("measured %s for a lag of %s: not within the %s poll interval", got, lag, tc.maxPoll)
			}
			if readers["a"] >= float64(lag.Milliseconds())/2 {
				t.Fatalf("reader a has no lag but measured %.0fms", readers["a"])
			}
			if res.Vars["propagation_ms"].(float64) != readers["b"] {
				t.Fatalf("propagation_ms %v is not the slowest reader %v", res.Vars["propagation_ms"], readers["b"])
			}
			if d := f.deletions(); len(d) != 1 || !strings.HasPrefix(d[0], "vigil-") {
				t.Fatalf("cleanup deleted %q, want the run's marker", d)
			}
		})
	}
}

// TestPropagationSeed002: the good release propagates in a fraction of a second and passes;
// the bad one takes a minute, and the run fails at its timeout naming the stale reader,
// still cleaning up after itself.
func TestPropagationSeed002(t *testing.T) {
	t.Run("good release", func(t *testing.T) {
		f := newFeed()
		w, a, b := serve(t, f.writer(http.StatusCreated)), serve(t, f.replica(0)), serve(t, f.replica(100*time.Millisecond))
		c := buildOne(t, propagationYAML(w.URL, a.URL, b.URL, `    poll: 20ms
    assert: ["propagation_ms < 2000"]`))
		wantOutcome(t, run(t, c, Input{}), Pass)
	})
	t.Run("bad release", func(t *testing.T) {
		f := newFeed()
		w, a, b := serve(t, f.writer(http.StatusCreated)), serve(t, f.replica(0)), serve(t, f.replica(time.Minute))
		yaml := strings.Replace(propagationYAML(w.URL, a.URL, b.URL, `    poll: 20ms
    assert: ["propagation_ms < 2000"]`), "timeout: 10s", "timeout: 2500ms", 1)
		c := buildOne(t, yaml)
		res := run(t, c, Input{})
		wantOutcome(t, res, Fail, "1 of 2 readers never showed the marker within", ": b",
			"propagation_ms < 2000 is false", "a lower bound: b never showed the marker")
		if s := res.Vars["stale"].([]string); !slices.Equal(s, []string{"b"}) {
			t.Fatalf("stale = %q, want [b]", s)
		}
		if res.Duration > 5*time.Second {
			t.Fatalf("the run took %s; the timeout is 2.5s", res.Duration)
		}
		if len(f.deletions()) != 1 {
			t.Fatalf("a timed-out run must still clean up; deletions: %q", f.deletions())
		}
	})
}

// TestPropagationMatch: contains (templated), a gjson path and an expression each find the
// marker; a match that cannot see it leaves the reader stale.
func TestPropagationMatch(t *testing.T) {
	f := newFeed()
	w, r := serve(t, f.writer(http.StatusCreated)), serve(t, f.replica(0))
	for _, tc := range []struct {
		name, match string
		want        Outcome
	}{
		{"contains", `contains: '"marker":"{{ .Nonce }}"'`, Pass},
		{"path", `path: items.#.marker`, Pass},
		{"expr", `expr: 'status == 200 && any(json.items, .marker == nonce)'`, Pass},
		{"wrong path", `path: items.#.id`, Fail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := buildOne(t, fmt.Sprintf(`
checks:
  - name: m
    kind: propagation
    timeout: 800ms
    poll: 20ms
    write: {url: "%s/api/items", body: '{"marker":"{{ .Nonce }}"}'}
    read:
      - {name: r, request: {url: "%s/api/items"}, match: {%s}}
`, w.URL, r.URL, tc.match))
			res := run(t, c, Input{})
			wantOutcome(t, res, tc.want)
		})
	}
}

func TestPropagationErrors(t *testing.T) {
	f := newFeed()
	ok := serve(t, f.writer(http.StatusCreated))
	readOnly := serve(t, f.writer(http.StatusServiceUnavailable))
	r := serve(t, f.replica(0))
	down := closedURL(t)
	yaml := func(write, reader string) string {
		return fmt.Sprintf(`
checks:
  - name: p
    kind: propagation
    timeout: 800ms
    write: {url: "%s/api/items", body: '{"marker":"{{ .Nonce }}"}'}
    read: ["%s/api/items"]
`, write, reader)
	}
	t.Run("write refused", func(t *testing.T) {
		wantOutcome(t, run(t, buildOne(t, yaml(down, r.URL)), Input{}), Error, "write: POST "+down, "connection refused")
	})
	t.Run("write rejected", func(t *testing.T) {
		wantOutcome(t, run(t, buildOne(t, yaml(readOnly.URL, r.URL)), Input{}), Fail, "answered 503", "database is read-only")
	})
	t.Run("reader down", func(t *testing.T) {
		wantOutcome(t, run(t, buildOne(t, yaml(ok.URL, down)), Input{}), Error, "no answer from 1 of 1 readers", down+"/api/items")
	})
}

func TestPropagationConfigErrors(t *testing.T) {
	head := `
checks:
  - name: p
    kind: propagation
    write: {url: "http://127.0.0.1:1/w"}
`
	wantBuildError(t, head+`    read: ["http://127.0.0.1:1/r", "http://127.0.0.1:1/r"]`, "checks[0].read[1].name", "already the name of read[0]")
	wantBuildError(t, head+`    read: [{request: {url: "http://127.0.0.1:1/r"}, match: {expr: "json.items contains nonse"}}]`,
		"checks[0].read[0].match.expr", `unknown variable "nonse"`, `did you mean "nonce"?`)
	wantBuildError(t, head+`    read: ["http://127.0.0.1:1/r"]
    match: {contains: "{{ .Nonse }}"}`, "checks[0].match.contains", "template reads .Nonse")
	// A match that does not read the run's marker is true of an answer from before the
	// write, such as a page a CDN cached: every reader showed it on its first read, and
	// the run passed with propagation_ms near 0 while the replicas lagged.
	wantBuildError(t, head+`    read: ["http://127.0.0.1:1/r"]
    match: {contains: '"marker"'}`, "checks[0].match.contains", `does not read {{ .Nonce }}`, "a page a cache kept")
	wantBuildError(t, head+`    read: [{request: {url: "http://127.0.0.1:1/r"}, match: {expr: "status == 200 && len(json.items) > 0"}}]`,
		"checks[0].read[0].match.expr", "does not read nonce")
	buildOne(t, head+`    read: [{request: {url: "http://127.0.0.1:1/r"}, match: {expr: "any(json.items, .marker == nonce)"}}]`)
	wantBuildError(t, head+`    read: ["http://127.0.0.1:1/r"]
    poll: 1s
    backoff: {max: 500ms}`, "checks[0].backoff.max", "shorter than poll")
	wantBuildError(t, head+`    read: ["http://127.0.0.1:1/r"]
    assert: ["len(stail) == 0"]`, "checks[0].assert[0]", `did you mean "stale"?`)
}

// The cleanup runs within the run's timeout: the readers are polled until the deadline
// less the time kept for it, and a cleanup that hangs is cut at the deadline (it ran up to
// 5 s past it). A reader whose answer is cut at max_body_bytes, with the marker past the
// cut, is stale, and the failure says why.
func TestPropagationCleanupWithinTimeoutAndCutAnswers(t *testing.T) {
	f := newFeed()
	w := serve(t, f.writer(http.StatusCreated))
	long := serve(t, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprint(rw, strings.Repeat("x", 100<<10))
		f.mu.Lock()
		defer f.mu.Unlock()
		for m := range f.items {
			fmt.Fprint(rw, m)
		}
	}))
	hole, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hole.Close() })
	c := buildOne(t, fmt.Sprintf(`
checks:
  - name: feed-propagation
    kind: propagation
    timeout: 2s
    poll: 50ms
    write: {url: "%s/api/items", body: '{"marker":"{{ .Nonce }}"}', headers: {Content-Type: application/json}}
    read:
      - {name: a, request: {url: "%s/api/items", max_body_bytes: 65536}}
    cleanup: {url: "http://%s/api/items/{{ .Nonce }}"}
`, w.URL, long.URL, hole.Addr()))
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "1 of 1 readers never showed the marker", "a's answer was cut at max_body_bytes (65536 bytes)")
	if !strings.Contains(strings.Join(res.Transcript, "\n"), "cleanup failed (the marker may remain)") {
		t.Errorf("the cleanup to a server that never answers: %q", res.Transcript)
	}
	if res.Duration > 3500*time.Millisecond { // 7 s when the cleanup had 5 s past the deadline
		t.Errorf("the run took %s; its timeout is 2s", res.Duration)
	}
}

// TestPropagationDefaults holds the README's defaults: poll 100ms, backoff factor 1.2 up to
// ten times poll, a POST write and a DELETE cleanup.
func TestPropagationDefaults(t *testing.T) {
	head := "\nchecks:\n  - name: p\n    kind: propagation\n    write: {url: \"http://127.0.0.1:1/w\"}\n    read: [\"http://127.0.0.1:1/r\"]\n    cleanup: {url: \"http://127.0.0.1:1/w/{{ .Nonce }}\"}\n"
	p := buildOne(t, head).prober.(*Propagation)
	if p.poll != 100*time.Millisecond || p.factor != 1.2 || p.maxPoll != time.Second {
		t.Fatalf("poll %s, factor %g, max %s", p.poll, p.factor, p.maxPoll)
	}
	if w, c := p.write.base.Method, p.cleanup.base.Method; w != http.MethodPost || c != http.MethodDelete {
		t.Fatalf("write %s, cleanup %s", w, c)
	}
	if p := buildOne(t, head+"    poll: 50ms\n").prober.(*Propagation); p.maxPoll != 500*time.Millisecond {
		t.Fatalf("backoff.max %s with poll 50ms, want 10 x poll", p.maxPoll)
	}
}
