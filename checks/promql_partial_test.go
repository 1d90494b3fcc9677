package checks

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/internal/promtest"
)

// TestPromQLPartialAnswer: a Prometheus that answers for several (here one that reads two
// others' samples through remote read, one scraping the old pods, one the new; Thanos
// Query and its stores alike) answers with what it could reach when a part is down, and
// says so only in a warning. The new pods' leaking pool is in the part that is down:
// judged, the partial answer passed on the old pods' numbers. It is an error: vigil could
// not measure.
func TestPromQLPartialAnswer(t *testing.T) {
	exporter := func(v float64) string {
		reg := prometheus.NewRegistry()
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "pool_active_connections", Help: "Connections in use."})
		reg.MustRegister(g)
		g.Set(v)
		return promtest.Exporter(t, reg)
	}
	oldPods := promtest.Start(t, promtest.Options{Targets: []string{exporter(3)}, ScrapeInterval: time.Second})
	newPods := promtest.Start(t, promtest.Options{Targets: []string{exporter(80)}, ScrapeInterval: time.Second})
	oldPods.WaitForScrape(t, 60*time.Second)
	newPods.WaitForScrape(t, 60*time.Second)
	front := promtest.Start(t, promtest.Options{Targets: []string{promtest.Exporter(t, prometheus.NewRegistry())}, ScrapeInterval: time.Second,
		RemoteRead: []string{oldPods.URL + "/api/v1/read", newPods.URL + "/api/v1/read"}})
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if v, err := front.Query(context.Background(), "count(pool_active_connections)"); err == nil && v == "2" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the front Prometheus never read both pools: %q %v", v, err)
		}
	}
	c := buildOne(t, promqlYAML(front.URL, "max(pool_active_connections)", "value < 50"))
	wantOutcome(t, run(t, c, Input{}), Fail, "value < 50 is false: value = 80")

	newPods.Stop()
	res := run(t, c, Input{})
	wantOutcome(t, res, Error, "the answer came with a warning from Prometheus", "remote_read", "the result may be partial")
}

// Info-level notes (Prometheus 2.50 and 2.51 sent them among the warnings, later ones in
// "infos") are written down and the result judged; a PromQL warning says the number is
// wrong, and is an error like a partial answer.
func TestPromQLWarningsAndNotes(t *testing.T) {
	for _, tc := range []struct {
		body string
		err  string
	}{
		{`"warnings":["PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"pool\""]`, ""},
		{`"infos":["PromQL info: metric might not be a counter"]`, ""},
		{`"warnings":["PromQL warning: bucket label \"le\" is missing or has a malformed value of \"\" for metric name \"latency\""]`, `bucket label "le" is missing`},
	} {
		res, err := ParsePromResponse(200, []byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"3"]}]},`+tc.body+`}`))
		if err != nil {
			t.Fatal(err)
		}
		tr := &Transcript{}
		err = promWarnings(res, tr)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Fatalf("%s: error %v, want %q", tc.body, err, tc.err)
		}
		if !strings.Contains(strings.Join(tr.Lines(), "\n"), "from Prometheus: PromQL") {
			t.Fatalf("%s: not in the transcript: %q", tc.body, tr.Lines())
		}
	}
}

// The query carries vigil's remaining time as Prometheus's timeout (the README says so), so
// that Prometheus can stop evaluating when vigil stops waiting.
func TestPromQLTellsPrometheusItsTimeout(t *testing.T) {
	var timeouts []string
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		timeouts = append(timeouts, r.FormValue("timeout"))
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"3"]}]}}`)
	}))
	wantOutcome(t, run(t, buildOne(t, promqlYAML(srv.URL, "max(up)", "value < 50")), Input{}), Pass)
	if len(timeouts) != 1 {
		t.Fatalf("asked %d times", len(timeouts))
	}
	d, err := time.ParseDuration(timeouts[0])
	if err != nil || d <= 0 || d > 5*time.Second || !strings.HasSuffix(timeouts[0], "ms") {
		t.Fatalf("timeout %q (%v); want the time left of the check's 5s, in milliseconds", timeouts[0], err)
	}
}
