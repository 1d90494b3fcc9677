package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// limiter is a service's own rate limiter in front of it, per client address as nginx's
// limit_req or Envoy's local rate limit keep it: a bucket of burst requests, refilled at
// rate a second; a request that finds it empty is answered 429 with Retry-After.
type limiter struct {
	mu      sync.Mutex
	tokens  float64
	last    time.Time
	burst   float64
	rate    float64
	refused int
	served  int
}

func (l *limiter) allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens < 1 {
		l.refused++
		return false
	}
	l.tokens--
	l.served++
	return true
}

// TestAServicesRateLimiterDoesNotFailAGoodDeploy: a service behind its own rate limiter,
// per client address, two requests a second with a burst of two (nginx's limit_req with
// limit_req_status 429, Envoy's local rate limit), which its scheduled runs, one at a
// time, never reach. A verification sends verify.visitors (4) runs of the check at once: the
// limiter refused two of the first round's, and the good deploy failed in 21 ms on "status
// == 200 is false: status = 429", its rollback called. Now each refused visitor asks again
// after the second its Retry-After asks for, and the deploy passes on the service's
// answers.
func TestAServicesRateLimiterDoesNotFailAGoodDeploy(t *testing.T) {
	l := &limiter{tokens: 2, burst: 2, rate: 2}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.allow() {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "429 Too Many Requests", http.StatusTooManyRequests)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - name: home
    kind: http
    every: 1h
    timeout: 8s
    request: {url: %q}
    assert: ["status == 200"]
services:
  web: {checks: [home], verify: {interval: 3s, count: 3}}
`, srv.URL+"/"))
	for range 3 {
		if out, all := h.runCheck("home"); out != "pass" {
			t.Fatalf("a scheduled run: %s %s", out, all)
		}
		time.Sleep(time.Second)
	}
	d := h.verdict(h.deploy("web", "v2"), 2*time.Minute)
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("verdict %v: %v (the limiter served %d requests and refused %d)", d["status"], d["reason"], l.served, l.refused)
	if d["status"] != store.StatusPassed {
		t.Errorf("a good deploy behind the service's rate limiter: %v %v; want passed", d["status"], d["reason"])
	}
	if l.refused == 0 {
		t.Error("the limiter refused nothing: the test does not reach it")
	}
}
