package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/promtest"
	"github.com/vigil-monitor/vigil/store"
)

// Deploy verification with the kinds the post-mortems need: each deploy that brings the
// incident back gets a failed verdict; the mixed-version fleet (seed 004) routes a halt.

// fleetNode is one instance: it reports its version and is healthy unless it runs the old
// version and a new-version peer has joined (seed 004: B crashes A peers).
type fleetNode struct {
	srv     *httptest.Server
	version string
}

type fleet struct {
	mu      sync.Mutex
	nodes   []*fleetNode
	newSeen atomic.Bool
	disc    *httptest.Server
}

func newFleet(t *testing.T) *fleet {
	f := &fleet{}
	f.disc = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		var list []map[string]string
		for _, n := range f.nodes {
			list = append(list, map[string]string{"url": n.srv.URL})
		}
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"instances": list})
	}))
	t.Cleanup(f.disc.Close)
	return f
}

func (f *fleet) add(t *testing.T, version string) *fleetNode {
	n := &fleetNode{version: version}
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/version":
			_ = json.NewEncoder(w).Encode(map[string]string{"version": n.version})
		case "/healthz":
			if n.version == "A" && f.newSeen.Load() {
				http.Error(w, "peer protocol error: unknown frame from B", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, "ok")
		}
	}))
	t.Cleanup(n.srv.Close)
	f.mu.Lock()
	f.nodes = append(f.nodes, n)
	f.mu.Unlock()
	if version != "A" {
		f.newSeen.Store(true)
	}
	return n
}

func TestDeployFleetMixedVersionsHalts(t *testing.T) {
	f := newFleet(t)
	for range 3 {
		f.add(t, "A")
	}
	halt := loopback.NewWebhook(t)
	rollback := loopback.NewWebhook(t)
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - name: fleet
    kind: fleet
    every: 1s
    timeout: 5s
    retries: 0
    targets: {url: %q, path: "instances.#.url"}
    health: {path: /healthz}
    version: {path: /version, field: version}
    assert: ["old_version_unhealthy == 0", "regressed == 0"]
services:
  amp:
    checks: [fleet]
    verify: {interval: 200ms, count: 3}
    on_failure:
      deploy_failed: [rollback]
      deploy_halted: [halt]
notifiers:%s%s
`, f.disc.URL, webhookNotifier("halt", "halt", halt), webhookNotifier("rollback", "rollback", rollback)))
	eventually(t, 20*time.Second, "a scheduled fleet run (the baseline)", func() bool {
		r := h.a.lastResult("fleet")
		return r != nil && r.Outcome == "pass"
	})
	b := f.add(t, "B") // the rolling push reaches its first node
	id := h.deploy("amp", "B")
	d := h.verdict(id, 30*time.Second)
	if d["status"] != store.StatusFailed || d["halt"] == nil {
		t.Fatalf("verdict %v, halt %v, reason %v; want failed with a halt", d["status"], d["halt"], d["reason"])
	}
	for _, n := range f.nodes {
		if n != b && !strings.Contains(fmt.Sprint(d["halt"]), n.srv.URL) {
			t.Errorf("the halt reason %q should name old-version node %s", d["halt"], n.srv.URL)
		}
	}
	eventually(t, 20*time.Second, "the halt webhook", func() bool { return halt.Count(id+":deploy_halted") >= 1 })
	h.outboxSettled(id+":deploy_halted", map[string]string{"halt": store.OutboxDelivered})
	if n := halt.Count(id + ":deploy_halted"); n != 1 {
		t.Errorf("the halt webhook accepted %d deliveries; want 1", n)
	}
	if ev := halt.Deliveries()[0]; ev.Event != "deploy_halted" {
		t.Errorf("the halt webhook got %q", ev.Event)
	}
}

// A pool of 10 held 500 ms by each request: 100 requests at 50 clients take about 5 s, and
// p95 is several seconds, while the good release answers in milliseconds. The SLA (1.5 s)
// sits far from both, so a loaded machine (p95 of the good release near 0.8 s at a load
// average of 15) does not decide the verdict.
func TestDeploySLAUnderConcurrency(t *testing.T) {
	var leaky atomic.Bool
	pool := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pool <- struct{}{}
		defer func() { <-pool }()
		if leaky.Load() {
			time.Sleep(500 * time.Millisecond) // a blocking call holds the connection
		} else {
			time.Sleep(2 * time.Millisecond)
		}
		fmt.Fprint(w, `{"items":[]}`)
	}))
	t.Cleanup(srv.Close)
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - name: feed-sla
    kind: sla
    every: 1h
    timeout: 20s
    retries: 0
    request: {url: %q}
    requests: 100
    concurrency: 50
    assert: ["p95_ms < 1500", "error_rate == 0"]
services:
  feed: {checks: [feed-sla], verify: {interval: 100ms, count: 1}}
`, srv.URL+"/api/feed"))
	if d := h.verdict(h.deploy("feed", "good"), 60*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("good release: %v %v", d["status"], d["reason"])
	}
	leaky.Store(true)
	d := h.verdict(h.deploy("feed", "leaky"), 60*time.Second)
	if d["status"] != store.StatusFailed || !strings.Contains(fmt.Sprint(d["reason"]), "p95_ms < 1500") {
		t.Fatalf("leaky release: %v %v; want failed on p95", d["status"], d["reason"])
	}
}

