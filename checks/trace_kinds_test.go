package checks

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/tracing"
)

// "Every request vigil makes to a target carries W3C traceparent": for every kind that
// sends requests with headers (http, script's HTTP and gRPC steps, sla, propagation's write
// and reads, fleet's discovery and health, websocket's upgrade, grpc's call), each request
// the target received carries the run's trace id. The websocket upgrade and the gRPC calls
// went without it.
func TestEveryKindCarriesTheTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr, err := tracing.New(t.Context(), configs.Tracing{}, tracing.Options{Exporter: exp, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })

	var mu sync.Mutex
	var seen []string // "PATH traceparent" of each HTTP request, websocket upgrades included
	var items []string
	web := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path+" "+r.Header.Get("Traceparent"))
		mu.Unlock()
		switch {
		case r.URL.Path == "/ws":
			c, err := websocket.Accept(w, r, nil)
			if err == nil {
				_ = c.Write(r.Context(), websocket.MessageText, []byte("hello"))
				_ = c.CloseNow()
			}
		case r.URL.Path == "/items" && r.Method == http.MethodPost:
			mu.Lock()
			items = append(items, r.Header.Get("X-Marker"))
			mu.Unlock()
			fmt.Fprint(w, `{}`)
		case r.URL.Path == "/items":
			mu.Lock()
			fmt.Fprintf(w, `{"items": %q}`, strings.Join(items, ","))
			mu.Unlock()
		case r.URL.Path == "/instances":
			fmt.Fprintf(w, `{"instances": [{"url": "http://%s"}]}`, r.Host)
		case r.URL.Path == "/version":
			fmt.Fprint(w, `{"version": "v2"}`)
		default:
			fmt.Fprint(w, `{"order": "o-1"}`)
		}
	}))
	g := newGRPCServer(t, nil, func(s *grpc.Server) {
		withOrders(t, ordersFile(t), false)(s)
		withHealth(map[string]healthpb.HealthCheckResponse_ServingStatus{"": healthpb.HealthCheckResponse_SERVING})(s)
	})
	cfg, err := configs.Parse(t.TempDir()+"/vigil.yaml", fmt.Appendf(nil, `
checks:
  - {name: http, kind: http, request: {url: "%[1]s/h"}}
  - name: script
    kind: script
    steps:
      - {name: cart, request: {url: "%[1]s/cart"}}
      - {name: order, grpc: {address: %[2]q, method: vigiltest.orders.v1.Orders/GetOrder, request: '{"id": "o-1"}'}}
  - {name: sla, kind: sla, timeout: 10s, request: {url: "%[1]s/sla"}, requests: 3, concurrency: 1}
  - name: propagation
    kind: propagation
    timeout: 5s
    write: {method: POST, url: "%[1]s/items", headers: {X-Marker: "{{ .Nonce }}"}}
    read: [{name: r, request: {url: "%[1]s/items"}}]
  - name: fleet
    kind: fleet
    targets: {url: "%[1]s/instances", path: "instances.#.url"}
    health: {path: /healthz}
    version: {path: /version, field: version}
  - {name: websocket, kind: websocket, url: "%[3]s/ws", steps: [{expect: hello}]}
  - {name: grpc, kind: grpc, address: %[2]q}
`, web.URL, g.addr, "ws"+strings.TrimPrefix(web.URL, "http")), configs.Options{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	hc := NewHTTPClient("vigil-test")
	hc.Wrap = tr.Transport
	t.Cleanup(hc.CloseIdle)
	list, err := Build(cfg, Deps{HTTP: hc, Tracing: tr})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		mu.Lock()
		seen = seen[:0]
		mu.Unlock()
		g.mu.Lock()
		g.md = nil
		g.mu.Unlock()
		res := RunWithRetries(context.Background(), c, Input{}, Retry{})
		if res.Outcome != Pass || len(res.TraceID) != 32 {
			t.Errorf("%s: %s %v, trace id %q", c.Name, res.Outcome, res.Reasons, res.TraceID)
			continue
		}
		mu.Lock()
		requests := append([]string{}, seen...)
		mu.Unlock()
		g.mu.Lock()
		for _, md := range g.md {
			requests = append(requests, "grpc "+strings.Join(md.Get("traceparent"), ","))
		}
		g.mu.Unlock()
		if len(requests) == 0 {
			t.Errorf("%s: the target received nothing", c.Name)
		}
		for _, r := range requests {
			if !strings.Contains(r, "-"+res.TraceID+"-") {
				t.Errorf("%s: request %q lacks the run's trace %s in traceparent", c.Name, r, res.TraceID)
			}
		}
	}
}
