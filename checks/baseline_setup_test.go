package checks

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// slowHandshakeTLS is a loopback TLS server whose handshake takes at least 300 ms (a far
// network's round trips, held as a lower bound by a sleep) and that answers after delay.
// The figures are large so that a loaded machine's tens of milliseconds of scheduling cannot
// decide a verdict (at 40 and 20 ms they did, in a full run of the agent's twin test).
func slowHandshakeTLS(t *testing.T, delay *atomic.Int64) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Duration(delay.Load()))
		_, _ = io.WriteString(w, "ok")
	}))
	srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		time.Sleep(300 * time.Millisecond)
		return nil, nil
	}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// TestAVerificationRunIsComparedWithTheBaselineLessConnectionSetup: scheduled runs reuse a
// kept-alive connection and make the baseline; a deploy's verification runs each open
// their own (HTTPClient.perRun). Compared as measured, a good deploy's run (300 ms of TLS
// handshake and 200 ms of answer) failed `duration_ms < baseline.duration_ms * 2` against a
// baseline of 200 ms, in an http check and in a script journey. Less each side's connection
// setup, a good deploy passes and one three times slower at the server fails.
func TestAVerificationRunIsComparedWithTheBaselineLessConnectionSetup(t *testing.T) {
	for _, tc := range []struct{ name, check string }{
		{"http", `
    kind: http
    request: {url: %q, tls: {insecure_skip_verify: true}}
    assert: ["status == 200", "duration_ms < baseline.duration_ms * 2", "ttfb_ms < baseline.ttfb_ms * 2"]`},
		{"script", `
    kind: script
    steps:
      - {name: home, request: {url: %q, tls: {insecure_skip_verify: true}}}
    assert: ["duration_ms < baseline.duration_ms * 2"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var delay atomic.Int64
			delay.Store(int64(200 * time.Millisecond))
			srv := slowHandshakeTLS(t, &delay)
			c := buildOne(t, fmt.Sprintf("checks:\n  - name: home\n    timeout: 5s"+tc.check+"\n", srv.URL+"/"))
			var scheduled []*Result
			for range 4 { // on the shared client: the first opens the connection, the others reuse it
				res := c.Run(context.Background(), Input{TranscriptOnFailure: true})
				wantOutcome(t, res, Pass)
				scheduled = append([]*Result{res}, scheduled...)
			}
			base := c.Baseline(scheduled, 4)
			in := Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v2"}, Baseline: base}
			verify := func() *Result { // a verification's run, on a connection of its own
				session := NewHTTPClient("vigil-test")
				switch p := c.prober.(type) {
				case *HTTP:
					session = p.client.NewSession()
				case *Script:
					session = p.client.NewSession()
				}
				defer session.CloseIdle()
				return c.Run(WithSession(context.Background(), session), in)
			}

			good := verify()
			t.Logf("good deploy: %s %q; duration_ms %v, baseline %v", good.Outcome, good.Reasons, good.Vars["duration_ms"], base["duration_ms"])
			wantOutcome(t, good, Pass)

			delay.Store(int64(600 * time.Millisecond))
			slow := verify()
			t.Logf("slow deploy: %s %q", slow.Outcome, slow.Reasons)
			wantOutcome(t, slow, Fail)
			if !strings.Contains(strings.Join(slow.Reasons, "\n"), "ms measured, less this run's connection setup of ") {
				t.Errorf("the failure does not say how the figures were compared: %q", slow.Reasons)
			}
		})
	}
}

// TestTheBaselineLeavesOutItsRunsConnectionSetup: the runs that make a baseline are a mix
// of kept-alive ones (most scheduled runs) and runs that opened their connection (a
// scheduled run after the connection idled out, an earlier deploy's verification). Their
// duration_ms and ttfb_ms are taken less their own setup; the setup itself, and the
// variables of kinds whose every run opens its own connection, are taken as they are.
func TestTheBaselineLeavesOutItsRunsConnectionSetup(t *testing.T) {
	t.Parallel()
	run := func(duration, ttfb, dns, connect, tlsMS float64) *Result {
		return &Result{Outcome: Pass, Started: time.Now(), Vars: map[string]any{"duration_ms": duration, "ttfb_ms": ttfb,
			"dns_ms": dns, "connect_ms": connect, "tls_ms": tlsMS, "conn_reused": dns+connect+tlsMS == 0}}
	}
	b := MedianBaseline([]*Result{run(0.3, 0.25, 0, 0, 0), run(2.7, 2.6, 0.1, 0.2, 2.1), run(0.4, 0.3, 0, 0, 0)})
	if b["duration_ms"] != 0.3 || b["ttfb_ms"] != 0.25 {
		t.Errorf("duration_ms %v, ttfb_ms %v; want 0.3 and 0.25 (2.7 less its 2.4 of setup is 0.3)", b["duration_ms"], b["ttfb_ms"])
	}
	if b["tls_ms"] != 0.0 {
		t.Errorf("tls_ms %v; want the median of the runs' own, 0", b["tls_ms"])
	}
	journey := func(duration, setup float64) *Result {
		return &Result{Outcome: Pass, Started: time.Now(), Vars: map[string]any{"duration_ms": duration, "setup_ms": setup}}
	}
	if b := MedianBaseline([]*Result{journey(10, 0), journey(14, 5), journey(30, 0)}); b["duration_ms"] != 10.0 {
		t.Errorf("a journey's duration_ms %v; want 10 (14 less its 5 of setup is 9)", b["duration_ms"])
	}
	tcp := func(duration, connect float64) *Result {
		return &Result{Outcome: Pass, Started: time.Now(), Vars: map[string]any{"duration_ms": duration, "connect_ms": connect}}
	}
	if b := MedianBaseline([]*Result{tcp(5, 4), tcp(6, 4), tcp(7, 4)}); b["duration_ms"] != 6.0 {
		t.Errorf("a tcp check's duration_ms %v; want 6: every run opens its connection, and the setup is compared too", b["duration_ms"])
	}
}
