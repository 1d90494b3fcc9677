package agent

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/vigiltest"
	"github.com/vigil-monitor/vigil/store"
)

// pods starts n loopback pods of a Deployment behind a random balancer (vigiltest.Balancer);
// the pods listed in bad answer 500, the others 200. It returns the balancer and each pod's request count.
func pods(t *testing.T, n int, bad ...int) (*vigiltest.Balancer, []*atomic.Int64) {
	t.Helper()
	var urls []string
	hits := make([]*atomic.Int64, n)
	for i := range n {
		hits[i] = &atomic.Int64{}
		broken := false
		for _, b := range bad {
			broken = broken || b == i
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			if broken {
				http.Error(w, `{"error":"cache not warmed"}`, http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok":true}`)
		}))
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	return vigiltest.NewBalancer(t, true, urls...), hits // at random per connection, as kube-proxy's iptables mode
}

// verifyMany registers one deploy of each of n services, every one of them verified by its
// own copy of check (%[1]s is its name, %[2]s the target's URL) with verify (the window's
// settings), and returns the verdicts' statuses by count and one reason of each.
func verifyMany(t *testing.T, n int, url, check, verify string) (map[string]int, map[string]string) {
	t.Helper()
	var cfg strings.Builder
	cfg.WriteString("agent: {concurrency: 32}\nchecks:\n")
	for i := range n {
		cfg.WriteString(fmt.Sprintf(check, fmt.Sprintf("c%d", i), url))
	}
	cfg.WriteString("services:\n")
	for i := range n {
		cfg.WriteString(fmt.Sprintf("  s%d: {checks: [c%d], verify: {%s}}\n", i, i, verify))
	}
	h := startAgent(t, "", cfg.String())
	ids := make([]string, n)
	for i := range n {
		ids[i] = h.deploy(fmt.Sprintf("s%d", i), "v2")
	}
	counts, reasons := map[string]int{}, map[string]string{}
	for _, id := range ids {
		d := h.verdict(id, 2*time.Minute)
		s := fmt.Sprint(d["status"])
		counts[s]++
		if reasons[s] == "" {
			reasons[s] = fmt.Sprint(d["reason"])
		}
	}
	return counts, reasons
}

// httpCheckYAML is an http check with the defaults a user gets: one request a run, retries 1.
const httpCheckYAML = `  - name: %s
    kind: http
    every: 1h
    request: {url: "%s/"}
    assert: ["status == 200"]
`

// slaCheckYAML is an sla check with its defaults: 100 requests, 10 at once.
const slaCheckYAML = `  - name: %s
    kind: sla
    every: 1h
    request: {url: "%s/"}
    assert: ["error_rate < 0.01"]
`

// TestOneBadPodOfFour: a Deployment of four pods behind a balancer that picks a pod per
// connection at random (kube-proxy in iptables mode), the new version broken on one of
// them (a bad node, a config map mounted late, a cache that did not warm): a quarter of
// its users fail. Verified with the defaults (six rounds, failure_limit 0) by an http
// check, a round was one run on one fresh connection, and the verification passed when
// none of its six connections reached the bad pod: 0.75^6, one deploy in six (50 of 300
// measured). A round is verify.visitors runs (default 4), each on a connection of its
// own, and a failure of any fails it: 0.75^24, one in a thousand. Sixty deploys: the old
// rounds pass three or more of them but for a chance of 8 in 10,000 (binomial, p 0.178);
// the new ones pass three or more with a chance of 3 in 100,000. An sla check's burst (10
// connections a round) catches it as it did. Four good pods: every deploy passes, and a
// window opens 24 connections per http check, the load the README states.
func TestOneBadPodOfFour(t *testing.T) {
	const deploys = 60
	lb, hits := pods(t, 4, 3)
	counts, reasons := verifyMany(t, deploys, lb.URL(), httpCheckYAML, "interval: 100ms")
	t.Logf("http, one bad pod of four: %v; %d connections; pods hit %d %d %d %d", counts, lb.Conns(),
		hits[0].Load(), hits[1].Load(), hits[2].Load(), hits[3].Load())
	if counts[store.StatusPassed] > 2 || counts[store.StatusFailed] != deploys-counts[store.StatusPassed] {
		t.Errorf("%d of %d deploys with one broken pod of four passed (%v); want at most 2 (expected 0.06)", counts[store.StatusPassed], deploys, counts)
	}
	if r := reasons[store.StatusFailed]; !strings.Contains(r, "status == 200 is false: status = 500") {
		t.Errorf("a failed verdict's reason: %q; want the bad pod's answer", r)
	}

	counts, _ = verifyMany(t, 20, lb.URL(), slaCheckYAML, "interval: 100ms")
	if counts[store.StatusFailed] != 20 {
		t.Errorf("sla, one bad pod of four: %v; want every deploy failed", counts)
	}

	good, _ := pods(t, 4)
	counts, reasons = verifyMany(t, deploys, good.URL(), httpCheckYAML, "interval: 100ms")
	if counts[store.StatusPassed] != deploys {
		t.Errorf("four good pods: %v %v; want every deploy passed", counts, reasons)
	}
	if !strings.Contains(reasons[store.StatusPassed], "6 runs over 6 rounds") {
		t.Errorf("a passed verdict's reason: %q; want a round counted as one run", reasons[store.StatusPassed])
	}
	// Each visitor's run opens its own connection; a run's retry (an attempt that erred on a
	// loaded machine) opens another, so a few more are no fault.
	if n := good.Conns(); n < deploys*6*4 {
		t.Errorf("four good pods: %d connections for %d deploys; want at least 6 rounds × 4 visitors each (%d): a visitor rode another's connection", n, deploys, deploys*6*4)
	}
}

// TestVisitorsOne: verify.visitors 1 makes a round one run, as before visitors, and
// a kind that is not one client (sla) runs once a round whatever it says.
func TestVisitorsOne(t *testing.T) {
	good, _ := pods(t, 4)
	counts, reasons := verifyMany(t, 3, good.URL(), httpCheckYAML, "interval: 100ms, count: 2, visitors: 1")
	if counts[store.StatusPassed] != 3 || good.Conns() != 3*2 {
		t.Errorf("visitors 1: %v %v, %d connections; want 3 passed deploys of 2 rounds, one connection each", counts, reasons, good.Conns())
	}
	sla, _ := pods(t, 4)
	counts, reasons = verifyMany(t, 1, sla.URL(), slaCheckYAML, "interval: 100ms, count: 2, visitors: 5")
	if counts[store.StatusPassed] != 1 || sla.Conns() != 2*10 {
		t.Errorf("sla with visitors 5: %v %v, %d connections; want 2 bursts of 10 connections", counts, reasons, sla.Conns())
	}
}
