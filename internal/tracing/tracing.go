// Package tracing is vigil's OpenTelemetry: built once in main from the tracing block and
// the standard OTEL_* variables, and passed down. When tracing is on, an SDK tracer
// provider makes real trace ids (a deploy verification is a trace, rounds, check runs and
// probe requests are its spans), probe requests carry W3C traceparent/tracestate so the
// target's own tracing backend records the probe's trace, and spans are exported over
// OTLP/HTTP when an endpoint is set. When it is off (no endpoint, no trace_url) everything
// here is a no-op: no span is made, no header is added, nothing is allocated per request.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/vigil-monitor/vigil/configs"
)

// Tracing holds the tracer provider and what derives from it. The zero value and nil are
// tracing off.
type Tracing struct {
	provider   trace.TracerProvider
	sdk        *sdktrace.TracerProvider // nil when off
	propagator propagation.TextMapPropagator
	traceURL   string
	// Endpoint is where spans are exported ("" when they are not).
	Endpoint string
}

// Options are what New needs besides the config.
type Options struct {
	Version  string
	Location string
	// Environ is the environment OTEL_* variables are read from; nil: os.Environ().
	Environ []string
	// Exporter replaces the OTLP exporter (tests record spans in memory with it).
	Exporter sdktrace.SpanExporter
}

func lookup(environ []string, name string) string {
	if environ == nil {
		return os.Getenv(name)
	}
	for i := len(environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(environ[i], "="); ok && k == name {
			return v
		}
	}
	return ""
}

// Endpoint is the OTLP/HTTP URL spans are posted to: the config's otlp_endpoint, else the
// standard OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (taken as it is), else
// OTEL_EXPORTER_OTLP_ENDPOINT, else "". The config wins where both are set. A base URL
// (otlp_endpoint, OTEL_EXPORTER_OTLP_ENDPOINT) gets /v1/traces appended, as the OTLP
// specification says.
func Endpoint(cfg configs.Tracing, environ []string) string {
	base := cfg.OTLPEndpoint
	if base == "" {
		if e := lookup(environ, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); e != "" {
			return e
		}
		base = lookup(environ, "OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	if base == "" || strings.HasSuffix(base, "/v1/traces") {
		return base
	}
	return strings.TrimSuffix(base, "/") + "/v1/traces"
}

// New builds tracing from the config. It is off (a no-op) unless an endpoint or trace_url
// is set, or opts.Exporter is given.
func New(ctx context.Context, cfg configs.Tracing, opts Options) (*Tracing, error) {
	endpoint := Endpoint(cfg, opts.Environ)
	if endpoint == "" && cfg.TraceURL == "" && opts.Exporter == nil {
		return &Tracing{}, nil
	}
	ratio := 1.0
	if cfg.SampleRatio != nil {
		ratio = *cfg.SampleRatio
	} else if s := lookup(opts.Environ, "OTEL_TRACES_SAMPLER_ARG"); s != "" {
		r, err := strconv.ParseFloat(s, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("tracing: OTEL_TRACES_SAMPLER_ARG=%q is not a ratio from 0 to 1", s)
		}
		ratio = r
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName("vigil"), semconv.ServiceVersion(opts.Version), attribute.String("vigil.location", opts.Location)))
	if err != nil && !errors.Is(err, resource.ErrSchemaURLConflict) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	popts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)))}
	exp := opts.Exporter
	if exp == nil && endpoint != "" {
		if exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint)); err != nil {
			return nil, fmt.Errorf("tracing: OTLP exporter for %s: %w", endpoint, err)
		}
	}
	if exp != nil {
		popts = append(popts, sdktrace.WithBatcher(exp))
	}
	sdk := sdktrace.NewTracerProvider(popts...)
	return &Tracing{provider: sdk, sdk: sdk, traceURL: cfg.TraceURL, Endpoint: endpoint,
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}, nil
}

// On reports whether tracing is on.
func (t *Tracing) On() bool { return t != nil && t.sdk != nil }

// Tracer returns a tracer for a part of vigil (a no-op one when tracing is off).
func (t *Tracing) Tracer(name string) trace.Tracer {
	if !t.On() {
		return noop.NewTracerProvider().Tracer(name)
	}
	return t.provider.Tracer("github.com/vigil-monitor/vigil/" + name)
}

// Transport wraps base so every request is a client span (named by its method, with the
// semantic-convention attributes) whose context travels in traceparent/tracestate; with
// tracing off it returns base unchanged. The span covers the round trip up to the
// response's headers. Its url.full has no user info and no query: those can hold secrets,
// and spans leave the process.
func (t *Tracing) Transport(base http.RoundTripper) http.RoundTripper {
	if !t.On() {
		return base
	}
	return &transport{base: base, tracer: t.provider.Tracer("github.com/vigil-monitor/vigil/probe"), propagator: t.propagator}
}

type transport struct {
	base       http.RoundTripper
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	u := *r.URL
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	attrs := []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLFull(u.String()),
		semconv.ServerAddress(r.URL.Hostname())}
	if p, err := strconv.Atoi(r.URL.Port()); err == nil {
		attrs = append(attrs, semconv.ServerPort(p))
	}
	ctx, span := t.tracer.Start(r.Context(), r.Method, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()
	r = r.Clone(ctx) // a RoundTripper must not change the request it was given
	t.propagator.Inject(ctx, propagation.HeaderCarrier(r.Header))
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		span.SetAttributes(semconv.ErrorTypeKey.String(fmt.Sprintf("%T", err)))
		span.SetStatus(codes.Error, err.Error())
		return resp, err
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, resp.Status)
	}
	return resp, nil
}

// Inject writes ctx's trace context into headers (for requests vigil does not send through
// Transport, such as a browser's).
func (t *Tracing) Inject(ctx context.Context, h http.Header) {
	if t.On() {
		t.propagator.Inject(ctx, propagation.HeaderCarrier(h))
	}
}

// TraceURL links a trace id to where it is viewed ("" without trace_url or trace id).
func (t *Tracing) TraceURL(traceID string) string {
	if t == nil || t.traceURL == "" || traceID == "" {
		return ""
	}
	return strings.ReplaceAll(t.traceURL, "{trace_id}", traceID)
}

// TraceID returns the trace id of ctx's span: "" when there is none, tracing is off, or
// the sampler dropped the trace (it was recorded nowhere, so a link to it opens nothing).
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() || !sc.IsSampled() {
		return ""
	}
	return sc.TraceID().String()
}

// Shutdown flushes spans not yet exported, within ctx.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.On() {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}
