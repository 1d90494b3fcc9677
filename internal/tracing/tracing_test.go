package tracing

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/jaegertest"
)

func TestOffByDefaultCostsNothing(t *testing.T) {
	t.Parallel()
	tr, err := New(t.Context(), configs.Tracing{}, Options{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if tr.On() {
		t.Fatal("tracing is on with nothing configured")
	}
	base := http.DefaultTransport
	if tr.Transport(base) != base {
		t.Error("with tracing off the transport must be the base itself")
	}
	ctx, span := tr.Tracer("test").Start(t.Context(), "x")
	span.End()
	if TraceID(ctx) != "" {
		t.Errorf("a span with tracing off has trace id %q", TraceID(ctx))
	}
}

func TestEndpointPrecedence(t *testing.T) {
	t.Parallel()
	env := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://general:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://traces:4318/v1/traces"}
	if e := Endpoint(configs.Tracing{OTLPEndpoint: "http://config:4318"}, env); e != "http://config:4318/v1/traces" {
		t.Errorf("the block should win: %s", e)
	}
	if e := Endpoint(configs.Tracing{}, env); e != "http://traces:4318/v1/traces" {
		t.Errorf("the traces variable should win over the general one: %s", e)
	}
	if e := Endpoint(configs.Tracing{}, env[:1]); e != "http://general:4318/v1/traces" {
		t.Errorf("general variable: %s", e)
	}
	if _, err := New(t.Context(), configs.Tracing{}, Options{Environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:1", "OTEL_TRACES_SAMPLER_ARG=7"}}); err == nil {
		t.Error("a sampler ratio of 7 should be refused")
	}
}

// Requests through Transport carry the span's trace context, and the trace URL links it.
func TestTransportPropagatesAndRecords(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tr, err := New(t.Context(), configs.Tracing{TraceURL: "https://jaeger.example/trace/{trace_id}"}, Options{Exporter: exp, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get("Traceparent") }))
	defer srv.Close()
	ctx, span := tr.Tracer("test").Start(t.Context(), "check run")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := (&http.Client{Transport: tr.Transport(http.DefaultTransport)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	span.End()
	id := TraceID(ctx)
	if len(id) != 32 || !strings.Contains(got, id) {
		t.Fatalf("traceparent %q does not carry the trace id %q", got, id)
	}
	if u := tr.TraceURL(id); u != "https://jaeger.example/trace/"+id {
		t.Errorf("trace url %q", u)
	}
	if err := tr.sdk.ForceFlush(context.Background()); err != nil { // Shutdown would empty the in-memory exporter
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[0].Name != "GET" || spans[0].Parent.SpanID() != span.SpanContext().SpanID() {
		t.Errorf("spans: %v", spans.Snapshots())
	}
}

// Spans reach a real Jaeger over OTLP/HTTP and come back from its query API with the ids
// vigil saw.
func TestExportToJaeger(t *testing.T) {
	t.Parallel()
	j := jaegertest.Start(t)
	tr, err := New(t.Context(), configs.Tracing{OTLPEndpoint: j.OTLP}, Options{Version: "test", Location: "here", Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, root := tr.Tracer("test").Start(t.Context(), "verification")
	_, child := tr.Tracer("test").Start(ctx, "check run")
	child.End()
	root.End()
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	spans := j.Trace(t, TraceID(ctx), 2, 30*time.Second)
	byName := map[string]jaegertest.Span{}
	for _, s := range spans {
		byName[s.OperationName] = s
	}
	if byName["check run"].Parent() != byName["verification"].SpanID || byName["verification"].SpanID == "" {
		t.Errorf("spans: %+v", spans)
	}
}

// url.full leaves out what can hold secrets: user info and the query (a token in ?key=),
// and the fragment; spans leave the process.
func TestURLFullHoldsNoSecrets(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tr, err := New(t.Context(), configs.Tracing{}, Options{Exporter: exp, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	u := strings.Replace(srv.URL, "http://", "http://probe:hunter2@", 1) + "/api/items?api_key=s3cr3t&x=1#frag"
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	resp, err := (&http.Client{Transport: tr.Transport(http.DefaultTransport)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := tr.sdk.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("spans: %v", spans.Snapshots())
	}
	attrs := map[string]string{}
	for _, kv := range spans[0].Attributes {
		attrs[string(kv.Key)] = kv.Value.String()
		for _, secret := range []string{"hunter2", "s3cr3t", "probe", "frag"} {
			if strings.Contains(kv.Value.String(), secret) {
				t.Errorf("attribute %s = %q holds %q", kv.Key, kv.Value.String(), secret)
			}
		}
	}
	if want := srv.URL + "/api/items"; attrs["url.full"] != want || attrs["server.address"] != "127.0.0.1" || attrs["http.response.status_code"] != "200" {
		t.Errorf("attributes %v; want url.full %s", attrs, want)
	}
	_ = tr.Shutdown(context.Background())
}

// A collector that takes connections and never answers costs the probes nothing: spans
// are exported in the background (and dropped once the queue is full), so thousands of
// requests go at the target's pace, and a shutdown gives up at its deadline.
func TestAHangingCollectorDelaysNoProbe(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn // open, never answered
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	tr, err := New(t.Context(), configs.Tracing{OTLPEndpoint: "http://" + ln.Addr().String()}, Options{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	client := &http.Client{Transport: tr.Transport(http.DefaultTransport)}
	done := make(chan error, 1)
	go func() {
		for range 3000 { // more than the exporter's queue holds
			ctx, span := tr.Tracer("test").Start(context.Background(), "check run")
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			resp, err := client.Do(req)
			span.End()
			if err != nil {
				done <- err
				return
			}
			resp.Body.Close()
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second): // a generous bound on a hang: blocked on the collector
		t.Fatal("3000 probe requests did not finish in 60 s with the collector hanging")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	stopped := make(chan struct{})
	go func() { _ = tr.Shutdown(ctx); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown with a 2 s deadline still waits on the hanging collector after 30 s")
	}
}