func TestDeployPropagationLag(t *testing.T) {
	var lag atomic.Int64
	var mu sync.Mutex
	written := map[string]time.Time{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost {
			var body struct{ Marker string }
			_ = json.NewDecoder(r.Body).Decode(&body)
			written[body.Marker] = time.Now()
			w.WriteHeader(http.StatusCreated)
			return
		}
		var seen []string
		for m, at := range written {
			if time.Since(at) >= time.Duration(lag.Load()) {
				seen = append(seen, m)
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"markers": seen})
	}))
	t.Cleanup(srv.Close)
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - name: feed-propagation
    kind: propagation
    every: 1h
    timeout: 10s
    retries: 0
    write: {method: POST, url: %[1]q, body: '{"marker":"{{ .Nonce }}"}'}
    read: [{name: replica, request: {url: %[1]q}}]
    poll: 50ms
    assert: ["propagation_ms < 1000"]
services:
  feed: {checks: [feed-propagation], verify: {interval: 100ms, count: 1}}
`, srv.URL+"/api/items"))
	if d := h.verdict(h.deploy("feed", "good"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("good release: %v %v", d["status"], d["reason"])
	}
	lag.Store(int64(2 * time.Second))
	d := h.verdict(h.deploy("feed", "laggy"), 30*time.Second)
	if d["status"] != store.StatusFailed || !strings.Contains(fmt.Sprint(d["reason"]), "propagation_ms") {
		t.Fatalf("laggy release: %v %v", d["status"], d["reason"])
	}
}

func TestDeployLogscanWarning(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "app.log")
	if err := os.WriteFile(logPath, []byte(time.Now().UTC().Format(time.RFC3339Nano)+" INFO started\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - name: leak-log
    kind: logscan
    every: 1h
    retries: 0
    source: {file: %q}
    pattern: "Possible connection leak detected"
    window: 5m
    assert: ["matches == 0"]
services:
  app: {checks: [leak-log], verify: {interval: 300ms, count: 3}}
`, filepath.Join(dir, "*.log")))
	if d := h.verdict(h.deploy("app", "good"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("good release: %v %v", d["status"], d["reason"])
	}
	id := h.deploy("app", "leaky")
	time.Sleep(50 * time.Millisecond)
	fh, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(fh, "%s WARNING: Possible connection leak detected for connection pool main\n", time.Now().UTC().Format(time.RFC3339Nano))
	fh.Close()
	d := h.verdict(id, 30*time.Second)
	if d["status"] != store.StatusFailed || !strings.Contains(fmt.Sprint(checkOf(t, d, "leak-log")["reasons"]), "connection leak") {
		t.Fatalf("leaky release: %v %v %v", d["status"], d["reason"], d["checks"])
	}
}

