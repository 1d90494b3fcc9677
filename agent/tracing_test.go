package agent

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/jaegertest"
	"github.com/vigil-monitor/vigil/internal/tracing"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
	"github.com/vigil-monitor/vigil/store"
)

// A deploy verification is a trace in a real Jaeger: the verification, each round, each
// check run and each probe request are spans of it; the target saw the same trace id in
// traceparent; the verdict's webhook, the deploy's API answer and the run page carry the
// trace id and its link; /metrics has it as an exemplar when scraped as OpenMetrics.
func TestVerificationIsATraceInJaeger(t *testing.T) {
	j := jaegertest.Start(t)
	var mu sync.Mutex
	var parents []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		parents = append(parents, r.Header.Get("Traceparent"))
		mu.Unlock()
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	tr, err := tracing.New(t.Context(), configs.Tracing{OTLPEndpoint: j.OTLP, TraceURL: "https://jaeger.example/trace/{trace_id}"},
		tracing.Options{Version: "test", Location: "here", Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	hook := loopback.NewWebhook(t)
	l := launch(t, t.TempDir(), webConfig{url: srv.URL, verify: "interval: 1m, count: 2", service: "on_failure: [rollback]",
		top: "notifiers:" + webhookNotifier("rollback", "rollback", hook)}.String(), Options{Tracing: tr})
	h := &harness{t: t, a: l.a, url: l.url, logs: &vigiltest.Buffer{}, stopFn: func() { _ = l.stop() }}
	t.Cleanup(h.stop)

	d := h.verdict(h.deploy("web", "v2"), 30*time.Second)
	if d["status"] != store.StatusFailed {
		t.Fatalf("status %v", d["status"])
	}
	c := checkOf(t, d, "home")
	id, _ := c["trace_id"].(string)
	if len(id) != 32 || c["trace_url"] != "https://jaeger.example/trace/"+id {
		t.Fatalf("the deploy's check has trace_id %q, trace_url %v", id, c["trace_url"])
	}
	mu.Lock()
	if len(parents) == 0 || !strings.Contains(parents[0], id) {
		t.Errorf("the target saw traceparent %v; want the run's trace id %s", parents, id)
	}
	mu.Unlock()
	if err := tr.Shutdown(t.Context()); err != nil { // flush what the batcher holds
		t.Fatal(err)
	}
	spans := j.Trace(t, id, 10, 30*time.Second) // the verification, round 1, and 4 visitors' runs and requests
	byName := map[string]jaegertest.Span{}
	ids := map[string]string{} // span id -> operation name
	for _, s := range spans {
		byName[s.OperationName] = s
		ids[s.SpanID] = s.OperationName
	}
	root, round, run, req := byName["verify web v2"], byName["round 1 home"], byName["check home"], byName["GET"]
	visitors, nested := 0, true // a round's runs: one per visitor (verify.visitors, 4)
	for _, s := range spans {
		switch parent := ids[s.Parent()]; s.OperationName {
		case "check home":
			nested = nested && strings.HasPrefix(parent, "round ")
			if s.Parent() == round.SpanID {
				visitors++
			}
		case "GET":
			nested = nested && parent == "check home"
		}
	}
	switch {
	case root.SpanID == "" || round.SpanID == "" || run.SpanID == "" || req.SpanID == "":
		t.Fatalf("missing spans; got %v", keys(byName))
	case round.Parent() != root.SpanID || visitors != 4 || !nested:
		t.Errorf("the spans do not nest verification > round > a check run per visitor (%d of 4) > request: %+v", visitors, spans)
	case root.Tag("deploy.version") != "v2" || root.Tag("vigil.verdict") != "failed" || run.Tag("vigil.outcome") != "fail":
		t.Errorf("attributes: verification %v, run %v", root.Tags, run.Tags)
	case req.Tag("http.response.status_code") != "500":
		t.Errorf("the request span: %v", req.Tags)
	}

	eventually(t, 20*time.Second, "the rollback", func() bool { return hook.Count(d["id"].(string)+":deploy_failed") == 1 })
	fc := hook.Deliveries()[0].Payload["failed_checks"].([]any)[0].(map[string]any)
	if fc["trace_id"] != id || fc["trace_url"] != "https://jaeger.example/trace/"+id {
		t.Errorf("webhook failed_checks[0]: %v", fc)
	}
	page := get(t, strings.TrimPrefix(c["run_url"].(string), ""), "")
	if !strings.Contains(page, `href="https://jaeger.example/trace/`+id+`"`) {
		t.Errorf("the run page does not link the trace")
	}
	metrics := get(t, l.url+"/metrics", "application/openmetrics-text")
	if !strings.Contains(metrics, `trace_id="`+id+`"`) {
		t.Errorf("no exemplar with the trace id on vigil_check_duration_seconds")
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func get(t *testing.T, url, accept string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, fmt.Sprint(string(b)))
	}
	return string(b)
}
