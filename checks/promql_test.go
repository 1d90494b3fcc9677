package checks

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/internal/promtest"
)

func promqlYAML(server, query string, asserts ...string) string {
	y := fmt.Sprintf(`
checks:
  - name: pool
    kind: promql
    timeout: 5s
    server: %s
    query: '%s'
`, server, strings.ReplaceAll(query, "'", "''"))
	if len(asserts) > 0 {
		y += "    assert:\n"
		for _, a := range asserts {
			y += "      - '" + strings.ReplaceAll(a, "'", "''") + "'\n"
		}
	}
	return y
}

// TestPromQLAgainstPrometheus runs promql checks against a real Prometheus (Debian's
// package, on a loopback port) scraping a loopback exporter that publishes seed 001's
// pool metrics: the application's connection pool, by pool.
func TestPromQLAgainstPrometheus(t *testing.T) {
	reg := prometheus.NewRegistry()
	active := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pool_active_connections", Help: "Connections in use."}, []string{"pool"})
	reg.MustRegister(active)
	active.WithLabelValues("db").Set(3)
	active.WithLabelValues("cache").Set(7)
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "quiet_requests_total", Help: "Requests, none yet."}, []string{"code"})
	reg.MustRegister(requests)
	requests.WithLabelValues("500").Add(0)
	requests.WithLabelValues("200").Add(0)
	// A second between scrapes (timeout 0.8 s): a scrape the loaded machine misses would leave
	// a staleness marker, and the bare series would read as none until the next.
	prom := promtest.Start(t, promtest.Options{Targets: []string{promtest.Exporter(t, reg)}, ScrapeInterval: time.Second})
	prom.WaitForScrape(t, 60*time.Second)

	t.Run("value", func(t *testing.T) {
		res := run(t, buildOne(t, promqlYAML(prom.URL, "max(pool_active_connections)", "value < 50")), Input{})
		wantOutcome(t, res, Pass)
		if res.Vars["value"] != 7.0 || res.Vars["series"] != 1 {
			t.Fatalf("value %v series %v, want 7 and 1", res.Vars["value"], res.Vars["series"])
		}
	})
	t.Run("scalar", func(t *testing.T) {
		res := run(t, buildOne(t, promqlYAML(prom.URL, "scalar(sum(pool_active_connections))", "value == 10")), Input{})
		wantOutcome(t, res, Pass)
	})
	t.Run("values by labels", func(t *testing.T) {
		res := run(t, buildOne(t, promqlYAML(prom.URL, "sum by (pool) (pool_active_connections)",
			`values['{pool="db"}'] < 5`, `values['{pool="cache"}'] < 5`, "series == 2", "value < 50")), Input{})
		wantOutcome(t, res, Fail, `values['{pool="cache"}'] < 5 is false: values["{pool=\"cache\"}"] = 7`)
		if len(res.Reasons) != 1 {
			t.Fatalf("reasons %q: the db pool and the series count hold, and value is not judged", res.Reasons)
		}
		// two series have no single value: an assertion that reads it is not judged
		// (TestPromQLSeveralSeriesInARollout), and the transcript says why
		if log := strings.Join(res.Transcript, "\n"); !strings.Contains(log, "not judged: value < 50: the query returned 2 series, so there is no single value") {
			t.Fatalf("transcript:\n%s", log)
		}
		// The NaN is null in the result's JSON (vigil run --json, the API), the rest kept.
		b, err := json.Marshal(res)
		var back struct{ Vars map[string]any }
		if err == nil {
			err = json.Unmarshal(b, &back)
		}
		if v, ok := back.Vars["value"]; err != nil || !ok || v != nil || back.Vars["series"] != 2.0 {
			t.Fatalf("the result as JSON: %v %s", err, b)
		}
		if !math.IsNaN(res.Vars["value"].(float64)) {
			t.Fatal("marshalling changed the run's own value")
		}
	})
	t.Run("series", func(t *testing.T) {
		res := run(t, buildOne(t, promqlYAML(prom.URL, "pool_active_connections", "series == 2")), Input{})
		wantOutcome(t, res, Pass)
		values := res.Vars["values"].(map[string]float64)
		for k := range values {
			if !strings.HasPrefix(k, `pool_active_connections{instance="127.0.0.1:`) || !strings.Contains(k, `job="test"`) {
				t.Fatalf("series key %q", k)
			}
		}
	})
	t.Run("empty is inconclusive", func(t *testing.T) {
		res := run(t, buildOne(t, promqlYAML(prom.URL, `pool_active_connections{pool="nope"}`, "value < 50")), Input{})
		wantOutcome(t, res, Inconclusive, `returned no series: no data to judge`, "where none means zero, give the fallback to that counter")
		// and with it, no errors yet is zero, and judged
		wantOutcome(t, run(t, buildOne(t, promqlYAML(prom.URL, `sum(pool_active_connections{pool="nope"}) or vector(0)`, "value < 50")), Input{}), Pass)
		wantNotServed(t, res, false)
	})
	t.Run("rejected query is an error", func(t *testing.T) {
		res := run(t, buildOne(t, promqlYAML(prom.URL, "max(pool_active_connections", "value < 50")), Input{})
		wantOutcome(t, res, Error, "the query was rejected by Prometheus (bad_data)")
	})
	t.Run("range vector is an error", func(t *testing.T) {
		res := run(t, buildOne(t, promqlYAML(prom.URL, "pool_active_connections[1m]", "value < 50")), Input{})
		wantOutcome(t, res, Error, "returned a range vector", "rate(...[5m])")
	})
	t.Run("string is an error", func(t *testing.T) {
		res := run(t, buildOne(t, promqlYAML(prom.URL, `"pool"`, "value < 50")), Input{})
		wantOutcome(t, res, Error, "the query returned a string; write one that returns a number")
	})
	// An infinity is a number past every threshold (histogram_quantile in the +Inf
	// bucket, a rate over a zero): judged, never taken for no data as NaN is.
	t.Run("infinities are judged", func(t *testing.T) {
		res := run(t, buildOne(t, promqlYAML(prom.URL, "max(pool_active_connections) / 0", "value < 50")), Input{})
		wantOutcome(t, res, Fail, "value < 50 is false: value = +Inf")
		res = run(t, buildOne(t, promqlYAML(prom.URL, "-max(pool_active_connections) / 0", "value > -50")), Input{})
		wantOutcome(t, res, Fail, "value > -50 is false: value = -Inf")
	})
	// A query that names the deploy judges its series only; outside a deploy the matcher
	// is left out. (The pool label stands in for a version label here.)
	t.Run("query names the deploy", func(t *testing.T) {
		c := buildOne(t, promqlYAML(prom.URL, `max(pool_active_connections{ {{- with .Deploy.Service }}pool="{{ . }}"{{ end -}} })`, "value < 5"))
		res := run(t, c, Input{Deploy: &Deploy{ID: "d-7", Service: "db", Version: "v2"}})
		wantOutcome(t, res, Pass)
		if res.Vars["value"] != 3.0 {
			t.Fatalf("value %v in the deploy of db; want db's 3", res.Vars["value"])
		}
		wantOutcome(t, run(t, c, Input{}), Fail, "value < 5 is false: value = 7")
		res = run(t, c, Input{Deploy: &Deploy{ID: "d-8", Service: "queue", Version: "v2"}})
		wantOutcome(t, res, Inconclusive, `query max(pool_active_connections{pool="queue"}) returned no series`)
	})
	// An error ratio with no requests in its window is 0/0: no data, not a failure.
	t.Run("NaN is inconclusive", func(t *testing.T) {
		ratio := `sum(rate(quiet_requests_total{code="500"}[10s])) / sum(rate(quiet_requests_total[10s]))`
		deadline := time.Now().Add(60 * time.Second)
		for { // two scrapes in the window, so that rate() has something to say
			if v, err := prom.Query(context.Background(), ratio); err == nil && v == "NaN" {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("Prometheus never answered NaN: %q %v", v, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		wantOutcome(t, run(t, buildOne(t, promqlYAML(prom.URL, ratio, "value < 0.01")), Input{}), Inconclusive, "returned NaN for every series (1): no data to judge")
		// a NaN beside a number is judged: the number is there
		res := run(t, buildOne(t, promqlYAML(prom.URL, `sum by (code) (rate(quiet_requests_total[10s])) / sum by (code) (rate(quiet_requests_total[10s])) or max(pool_active_connections) * 0`, "series == 3")), Input{})
		wantOutcome(t, res, Pass)
	})
	// Prometheus reads the window as a range: right after a deploy, a few seconds of it.
	t.Run("window since the deploy", func(t *testing.T) {
		c := buildOne(t, promqlYAML(prom.URL, `max(max_over_time(pool_active_connections{pool="db"}[{{ .Window }}]))`, "value == 3"))
		wantOutcome(t, run(t, c, Input{Since: time.Now().Add(-3 * time.Second)}), Pass)
		wantOutcome(t, run(t, c, Input{}), Pass)
	})
	// Seed 001's leak as the pool metric shows it: the connections pile up after the deploy.
	t.Run("leak shows in the pool metric", func(t *testing.T) {
		c := buildOne(t, promqlYAML(prom.URL, "max(pool_active_connections)", "value < 50"))
		for deadline := time.Now().Add(60 * time.Second); ; { // two scrapes, a second apart, before the change
			v, err := prom.Query(context.Background(), `count_over_time(pool_active_connections{pool="db"}[1m])`)
			if err == nil && v != "" && v != "0" && v != "1" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Prometheus never scraped twice: %q %v", v, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		before := time.Now()
		active.WithLabelValues("db").Set(80)
		deadline := time.Now().Add(60 * time.Second)
		for {
			v, err := prom.Query(context.Background(), "max(pool_active_connections)")
			if err == nil && v == "80" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Prometheus never scraped 80: %q %v", v, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		wantOutcome(t, run(t, c, Input{}), Fail, "value < 50 is false: value = 80")

		// evaluation_delay reads the past: set to reach 0.3 s before the change (one of the
		// two scrapes before it is older), the same query sees the pools as they were, 7 at
		// most.
		delay := time.Since(before) + 300*time.Millisecond
		late := buildOne(t, promqlYAML(prom.URL, "max(pool_active_connections)", "value < 50")+
			fmt.Sprintf("    evaluation_delay: %dms\n", delay.Milliseconds()))
		res := run(t, late, Input{})
		wantOutcome(t, res, Pass)
		if res.Vars["value"] != 7.0 || !strings.Contains(strings.Join(res.Transcript, "\n"), "evaluation_delay "+(time.Duration(delay.Milliseconds())*time.Millisecond).String()+" before the run") {
			t.Fatalf("value %v, transcript %q; want 7, read %s before the run", res.Vars["value"], res.Transcript, delay)
		}
	})
	t.Run("unreachable is an error", func(t *testing.T) {
		c := buildOne(t, promqlYAML(prom.URL, "max(pool_active_connections)", "value < 50"))
		prom.Stop()
		wantOutcome(t, run(t, c, Input{}), Error, "could not query Prometheus: ", "connection refused")
	})
}

// In a verification, a query that evaluation_delay puts before the deploy started is no
// data yet, and Prometheus is not asked (the server here answers nothing).
func TestPromQLEvaluationDelayBeforeTheDeploy(t *testing.T) {
	c := buildOne(t, promqlYAML("http://127.0.0.1:1", `sum(rate(requests_total[{{ .Window }}]))`, "value < 1")+"    evaluation_delay: 1m\n")
	res := run(t, c, Input{Since: time.Now().Add(-30 * time.Second)})
	wantOutcome(t, res, Inconclusive, "no data yet: evaluation_delay 1m0s puts the query at ", ", before the deploy started at ")
	// Outside a verification the query is evaluated a minute back, and asked.
	wantOutcome(t, run(t, c, Input{}), Error, "could not query Prometheus")
}

// TestPromQLNotPrometheus: a server that is not Prometheus, or that hangs, or that answers
// without end, is an error within the check's timeout.
func TestPromQLNotPrometheus(t *testing.T) {
	done := testDone(t)
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		timeout time.Duration
		reason  []string
	}{
		{"html", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>Grafana</html>") }, time.Second, []string{"the answer is not Prometheus's query API"}},
		{"502", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "bad gateway", http.StatusBadGateway) }, time.Second, []string{"answered 502: bad gateway"}},
		// An auth proxy in front of Prometheus: the query is sent to its login page, which
		// answers 200 with HTML.
		{"login page", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/login" {
				http.Redirect(w, r, "/login?rd="+url.QueryEscape(r.URL.Path), http.StatusFound)
				return
			}
			fmt.Fprint(w, "<!DOCTYPE html><html><title>Sign in</title></html>")
		}, time.Second, []string{"the answer is not Prometheus's query API", "Sign in"}},
		// Another API's JSON is not a query Prometheus rejected.
		{"other json", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"status":"ok","app":"gateway"}`) },
			time.Second, []string{"the answer is not Prometheus's query API", `"app":"gateway"`}},
		{"hangs", hang(done), time.Second, []string{"timed out"}},
		// Enough time to read to the cap: the cap, not the deadline, must stop it.
		{"huge", hugeBody(`{"status":"success","data":{"resultType":"vector","result":[`, 20<<20), 30 * time.Second, []string{"answered more than 16777216 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.Replace(promqlYAML(serve(t, tc.handler).URL, "up", "value == 1"), "timeout: 5s", "timeout: "+tc.timeout.String(), 1)
			res := run(t, buildOne(t, y), Input{})
			wantOutcome(t, res, Error, tc.reason...)
			if res.Duration > tc.timeout+3*time.Second {
				t.Fatalf("took %s with a %s timeout", res.Duration, tc.timeout)
			}
		})
	}
}

func TestParsePromResponse(t *testing.T) {
	r, err := ParsePromResponse(200, []byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[1700000000.1,"1"]},{"metric":{},"value":[1700000000.1,"+Inf"]}]}}`))
	if err != nil || len(r.Samples) != 2 || r.Samples[0].Labels["job"] != "a" || !math.IsInf(r.Samples[1].Value, 1) {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := ParsePromResponse(400, []byte(`{"status":"error","errorType":"bad_data","error":"parse error at char 4"}`)); err == nil ||
		err.Error() != "the query was rejected by Prometheus (bad_data): parse error at char 4" {
		t.Fatalf("error: %v", err)
	}
	if _, err := ParsePromResponse(200, []byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,2]}]}}`)); err == nil {
		t.Fatal("an unquoted value was accepted")
	}
	// A native histogram's sample has no value to judge; the error says what to ask.
	_, err = ParsePromResponse(200, []byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"rpc_seconds"},"histogram":[1700000000,{"count":"3","sum":"0.5","buckets":[[0,"0.1","0.2","3"]]}]}]}}`))
	if err == nil || !strings.Contains(err.Error(), "series 0 is a native histogram, not a number") || !strings.Contains(err.Error(), "histogram_quantile(0.99, ...)") {
		t.Fatalf("native histogram: %v", err)
	}
}