func TestDeployPromQL(t *testing.T) {
	reg := prometheus.NewRegistry()
	active := prometheus.NewGauge(prometheus.GaugeOpts{Name: "pool_active_connections", Help: "connections in use"})
	reg.MustRegister(active)
	active.Set(3)
	// A scrape every second (800 ms to answer): at 200 ms (160 ms to answer) a scrape of a
	// loaded machine timed out once, its series went stale, and the good release was
	// rightly inconclusive.
	prom := promtest.Start(t, promtest.Options{Targets: []string{promtest.Exporter(t, reg)}, ScrapeInterval: time.Second})
	prom.WaitForScrape(t, 30*time.Second)
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - name: pool
    kind: promql
    every: 1h
    retries: 0
    server: %q
    query: max(pool_active_connections)
    assert: ["value < 50"]
services:
  app: {checks: [pool], verify: {interval: 100ms, count: 2}}
`, prom.URL))
	if d := h.verdict(h.deploy("app", "good"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("good release: %v %v", d["status"], d["reason"])
	}
	active.Set(80)
	eventually(t, 30*time.Second, "Prometheus to scrape the leak", func() bool {
		v, _ := prom.Query(t.Context(), "max(pool_active_connections)")
		return v == "80"
	})
	d := h.verdict(h.deploy("app", "leaky"), 30*time.Second)
	if d["status"] != store.StatusFailed || !strings.Contains(fmt.Sprint(d["reason"]), "value = 80") {
		t.Fatalf("leaky release: %v %v", d["status"], d["reason"])
	}
}

// scrapedRegistry is a registry a real Prometheus scrapes every 200 ms, with one series
// that keeps its target up: the test registers the series it reads when it wants them.
func scrapedRegistry(t *testing.T) (*prometheus.Registry, *promtest.Server) {
	t.Helper()
	reg := prometheus.NewRegistry()
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_test_up", Help: "keeps the target scraped"})
	up.Set(1)
	reg.MustRegister(up)
	prom := promtest.Start(t, promtest.Options{Targets: []string{promtest.Exporter(t, reg)}, ScrapeInterval: 200 * time.Millisecond})
	prom.WaitForScrape(t, 30*time.Second)
	return reg, prom
}

// New pods' metrics appear a scrape or two after the deploy: a promql check whose series
// does not exist yet is inconclusive at first, and the window waits for it. The verdict is
// what the series says once it is there, never "inconclusive" while rounds remain.
func TestDeployPromQLSeriesAppearsLate(t *testing.T) {
	reg, prom := scrapedRegistry(t)
	// max_over_time: once the series is there, a scrape the loaded machine misses (its
	// timeout is 160 ms) leaves a staleness marker that an instant query of the bare series
	// would read as no series, a flicker that is not the late series under test.
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - {name: good-pool, kind: promql, every: 1h, retries: 0, server: %[1]q, query: "max(max_over_time(late_good_pool[10s]))", assert: ["value < 50"]}
  - {name: bad-pool, kind: promql, every: 1h, retries: 0, server: %[1]q, query: "max(max_over_time(late_bad_pool[10s]))", assert: ["value < 50"]}
services:
  good: {checks: [good-pool], verify: {interval: 700ms, count: 6}}
  bad: {checks: [bad-pool], verify: {interval: 700ms, count: 6}}
`, prom.URL))
	for _, tc := range []struct {
		service, metric string
		value           float64
		want            string
	}{
		{"good", "late_good_pool", 3, store.StatusPassed},
		{"bad", "late_bad_pool", 80, store.StatusFailed},
	} {
		id := h.deploy(tc.service, "v2")
		// The new version's metric shows up only after the first round saw nothing.
		eventually(t, 20*time.Second, "a first inconclusive round", func() bool {
			runs, _ := h.a.store.DeployRuns(t.Context(), id)
			return len(runs) > 0
		})
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: tc.metric, Help: "pool in use"})
		g.Set(tc.value)
		reg.MustRegister(g)
		d := h.verdict(id, 60*time.Second)
		c := checkOf(t, d, tc.service+"-pool")
		if d["status"] != tc.want {
			t.Fatalf("%s: status = %v, reason %v; want %s once the series appeared", tc.service, d["status"], d["reason"], tc.want)
		}
		if c["inconclusive"].(float64) < 1 {
			t.Errorf("%s: no inconclusive round before the series appeared (%v): the test did not reproduce a late series", tc.service, c)
		}
	}
}

