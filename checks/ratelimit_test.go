package checks

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// limited is a service behind its own rate limiter: the first refuse requests to path are
// answered 429 (with retryAfter as Retry-After, none when ""), then served. It returns how
// many requests reached it for path.
func limited(t *testing.T, path string, refuse int64, retryAfter string) (url string, asked *atomic.Int64) {
	t.Helper()
	asked = &atomic.Int64{}
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path && asked.Add(1) <= refuse {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			http.Error(w, "429 Too Many Requests", http.StatusTooManyRequests)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	return srv.URL, asked
}

// TestARateLimitersRefusalInAVerification: a service's own rate limiter (nginx's
// limit_req, Envoy's local rate limit) refuses part of what a verification sends, far more
// than the scheduled runs (verify.visitors runs of each check at once, every round, from one
// address). A good deploy behind a limit of two requests a second failed its first round on
// "status = 429" and was rolled back (TestAServicesRateLimiterDoesNotFailAGoodDeploy). In a
// verification, a run failing on a 429 asks again after the wait the answer asks for, and
// is judged by what it then gets; a limiter that keeps refusing after vigil waited as asked
// fails the run, one whose wait ends past the run's deadline leaves it inconclusive; a 429
// the assertions accept, or any 429 outside a verification, is judged as it is.
func TestARateLimitersRefusalInAVerification(t *testing.T) {
	deploy := &Deploy{ID: "d1", Service: "web", Version: "v2"}
	for _, tc := range []struct {
		name       string
		deploy     *Deploy
		refuse     int64
		retryAfter string
		timeout    string
		assert     string
		want       Outcome
		asked      int64 // requests the service got; 0: at least 2
		says       []string
	}{
		{"refused once, Retry-After 1", deploy, 1, "1", "5s", "status == 200", Pass, 2,
			[]string{"the service answered 429: a rate limiter", "waiting 1s as its Retry-After asks, then asking again"}},
		{"refused once, no Retry-After", deploy, 1, "", "5s", "status == 200", Pass, 2, []string{"waiting 1s (it gives no Retry-After)"}},
		{"scheduled: judged as it is", nil, 1, "1", "5s", "status == 200", Fail, 1, []string{"status = 429"}},
		{"refusing whatever vigil waits", deploy, 1000, "1", "4s", "status == 200", Fail, 0,
			[]string{"status = 429 (a rate limiter's 429, still after vigil waited as it asked"}},
		{"a wait past the deadline", deploy, 1000, "60", "3s", "status == 200", Inconclusive, 1,
			[]string{"rate limited: the service answered 429 and asks to wait 1m0s as its Retry-After asks", "exempt vigil's requests"}},
		{"a 429 the check expects", deploy, 1000, "1", "5s", "status == 429", Pass, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, asked := limited(t, "/", tc.refuse, tc.retryAfter)
			c := buildOne(t, fmt.Sprintf(`
checks:
  - name: home
    kind: http
    timeout: %s
    request: {url: %q}
    assert: [%q]
`, tc.timeout, url+"/", tc.assert))
			res := c.Run(context.Background(), Input{Deploy: tc.deploy})
			t.Logf("%s %q after %d requests", res.Outcome, res.Reasons, asked.Load())
			wantOutcome(t, res, tc.want)
			if got := asked.Load(); (tc.asked == 0 && got < 2) || (tc.asked != 0 && got != tc.asked) {
				t.Errorf("the service got %d requests; want %d (0: at least 2)", got, tc.asked)
			}
			all := strings.Join(res.Reasons, "\n") + "\n" + strings.Join(res.Transcript, "\n")
			for _, s := range tc.says {
				if !strings.Contains(all, s) {
					t.Errorf("the result does not say %q:\n%s", s, all)
				}
			}
		})
	}
}

// TestAScriptStepRateLimitedInAVerification: the same for a journey's step. The step
// refused is asked again alone (the steps before it are not repeated: a cart is created
// once), and the journey's duration_ms leaves out the time waited on the limiter.
func TestAScriptStepRateLimitedInAVerification(t *testing.T) {
	for _, tc := range []struct {
		name   string
		deploy *Deploy
		want   Outcome
		cart   int64
	}{
		{"in a verification", &Deploy{ID: "d1", Service: "web", Version: "v2"}, Pass, 2},
		{"scheduled", nil, Fail, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, asked := limited(t, "/cart", 1, "2")
			var created atomic.Int64
			srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				created.Add(1)
				w.WriteHeader(http.StatusCreated)
			}))
			c := buildOne(t, fmt.Sprintf(`
checks:
  - name: journey
    kind: script
    timeout: 10s
    steps:
      - {name: create, request: {method: POST, url: %q}, assert: ["status == 201"]}
      - {name: cart, request: {url: %q}}
`, srv.URL+"/", url+"/cart"))
			res := c.Run(context.Background(), Input{Deploy: tc.deploy})
			t.Logf("%s %q; duration_ms %v", res.Outcome, res.Reasons, res.Vars["duration_ms"])
			wantOutcome(t, res, tc.want)
			if created.Load() != 1 || asked.Load() != tc.cart {
				t.Errorf("step 1 sent %d times, step 2 %d; want 1 and %d", created.Load(), asked.Load(), tc.cart)
			}
			if tc.want == Pass {
				if d, _ := res.Vars["duration_ms"].(float64); d >= 2000 {
					t.Errorf("duration_ms %v holds the 2 s waited on the rate limiter", d)
				}
			} else if !strings.Contains(strings.Join(res.Reasons, " "), "step 2 (cart): status >= 200 && status < 300 is false: status = 429") {
				t.Errorf("reasons %q", res.Reasons)
			}
		})
	}
}
