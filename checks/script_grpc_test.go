package checks

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// A journey across HTTP and gRPC: an HTTP step's answer names an order, a gRPC step reads
// it by that id (a value extracted into its request template) and hands one of its items
// to the next steps; a step that expects NOT_FOUND says so. Each step's call is judged by
// its own assertions, by default that it answered OK.
func TestScriptGRPCSteps(t *testing.T) {
	fd := ordersFile(t)
	g := newGRPCServer(t, nil, withOrders(t, fd, false))
	web := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cart":
			fmt.Fprint(w, `{"order": "o-1"}`)
		case "/items/lamp":
			fmt.Fprint(w, `{"stock": 3}`)
		default:
			http.NotFound(w, r)
		}
	}))
	journey := func(order, extra string) *Check {
		return buildOne(t, fmt.Sprintf(`
checks:
  - name: order-journey
    kind: script
    timeout: 5s
    steps:
      - {name: cart, request: {url: "%[1]s/cart"}, extract: {order: json.order}}
      - name: get order
        grpc: {address: %[2]q, method: vigiltest.orders.v1.Orders/GetOrder, request: '{"id": "%[3]s"}', metadata: {x-tenant: synthetic}}
        extract: {item: json.items.1, state: json.state, served: header.x-app-version}
        assert: ["response.state == 'SHIPPED'", "rpc_ms >= 0", "vars.order == 'o-1'"]
      - name: a deleted order
        grpc: {address: %[2]q, method: vigiltest.orders.v1.Orders/GetOrder, request: '{"id": "missing"}'}
        assert: ["grpc_code == 'NotFound'", "grpc_message contains 'missing'"]
      - {name: stock, request: {url: "%[1]s/items/{{ .item }}"}, assert: ["json.stock > 0"]}
%[4]s`, web.URL, g.addr, order, extra))
	}

	res := run(t, journey("{{ .order }}", ""), Input{})
	wantOutcome(t, res, Pass)
	if vars := res.Vars["vars"].(map[string]any); vars["item"] != "lamp" || vars["state"] != "SHIPPED" || vars["served"] != "v2" {
		t.Errorf("extracted %v", vars)
	}
	if got := g.lastMetadata("x-tenant"); len(got) != 0 {
		t.Errorf("the last call (the deleted order's) carried x-tenant %q; only the step that sets it should", got)
	}
	tr := strings.Join(res.Transcript, "\n")
	for _, want := range []string{"-- step 2: get order", `vigiltest.orders.v1.Orders/GetOrder {"id":"o-1"}`, "code OK in", "code NotFound in", `message no order "missing"`} {
		if !strings.Contains(tr, want) {
			t.Errorf("transcript lacks %q:\n%s", want, tr)
		}
	}

	// the step's default assertion: the call answered OK
	res = run(t, buildOne(t, fmt.Sprintf(`
checks:
  - name: j
    kind: script
    steps:
      - {name: get, grpc: {address: %q, method: vigiltest.orders.v1.Orders/GetOrder, request: '{"id": "missing"}'}}
`, g.addr)), Input{})
	wantOutcome(t, res, Fail, `step 1 (get): grpc_code == 'OK' is false: grpc_code = "NotFound" (NotFound: no order "missing")`)

	// an assertion on the response of a call that answered no message
	res = run(t, journey("missing", ""), Input{})
	wantOutcome(t, res, Fail, `step 2 (get order): grpc_code == 'OK' is false: grpc_code = "NotFound" (NotFound: no order "missing") (variables: order="o-1")`)

	// a request that does not fit the method's input: the step fails, the method uncalled
	res = run(t, journey(`{{ .order }}", "nope": "1`, ""), Input{})
	wantOutcome(t, res, Fail, "step 2 (get order): request does not fit vigiltest.orders.v1.GetOrderRequest")

	// a method the server's reflection does not know: the step fails, naming it
	res = run(t, buildOne(t, fmt.Sprintf(`
checks:
  - name: j
    kind: script
    steps:
      - {name: get, grpc: {address: %q, method: vigiltest.orders.v1.Orders/Nope}}
`, g.addr)), Input{})
	wantOutcome(t, res, Fail, "step 1 (get): vigiltest.orders.v1.Orders/Nope on", "Nope")

	// served_version reads the answer's metadata: v2 serves, a deploy of v3 has not landed
	res = run(t, journey("{{ .order }}", "    served_version: {header: X-App-Version}\n"), Input{Deploy: &Deploy{ID: "d1", Version: "v3"}})
	wantOutcome(t, res, Inconclusive, "step 2 (get order): answered by version v2, not v3 (the deploy's)")
	wantNotServed(t, res, true)
	if tr := strings.Join(res.Transcript, "\n"); !strings.Contains(tr, "served version: v2 (metadata x-app-version)") {
		t.Errorf("transcript:\n%s", tr)
	}
	wantOutcome(t, run(t, journey("{{ .order }}", "    served_version: {header: X-App-Version}\n"), Input{Deploy: &Deploy{ID: "d2", Version: "v2"}}), Pass)

	// a server that is not there: no answer, an error naming the step
	res = run(t, buildOne(t, fmt.Sprintf(`
checks:
  - name: j
    kind: script
    timeout: 2s
    steps:
      - {name: get, grpc: {address: %q, method: vigiltest.orders.v1.Orders/GetOrder}}
`, strings.TrimPrefix(closedURL(t), "http://"))), Input{})
	wantOutcome(t, res, Error, "step 1 (get): gRPC call of vigiltest.orders.v1.Orders/GetOrder on")
	if !res.NoAnswer {
		t.Errorf("a refused gRPC step is the service's silence: %+v", res)
	}
}

func TestScriptGRPCStepConfigErrors(t *testing.T) {
	head := "checks:\n  - name: j\n    kind: script\n    steps:\n"
	wantBuildError(t, head+`      - {request: {url: "http://127.0.0.1:1/"}, grpc: {address: "127.0.0.1:1", method: a.B/C}}`,
		"checks[0].steps[0]: both request and grpc are set")
	wantBuildError(t, head+`      - {grpc: {address: "127.0.0.1:1"}}`, "checks[0].steps[0].grpc.method: method is not set")
	wantBuildError(t, head+`      - {grpc: {address: "127.0.0.1:1", method: a.B/C, service: x}}`, "checks[0].steps[0].grpc.service")
	wantBuildError(t, head+`      - {grpc: {address: "no-port", method: a.B/C}}`, "checks[0].steps[0].grpc.address")
	wantBuildError(t, head+`      - {grpc: {address: "127.0.0.1:1", method: a.B/C, request: '{"id": "{{ .order }}"}'}}`,
		"checks[0].steps[0].grpc.request", "template reads .order, which no earlier step extracted")
	wantBuildError(t, head+`      - {grpc: {address: "127.0.0.1:1", method: a.B/C}, assert: ["status == 200"]}`,
		"checks[0].steps[0].assert[0]")
	wantBuildError(t, head+`      - {grpc: {address: "127.0.0.1:1", method: a.B/C}, extract: {x: "trailer.y"}}`,
		"checks[0].steps[0].extract.x")
}