// A canary's metrics among the old version's: one new pod holds 80 connections, three old
// ones 3 each. A query of them all averages the canary away (22.25 < 50) and the verdict
// passes; the same query naming the deploy's version judges the new pods alone, and fails.
// Before the new version's series is scraped the named query is inconclusive (no data
// yet), not a pass on the old pods' numbers: a new version whose metrics never arrive in
// the window is an inconclusive verdict.
func TestDeployPromQLNamesTheVersion(t *testing.T) {
	reg := prometheus.NewRegistry()
	pool := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "canary_pool_in_use", Help: "pool in use"}, []string{"pod", "version"})
	reg.MustRegister(pool)
	for _, pod := range []string{"web-a", "web-b", "web-c"} {
		pool.WithLabelValues(pod, "v1").Set(3)
	}
	prom := promtest.Start(t, promtest.Options{Targets: []string{promtest.Exporter(t, reg)}, ScrapeInterval: 200 * time.Millisecond})
	prom.WaitForScrape(t, 30*time.Second)
	// max_over_time: a scrape the loaded machine misses leaves a staleness marker, not a gap
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - {name: all-pods, kind: promql, every: 1h, retries: 0, server: %[1]q, query: "avg(max_over_time(canary_pool_in_use[10s]))", assert: ["value < 50"]}
  - name: new-pods
    kind: promql
    every: 1h
    retries: 0
    server: %[1]q
    query: 'avg(max_over_time(canary_pool_in_use{ {{- with .Deploy.Version }}version="{{ . }}"{{ end -}} }[10s]))'
    assert: ["value < 50"]
services:
  unnamed: {checks: [all-pods], verify: {interval: 500ms, count: 4}}
  named: {checks: [new-pods], verify: {interval: 500ms, count: 4}}
