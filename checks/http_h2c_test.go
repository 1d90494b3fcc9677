package checks

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// serveH2C starts a server on 127.0.0.1 that speaks only HTTP/2 over plain http (prior
// knowledge, no HTTP/1.1 and no upgrade), as a gRPC-gateway or an Envoy listener may. It
// answers with the protocol the request came in; /early-hints sends a 103 at once and its
// answer 300 ms later.
func serveH2C(t *testing.T) string {
	t.Helper()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &p, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/early-hints" {
			w.Header().Set("Link", "</app.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
			time.Sleep(300 * time.Millisecond)
		}
		_, _ = io.WriteString(w, r.Proto)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// protocol: h2c checks a service that speaks only HTTP/2 over plain http, and proto says
// HTTP/2.0; without it, the check's HTTP/1.1 request gets no answer (this server resets
// the connection), an error. ttfb_ms over HTTP/2 is the final answer's too.
func TestH2COnlyService(t *testing.T) {
	url := serveH2C(t)
	wantOutcome(t, httpCheck(t, url, ", protocol: h2c", "status == 200", "proto == 'HTTP/2.0'", "body == 'HTTP/2.0'"), Pass)
	wantOutcome(t, httpCheck(t, url, "", "status == 200"), Error, "GET "+url)
	wantOutcome(t, httpCheck(t, url+"/early-hints", ", protocol: h2c", "proto == 'HTTP/2.0'", "ttfb_ms >= 300"), Pass)
}

// The shared client keeps a transport per protocol: a check with protocol: h2c and one
// without, to the same host and port, do not take each other's connections. The server
// here speaks both HTTP/1.1 and h2c, and tells which it got.
func TestH2CTransportIsItsOwn(t *testing.T) {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &p, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	list, err := buildYAML(t, fmt.Sprintf(`
checks:
  - name: h2c
    kind: http
    request: {url: "http://%[1]s/", protocol: h2c}
    assert: ["proto == 'HTTP/2.0' && body == 'HTTP/2.0'"]
  - name: plain
    kind: http
    request: {url: "http://%[1]s/"}
    assert: ["proto == 'HTTP/1.1' && body == 'HTTP/1.1'"]
`, ln.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append(list, list...) { // both orders
		wantOutcome(t, run(t, c, Input{}), Pass)
	}
}

func TestH2CConfig(t *testing.T) {
	wantBuildError(t, `
checks: [{name: a, kind: http, request: {url: "http://127.0.0.1:8080/", protocol: h2}}]
`, "checks[0].request.protocol", `"h2" is not a protocol this key sets`, `did you mean "h2c"?`)
	wantBuildError(t, `
checks: [{name: a, kind: http, request: {url: "https://127.0.0.1:8443/", protocol: h2c}}]
`, "checks[0].request.protocol", "h2c is HTTP/2 over plain http, and the url is https")
}

// protocol is a key of every configured request: a script's step and an sla's burst
// speak h2c with it too.
func TestH2COtherKindsRequests(t *testing.T) {
	url := serveH2C(t)
	for _, yaml := range []string{`
checks:
  - name: journey
    kind: script
    steps:
      - name: first
        request: {url: "%s/", protocol: h2c}
        assert: ["proto == 'HTTP/2.0' && body == 'HTTP/2.0'"]
`, `
checks:
  - name: burst
    kind: sla
    request: {url: "%s/", protocol: h2c}
    requests: 5
    concurrency: 2
    assert: ["error_rate == 0"]
`} {
		wantOutcome(t, run(t, buildOne(t, fmt.Sprintf(yaml, url)), Input{}), Pass)
	}
}