// FuzzParsePromResponse: any answer parses or is an error; a success has finite label maps
// and one sample per series.
func FuzzParsePromResponse(f *testing.F) {
	f.Add(200, []byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},"value":[1,"2"]}]}}`))
	f.Add(200, []byte(`{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}`))
	f.Add(200, []byte(`{"status":"success","data":{"resultType":"matrix","result":[]}}`))
	f.Add(422, []byte(`{"status":"error","errorType":"execution","error":"boom"}`))
	f.Add(502, []byte(`<html>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		r, err := ParsePromResponse(status, body)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for _, s := range r.Samples {
			if s.Labels == nil {
				t.Fatal("nil labels")
			}
		}
	})
}

// A deploy's fields are put into a query only when they can stand for nothing but
// themselves: a version that would close the label's string (and add "or vector(1)", which
// passes any threshold) is an error before anything is asked of Prometheus.
func TestPromQLQueryDeployFieldsAreSafe(t *testing.T) {
	var asked []string
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.FormValue("query"))
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"3"]}]}}`)
	}))
	c := buildOne(t, promqlYAML(srv.URL, `max(pool_active_connections{version="{{ .Deploy.Version }}"})`, "value < 50"))
	for _, version := range []string{`v2"} or vector(1) #`, `v2'`, "v2`", `v2\`, "v2\nx", "v2 or", "v2)", "v2{"} {
		res := run(t, c, Input{Deploy: &Deploy{ID: "d-1", Service: "web", Version: version}})
		wantOutcome(t, res, Error, "the deploy's version", "which a query cannot hold safely")
	}
	if len(asked) != 0 {
		t.Fatalf("Prometheus was asked %q", asked)
	}
	res := run(t, c, Input{Deploy: &Deploy{ID: "d-1", Service: "web", Version: "web:2026.12.05-rc.1+g0a1b2c3/eu@1_x"}})
	wantOutcome(t, res, Pass)
	if want := `max(pool_active_connections{version="web:2026.12.05-rc.1+g0a1b2c3/eu@1_x"})`; len(asked) != 1 || asked[0] != want {
		t.Fatalf("asked %q; want %q", asked, want)
	}
	// {{ .Window }}: the window (5m unless set), or in a verification the time since the
	// deploy started when that is shorter (cut to whole milliseconds from the query's time,
	// itself cut to the millisecond: 36999ms when the run starts within a millisecond)
	asked = nil
	c = buildOne(t, promqlYAML(srv.URL, `sum(rate(http_requests_total[{{ $.Window }}]))`, "value < 50"))
	for _, in := range []Input{{}, {Since: time.Now().Add(-37 * time.Second)}, {Since: time.Now().Add(-time.Hour)}} {
		wantOutcome(t, run(t, c, in), Pass)
	}
	if len(asked) != 3 || asked[0] != "sum(rate(http_requests_total[300s]))" || asked[2] != "sum(rate(http_requests_total[300s]))" ||
		!regexp.MustCompile(`^sum\(rate\(http_requests_total\[(36999|3[78]\d\d\d)ms\]\)\)$`).MatchString(asked[1]) {
		t.Fatalf("asked %q; want the 5m window, the 37 s since the deploy in ms, the 5m window", asked)
	}
	for d, want := range map[time.Duration]string{0: "1ms", 400 * time.Microsecond: "1ms", 999 * time.Millisecond: "999ms",
		time.Second: "1s", 37250*time.Millisecond + 999*time.Microsecond: "37250ms", 5 * time.Minute: "300s"} {
		if got := promDuration(d); got != want {
			t.Errorf("promDuration(%s) = %s; want %s", d, got, want)
		}
	}
	asked = nil
	c = buildOne(t, promqlYAML(srv.URL, `sum(rate(http_requests_total[{{ .Window }}]))`, "value < 50")+"    window: 90s\n")
	wantOutcome(t, run(t, c, Input{}), Pass)
	wantOutcome(t, run(t, c, Input{Since: time.Now().Add(-time.Hour)}), Pass)
	if len(asked) != 2 || asked[0] != "sum(rate(http_requests_total[90s]))" || asked[1] != asked[0] {
		t.Fatalf("asked %q; want the window of 90s", asked)
	}
	asked = nil
	// a field the template does not read is not checked
	c = buildOne(t, promqlYAML(srv.URL, `max(up{job="{{ .Deploy.Service }}"})`, "value < 50"))
	wantOutcome(t, run(t, c, Input{Deploy: &Deploy{Service: "web", Version: `"quoted"`}}), Pass)
}

// A query's template is checked as the config loads: a field it does not have, in a deploy
// or outside one, and a template that does not parse.
func TestPromQLQueryTemplateErrors(t *testing.T) {
	for _, tc := range []struct{ query, want string }{
		{`max(x{version="{{ .Deploy.Verison }}"})`, "can't evaluate field Verison"},
		{`max(x{n="{{ .Nonce }}"})`, "can't evaluate field Nonce"},
		{`max(x{v="{{ .Deploy.Version }"})`, "bad template"},
		{`max(x{v="{{ with .Deploy.Version }}{{ . }}{{ else }}{{ .Deploy.Tag }}{{ end }}"})`, "can't evaluate field Tag"},
	} {
		wantBuildError(t, promqlYAML("http://127.0.0.1:9", tc.query), "query", tc.want)
	}
	wantBuildError(t, promqlYAML("http://127.0.0.1:9", `x{v="{{ .Deploy.Verison }}"}`), ".Deploy.Version, .Deploy.Environment")
	// a window the query does not read would do nothing
	wantBuildError(t, promqlYAML("http://127.0.0.1:9", `max(x)`)+"    window: 10m\n", "window", "does not read {{ .Window }}")
	wantBuildError(t, promqlYAML("http://127.0.0.1:9", `max(x[{{ .Window }}])`)+"    window: 10ms\n", "window", "too short")
}

// FuzzDeployQuery: whatever a deploy's fields hold, a rendered query holds them only
// as themselves: no quote, backslash, space or bracket of theirs comes through.
func FuzzDeployQuery(f *testing.F) {
	f.Add(`v2"} or vector(1) #`, "web")
	f.Add("v1.2.3", "web")
	f.Add("\u0022", "we b")
	q, err := compileDeployQuery(`max(x{version="{{ .Deploy.Version }}", service='{{ .Deploy.Service }}'})`)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, version, service string) {
		out, err := q.render(&Deploy{Version: version, Service: service}, time.Minute)
		if err != nil {
			return
		}
		if want := `max(x{version="` + version + `", service='` + service + `'})`; out != want {
			t.Fatalf("rendered %q; want %q", out, want)
		}
		if strings.ContainsAny(version+service, "\"'`{}() \\\n,=~!#") {
			t.Fatalf("version %q, service %q put into %q", version, service, out)
		}
	})
}

// TestPromQLDefaults holds the README: /api/v1/query is appended to server (once), and
// {{ .Window }} is 5m unless window says otherwise.
func TestPromQLDefaults(t *testing.T) {
	for server, want := range map[string]string{
		"http://127.0.0.1:9091":                    "http://127.0.0.1:9091/api/v1/query",
		"http://127.0.0.1:9091/prom/":              "http://127.0.0.1:9091/prom/api/v1/query",
		"http://127.0.0.1:9091/api/v1/query":       "http://127.0.0.1:9091/api/v1/query",
		"http://127.0.0.1:9091/prom/api/v1/query/": "http://127.0.0.1:9091/prom/api/v1/query",
	} {
		p := buildOne(t, promqlYAML(server, "sum(rate(x[{{ .Window }}]))")).prober.(*PromQL)
		if p.endpoint != want || p.window != 5*time.Minute || p.delay != 0 {
			t.Errorf("server %s: endpoint %s, window %s, evaluation_delay %s", server, p.endpoint, p.window, p.delay)
		}
	}
}