`, prom.URL))

	// the new version's metrics never arrive in the window
	d := h.verdict(h.deploy("named", "v3"), 30*time.Second)
	if c := checkOf(t, d, "new-pods"); d["status"] != store.StatusInconclusive || c["inconclusive"].(float64) < 1 || c["passed"].(float64) != 0 || c["failed"].(float64) != 0 {
		t.Fatalf("v3, never scraped: %v %v, runs %v; want inconclusive, no run passed or failed", d["status"], d["reason"], c)
	}

	pool.WithLabelValues("web-d", "v2").Set(80)
	eventually(t, 30*time.Second, "the canary's series scraped", func() bool {
		v, err := prom.Query(t.Context(), `max(canary_pool_in_use{version="v2"})`)
		return err == nil && v == "80"
	})
	d = h.verdict(h.deploy("unnamed", "v2"), 30*time.Second)
	if d["status"] != store.StatusPassed {
		t.Fatalf("the query of every pod: %v %v; want passed, the canary averaged away (this is what naming the version is for)", d["status"], d["reason"])
	}
	d = h.verdict(h.deploy("named", "v2"), 30*time.Second)
	if d["status"] != store.StatusFailed || !strings.Contains(fmt.Sprint(d["reason"]), "value = 80") {
		t.Fatalf("the query of the new version: %v %v; want failed on the canary's 80", d["status"], d["reason"])
	}
	// outside a deploy the matcher is left out: a run judges every pod
	if _, res := h.request("POST", "/api/v1/checks/new-pods/run", ""); res["outcome"] != "pass" || !strings.Contains(fmt.Sprint(res["vars"]), "value:22.25") {
		t.Fatalf("a run of new-pods outside a deploy: %v; want every pod averaged, 22.25", res)
	}
}

// The fix for an erroring version is deployed: a rate over a fixed five minutes still holds
// the old version's errors, fails the fix at once and would roll it back onto the broken
// version. {{ .Window }} starts no earlier than the deploy, and the fix passes.
func TestDeployPromQLWindowSinceTheDeploy(t *testing.T) {
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fixed_requests_total", Help: "requests"}, []string{"code"})
	reg.MustRegister(requests)
	// Both series exist at 0 when Prometheus first scrapes them, and the traffic starts
	// after that: every error is an increase Prometheus sees. (Traffic that started first
	// could be over before a slow Prometheus scraped at all, a counter already at its final
	// value: no increase, a rate of 0, and the fixed 5m rate would pass.)
	requests.WithLabelValues("200").Add(0)
	requests.WithLabelValues("500").Add(0)
	prom := promtest.Start(t, promtest.Options{Targets: []string{promtest.Exporter(t, reg)}, ScrapeInterval: 200 * time.Millisecond})
	prom.WaitForScrape(t, 30*time.Second)
	var failing atomic.Bool
	var errorsMade atomic.Int64
	failing.Store(true)
	stop := make(chan struct{})
	traffic := make(chan struct{})
	go func() { // the service's traffic: half of it failing until the fix
		defer close(traffic)
		for tick := time.NewTicker(20 * time.Millisecond); ; {
			select {
			case <-stop:
				tick.Stop()
				return
			case <-tick.C:
				requests.WithLabelValues("200").Inc()
				if failing.Load() {
					requests.WithLabelValues("500").Inc()
					errorsMade.Add(1)
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-traffic })
	errorsSeen := func() string {
		v, _ := prom.Query(t.Context(), `max(fixed_requests_total{code="500"})`)
		return v
	}
	eventually(t, 60*time.Second, "100 errors before the fix scraped", func() bool { // half the requests since the start
		n, err := strconv.ParseFloat(errorsSeen(), 64)
		return err == nil && n >= 100
	})
	failing.Store(false)
	time.Sleep(50 * time.Millisecond) // a tick that read failing before the store has counted its error
	final := fmt.Sprint(errorsMade.Load())
	eventually(t, 30*time.Second, "the last error scraped", func() bool { return errorsSeen() == final })

	ratio := `sum(rate(fixed_requests_total{code=\"500\"}[%s])) / sum(rate(fixed_requests_total[%s]))`
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - {name: ratio-5m, kind: promql, every: 1h, retries: 0, server: %[1]q, query: "%[2]s", assert: ["value < 0.01"]}
  - {name: ratio-since, kind: promql, every: 1h, retries: 0, server: %[1]q, query: "%[3]s", assert: ["value < 0.01"]}
services:
  fixed-5m: {checks: [ratio-5m], verify: {interval: 700ms, count: 6}}
  fixed-since: {checks: [ratio-since], verify: {interval: 700ms, count: 6}}
`, prom.URL, fmt.Sprintf(ratio, "5m", "5m"), fmt.Sprintf(ratio, "{{ .Window }}", "{{ .Window }}")))
	d := h.verdict(h.deploy("fixed-5m", "v2"), 30*time.Second)
	if d["status"] != store.StatusFailed {
		t.Fatalf("the fixed 5m rate: %v %v; want failed on the old version's errors (the case the window is for)", d["status"], d["reason"])
	}
	d = h.verdict(h.deploy("fixed-since", "v2"), 30*time.Second)
	if c := checkOf(t, d, "ratio-since"); d["status"] != store.StatusPassed || c["passed"].(float64) < 1 {
		t.Fatalf("the rate since the deploy: %v %v, runs %v; want passed", d["status"], d["reason"], c)
	}
}

// A series that stops arriving (an exporter gone, a relabelling that renamed it) makes a
// promql check inconclusive run after run: by default that changes nothing, and the check
// quietly judges nothing. With no_data: alert, against a real Prometheus, the check whose
// series is missing opens an incident, and closes it once the series is back; its twin
// without it opens none.
func TestScheduledNoDataAlerts(t *testing.T) {
	reg, prom := scrapedRegistry(t)
	hook := loopback.NewWebhook(t)
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - {name: pool, kind: promql, every: 1s, retries: 0, failure_threshold: 2, no_data: alert, notify: [hook],
     server: %[1]q, query: max(pool_active_connections), assert: ["value < 50"]}
  - {name: pool-quiet, kind: promql, every: 1s, retries: 0, failure_threshold: 2, notify: [hook],
     server: %[1]q, query: max(pool_active_connections), assert: ["value < 50"]}
notifiers:%[2]s
`, prom.URL, webhookNotifier("hook", "", hook)))
	opened := func() map[string]string {
		out := map[string]string{}
		for _, ev := range outboxEvents(t, h.a, "hook") {
			out[ev.Check+" "+ev.Name] = ev.Summary
		}
		return out
	}
	eventually(t, 30*time.Second, "the no-data incident", func() bool { return opened()["pool check_failed"] != "" })
	if s := opened()["pool check_failed"]; !strings.Contains(s, "returned no series: no data to judge") {
		t.Errorf("the incident says %q; want the missing series", s)
	}
	active := prometheus.NewGauge(prometheus.GaugeOpts{Name: "pool_active_connections", Help: "connections in use"})
	active.Set(3)
	reg.MustRegister(active)
	eventually(t, 30*time.Second, "the recovery once the series is back", func() bool { return opened()["pool check_recovered"] != "" })
	if _, ok := opened()["pool-quiet check_failed"]; ok {
		t.Errorf("the check without no_data: alert opened an incident: %v", opened())
	}
}
