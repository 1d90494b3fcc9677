package agent

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// A deploy after which the service gives no answer at all: the new process crashes as it
// starts (nothing listens: connection refused), or it hangs (a deadlock, a pool that never
// frees: the request is sent and nothing comes back). Each run is an error, and used to
// make the verdict inconclusive: a warning, never a rollback. The check passed before the
// deploy, through the same path, so its silence after the deploy is the deploy's: the
// verdict is failed once the runs without an answer pass consecutive_error_limit, and the
// rollback is called, once. The fix passes.
func TestDeployThatStopsAnsweringIsFailed(t *testing.T) {
	for _, tc := range []struct {
		name, mode, reason string
	}{
		{name: "crashes on start", mode: "down", reason: "connection refused"},
		{name: "hangs", mode: "hang", reason: "timed out: no complete answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			var mode atomic.Value
			mode.Store("up")
			stop := make(chan struct{})
			srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if mode.Load() == "hang" {
					select { // sent, never answered: until the test ends
					case <-stop:
					case <-r.Context().Done():
					}
					return
				}
				fmt.Fprint(w, "ok")
			})}
			serve := func(ln net.Listener) { go func() { _ = srv.Serve(ln) }() }
			serve(ln)
			t.Cleanup(func() { _ = srv.Close() })
			t.Cleanup(func() { close(stop) })

			rollback := loopback.NewWebhook(t)
			h := startAgent(t, "", webConfig{url: "http://" + addr, verify: "interval: 100ms, count: 6, consecutive_error_limit: 2",
				service: "on_failure: [rollback]", top: "notifiers:" + webhookNotifier("rollback", "rollback", rollback)}.String())
			if d := h.verdict(h.deploy("web", "v1"), 30*time.Second); d["status"] != store.StatusPassed {
				t.Fatalf("before: verdict %v, reason %v; want passed", d["status"], d["reason"])
			}

			switch tc.mode {
			case "down":
				// The old process is stopped and the new one never listens.
				_ = srv.Close()
			case "hang":
				mode.Store("hang")
			}
			id := h.deploy("web", "v2")
			d := h.verdict(id, 60*time.Second)
			reason := fmt.Sprint(d["reason"])
			if d["status"] != store.StatusFailed || !strings.Contains(reason, "home: the service stopped answering after the deploy: no answer in 3 runs in a row (consecutive_error_limit 2)") ||
				!strings.Contains(reason, tc.reason) {
				t.Fatalf("verdict %v, reason %v; want failed: no answer where there was one before (%s)", d["status"], reason, tc.reason)
			}
			if c := checkOf(t, d, "home"); c["errors"] != 3.0 {
				t.Errorf("the runs: %v; want 3 errors, the third deciding", c)
			}
			eventually(t, 20*time.Second, "the rollback webhook", func() bool { return rollback.Count(id+":deploy_failed") >= 1 })
			h.outboxSettled(id+":deploy_failed", map[string]string{"rollback": store.OutboxDelivered})
			if n := rollback.Count(id + ":deploy_failed"); n != 1 {
				t.Errorf("the rollback was called %d times; want once", n)
			}
			// The evidence names the silent check and why.
			for _, dl := range rollback.Deliveries() {
				if dl.Event != "deploy_failed" {
					continue
				}
				fc, _ := dl.Payload["failed_checks"].([]any)
				if len(fc) != 1 || fc[0].(map[string]any)["name"] != "home" || !strings.Contains(fmt.Sprint(fc[0].(map[string]any)["summary"]), tc.reason) {
					t.Errorf("the rollback's failed_checks: %v; want home, %s", dl.Payload["failed_checks"], tc.reason)
				}
			}

			// The fix: the service answers again on the same address.
			if tc.mode == "down" {
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					t.Skipf("the address %s was taken meanwhile: %v", addr, err)
				}
				srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: srv.Handler}
				serve(ln)
				t.Cleanup(func() { _ = srv.Close() })
			}
			mode.Store("up")
			if d := h.verdict(h.deploy("web", "v3"), 30*time.Second); d["status"] != store.StatusPassed {
				t.Fatalf("the fix: verdict %v, reason %v; want passed", d["status"], d["reason"])
			}
		})
	}
}

// Outside a deploy, a service that stops answering opens an incident as one that answers
// 500 does: errored runs (after their retries) count toward failure_threshold.
func TestServiceDownOpensAnIncident(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens
	slack := loopback.NewSlack(t)
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - name: home
    kind: http
    every: 1s
    timeout: 2s
    retries: 0
    failure_threshold: 2
    notify: [slack]
    request: {url: "http://%s/"}
notifiers:%s
`, addr, slackNotifier(slack)))
	eventually(t, 20*time.Second, "check_failed in Slack", func() bool { return len(slack.Roots()) == 1 })
	h.a.writer.flush(t.Context())
	runs, err := h.a.store.RecentRuns(t.Context(), "home", time.Now().Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	errored := 0
	for _, r := range runs {
		if r.Outcome == "error" {
			errored++
		}
	}
	if errored < 2 {
		t.Errorf("paged after %d errored runs; failure_threshold is 2", errored)
	}
	if root := slack.Roots()[0]; !strings.Contains(root.Text+string(root.Blocks), "connection refused") {
		t.Errorf("the message does not say why: %s %s", root.Text, root.Blocks)
	}
}

// crashLoop is a service whose process, once switched on, dies after each answer and is
// restarted at once: every other connection is reset before an answer. With once, only
// the first after the first answer is: a single blip.
type crashLoop struct {
	net.Listener
	on, once atomic.Bool
	conns    atomic.Int64
	resets   atomic.Int64
}

func (l *crashLoop) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || !l.on.Load() {
			return c, err
		}
		n := l.conns.Add(1)
		if n%2 == 1 || (l.once.Load() && n > 2) {
			return c, nil
		}
		_ = c.(*net.TCPConn).SetLinger(0) // close with RST: the process died
		_ = c.Close()
		l.resets.Add(1)
	}
}

// A deploy whose new process keeps crashing and being restarted (a supervisor's fast
// restarts, a sidecar's direct path: each silence shorter than consecutive_error_limit)
// answers in one run and not in the next. Errors spread out stay within the streak rule,
// and the deploy passed. The check passed before the deploy, so the service going away
// again and again after answering fails it, and the rollback is called once; a single
// blip after the first answer does not.
func TestDeployThatKeepsGoingAwayIsFailed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		once    bool
		retries string
		status  string
	}{
		{name: "crash loop", status: store.StatusFailed},
		// With a retry, each silence is caught within its run: the retry's new connection
		// finds the restarted process, and the run passes on it.
		{name: "crash loop, retried", retries: "1", status: store.StatusFailed},
		{name: "one blip", once: true, status: store.StatusPassed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln := &crashLoop{Listener: inner}
			ln.once.Store(tc.once)
			srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if ln.on.Load() {
					w.Header().Set("Connection", "close") // the process exits after this answer
				}
				fmt.Fprint(w, "ok")
			})}
			go func() { _ = srv.Serve(ln) }()
			t.Cleanup(func() { _ = srv.Close() })

			rollback := loopback.NewWebhook(t)
			h := startAgent(t, "", webConfig{url: "http://" + inner.Addr().String(), verify: "interval: 100ms, count: 6, visitors: 1", retries: tc.retries,
				service: "on_failure: [rollback]", top: "notifiers:" + webhookNotifier("rollback", "rollback", rollback)}.String())
			if d := h.verdict(h.deploy("web", "v1"), 30*time.Second); d["status"] != store.StatusPassed {
				t.Fatalf("before: verdict %v, reason %v; want passed", d["status"], d["reason"])
			}

			ln.on.Store(true)
			id := h.deploy("web", "v2")
			d := h.verdict(id, 60*time.Second)
			reason := fmt.Sprint(d["reason"])
			if d["status"] != tc.status {
				t.Fatalf("verdict %v, reason %v; want %s (%d connections reset)", d["status"], reason, tc.status, ln.resets.Load())
			}
			c := checkOf(t, d, "home")
			if tc.once {
				if c["errors"] != 1.0 || c["passed"] != 5.0 {
					t.Errorf("the runs: %v; want 5 passed and the blip's error", c)
				}
				return
			}
			if want := "home: the service keeps going away after the deploy: it answered, then gave no answer, 2 times " +
				"(2 runs without an answer after its first, failure_limit 0), where it passed before the deploy: GET http"; !strings.Contains(reason, want) {
				t.Errorf("reason %q; want %q", reason, want)
			}
			if tc.retries != "" {
				if c["errors"] != 0.0 || c["passed"] != 3.0 {
					t.Errorf("the runs: %v; want three passes, the second and third on their retry: the third deciding", c)
				}
			} else if c["errors"] != 2.0 || c["passed"] != 2.0 {
				t.Errorf("the runs: %v; want pass, silent, pass, silent: the fourth deciding", c)
			}
			eventually(t, 20*time.Second, "the rollback webhook", func() bool { return rollback.Count(id+":deploy_failed") >= 1 })
			h.outboxSettled(id+":deploy_failed", map[string]string{"rollback": store.OutboxDelivered})
			if n := rollback.Count(id + ":deploy_failed"); n != 1 {
				t.Errorf("the rollback was called %d times; want once", n)
			}

			ln.on.Store(false) // the fix stays up
			if d := h.verdict(h.deploy("web", "v3"), 30*time.Second); d["status"] != store.StatusPassed {
				t.Fatalf("the fix: verdict %v, reason %v; want passed", d["status"], d["reason"])
			}
		})
	}
}
