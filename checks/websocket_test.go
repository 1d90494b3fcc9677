package checks

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsServer is a real WebSocket server on loopback: each connection is handed to handle,
// and ends when the client goes away or the test does.
func wsServer(t *testing.T, handle func(ctx context.Context, c *websocket.Conn)) *httptest.Server {
	t.Helper()
	done := testDone(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"feed.v1"}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-done:
				cancel()
			case <-ctx.Done():
			}
		}()
		handle(ctx, c)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// priceFeed acknowledges a subscription, then publishes two updates.
func priceFeed(ctx context.Context, c *websocket.Conn) {
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if strings.Contains(string(msg), "subscribe") {
			_ = c.Write(ctx, websocket.MessageText, []byte(`{"op":"ack"}`))
			_ = c.Write(ctx, websocket.MessageBinary, []byte{0xde, 0xad})
			_ = c.Write(ctx, websocket.MessageText, []byte(`{"op":"update","price":42}`))
		}
	}
}

// mute reads and never sends: the hostile server of issue 19.
func mute(ctx context.Context, c *websocket.Conn) {
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return
		}
	}
}

func wsURL(srv *httptest.Server) string { return "ws" + strings.TrimPrefix(srv.URL, "http") }

func wsCheck(url, extra string) string {
	return fmt.Sprintf("\nchecks:\n  - name: ws\n    kind: websocket\n    timeout: 2s\n    url: %q\n%s", url, extra)
}

const subscribeSteps = `    subprotocols: [feed.v1]
    steps:
      - send: '{"op":"subscribe","topic":"prices"}'
      - expect: '"op":"ack"'
      - expect: '"op":"update"'
`

func TestWebSocketExchange(t *testing.T) {
	srv := wsServer(t, priceFeed)
	srv.Start()
	res := run(t, buildOne(t, wsCheck(wsURL(srv), subscribeSteps+`    assert: ["expects == 2", "messages == 3", "subprotocol == 'feed.v1'", "last_message contains 'price'"]`+"\n")), Input{})
	wantOutcome(t, res, Pass)
	if !strings.Contains(strings.Join(res.Transcript, "\n"), "< binary:3q0=") {
		t.Errorf("the binary message is not in the transcript: %q", res.Transcript)
	}
}

func TestWebSocketTLS(t *testing.T) {
	ca := newTestCA(t)
	srv := wsServer(t, priceFeed)
	srv.TLS = serverTLS(ca.leaf(t, 30*24*time.Hour))
	srv.StartTLS()
	url := "wss" + strings.TrimPrefix(srv.URL, "https")
	wantOutcome(t, run(t, buildOne(t, wsCheck(url, fmt.Sprintf("    tls: {ca_file: %q}\n%s", ca.pemFile, subscribeSteps))), Input{}), Pass)
	// Without the CA the handshake fails before any answer: vigil could not measure.
	wantOutcome(t, run(t, buildOne(t, wsCheck(url, subscribeSteps)), Input{}), Error, "could not open", "certificate")

	// A certificate for other names is the server's answer, refused by every client.
	other := wsServer(t, priceFeed)
	other.TLS = serverTLS(ca.leafFor(t, 30*24*time.Hour, []string{"ingress.local"}, []net.IP{net.IPv4(192, 0, 2, 1)}))
	other.StartTLS()
	url = "wss" + strings.TrimPrefix(other.URL, "https")
	wantOutcome(t, run(t, buildOne(t, wsCheck(url, fmt.Sprintf("    tls: {ca_file: %q}\n%s", ca.pemFile, subscribeSteps))), Input{}),
		Fail, "could not open", "certificate is valid for 192.0.2.1, not 127.0.0.1")
}

// A server that never sends: the expect ends at the check's timeout, as a failure.
func TestWebSocketSilentServerFails(t *testing.T) {
	srv := wsServer(t, mute)
	srv.Start()
	c := buildOne(t, strings.Replace(wsCheck(wsURL(srv), subscribeSteps), "timeout: 2s", "timeout: 300ms", 1))
	wantOutcome(t, run(t, c, Input{}), Fail, `steps[1]: no message matched "\"op\":\"ack\""`, "nothing more arrived before the check's timeout", "read no message at all")
}

func TestWebSocketServerCloses(t *testing.T) {
	srv := wsServer(t, func(ctx context.Context, c *websocket.Conn) {
		_, _, _ = c.Read(ctx)
		_ = c.Close(websocket.StatusInternalError, "feed backend unavailable")
	})
	srv.Start()
	res := run(t, buildOne(t, wsCheck(wsURL(srv), subscribeSteps)), Input{})
	wantOutcome(t, res, Fail, "the server closed the WebSocket (1011 feed backend unavailable)")
}

func TestWebSocketUpgradeRefused(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such route", http.StatusNotFound)
	}))
	res := run(t, buildOne(t, wsCheck(wsURL(srv), subscribeSteps)), Input{})
	wantOutcome(t, res, Fail, "answered the WebSocket upgrade with 404 Not Found: no such route")
}

func TestWebSocketUnreachableIsError(t *testing.T) {
	url := "ws://" + closedAddr(t) + "/ws"
	wantOutcome(t, run(t, buildOne(t, wsCheck(url, subscribeSteps)), Input{}), Error, "could not open "+url)
}

// A server that accepts the TCP connection and never answers the upgrade: an error at
// the timeout, since nothing answered.
func TestWebSocketStalledUpgradeIsError(t *testing.T) {
	addr := tcpServer(t, silent)
	c := buildOne(t, strings.Replace(wsCheck("ws://"+addr+"/ws", subscribeSteps), "timeout: 2s", "timeout: 300ms", 1))
	wantOutcome(t, run(t, c, Input{}), Error, "could not open")
}

func TestWebSocketMessageTooBig(t *testing.T) {
	srv := wsServer(t, func(ctx context.Context, c *websocket.Conn) {
		_ = c.Write(ctx, websocket.MessageText, []byte(strings.Repeat("x", 4096)))
		mute(ctx, c)
	})
	srv.Start()
	res := run(t, buildOne(t, wsCheck(wsURL(srv), "    max_message_bytes: 1KiB\n    steps: [{expect: x}]\n")), Input{})
	wantOutcome(t, res, Fail, "steps[0]: no message matched", "a message was larger than max_message_bytes (1024 bytes)")
}

func TestWebSocketConfigErrors(t *testing.T) {
	wantBuildError(t, wsCheck("http://127.0.0.1/ws", ""), `checks[0].url: "http://127.0.0.1/ws" needs a ws or wss scheme`)
	wantBuildError(t, wsCheck("ws://127.0.0.1/ws", "    tls: {insecure_skip_verify: true}\n"), "checks[0].tls: tls is set but")
	wantBuildError(t, wsCheck("ws://127.0.0.1/ws", "    steps: [{send: a, expect: b}]\n"), "checks[0].steps[0]: a step has both send and expect")
	wantBuildError(t, wsCheck("ws://127.0.0.1/ws", "    auth: {bearer: x, username: u}\n"), "checks[0].auth")
}

// rawUpgrade is an HTTP server on loopback that answers every upgrade with answer, as a
// proxy or a framework that is not a WebSocket server might.
func rawUpgrade(t *testing.T, answer string) string {
	return tcpServer(t, func(c net.Conn, _ <-chan struct{}) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		fmt.Fprint(c, answer)
		_, _ = io.Copy(io.Discard, c) // until vigil goes away
	})
}

// An upgrade answered with 101 but not as a WebSocket server does (a wrong
// Sec-WebSocket-Accept: a proxy that rewrote it, a half-implemented server), or with 200:
// both fail, and the reason says what was wrong.
func TestWebSocketUpgradeNotAWebSocket(t *testing.T) {
	bad := rawUpgrade(t, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bogus\r\n\r\n")
	c := buildOne(t, strings.Replace(wsCheck("ws://"+bad+"/ws", subscribeSteps), "timeout: 2s", "timeout: 300ms", 1))
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "answered the WebSocket upgrade with 101 Switching Protocols, not as a WebSocket server does", "Sec-WebSocket-Accept")
	// The server holds the connection open: the run still ends by its timeout (the
	// WebSocket library alone would read on for 3 s).
	if res.Duration > 2*time.Second {
		t.Errorf("a 300ms run took %s", res.Duration)
	}

	ok := rawUpgrade(t, "HTTP/1.1 200 OK\r\nContent-Length: 20\r\nConnection: close\r\n\r\n<html>shop</html>\r\n\r\n")
	res = run(t, buildOne(t, wsCheck("ws://"+ok+"/ws", subscribeSteps)), Input{})
	wantOutcome(t, res, Fail, "answered the WebSocket upgrade with 200 OK: <html>shop</html>")
}

// The headers and credentials a check gives reach the server's upgrade, and a server that
// pings before it answers gets its pong while vigil waits for a message.
func TestWebSocketAuthHeadersAndPing(t *testing.T) {
	seen := make(chan http.Header, 4)
	done := testDone(t)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() {
			select {
			case <-done:
				cancel()
			case <-ctx.Done():
			}
		}()
		got := make(chan struct{}, 1)
		go func() { // the reader the pong arrives through
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
				got <- struct{}{}
			}
		}()
		select {
		case <-got:
		case <-ctx.Done():
			return
		}
		answer := "pong"
		if err := c.Ping(ctx); err != nil {
			answer = "no pong: " + err.Error()
		}
		_ = c.Write(ctx, websocket.MessageText, []byte(answer))
		<-ctx.Done()
	}))
	for _, auth := range []struct{ yaml, want string }{
		{"{bearer: s3cret}", "Bearer s3cret"},
		{"{username: feed, password: pw}", "Basic ZmVlZDpwdw=="},
	} {
		res := run(t, buildOne(t, wsCheck(wsURL(srv), fmt.Sprintf(`    auth: %s
    headers: {X-Tenant: synthetic}
    steps: [{send: hello}, {expect: "^pong$"}]
`, auth.yaml))), Input{})
		wantOutcome(t, res, Pass)
		h := <-seen
		if h.Get("Authorization") != auth.want || h.Get("X-Tenant") != "synthetic" {
			t.Errorf("the upgrade had Authorization %q, X-Tenant %q; want %q, synthetic", h.Get("Authorization"), h.Get("X-Tenant"), auth.want)
		}
	}
}

// tls.server_name is the name verified (and sent as SNI) on a wss URL by address.
func TestWebSocketTLSServerName(t *testing.T) {
	ca := newTestCA(t)
	srv := wsServer(t, priceFeed)
	srv.TLS = serverTLS(ca.leafFor(t, 30*24*time.Hour, []string{"app.example.com"}, nil))
	srv.StartTLS()
	url := "wss" + strings.TrimPrefix(srv.URL, "https")
	wantOutcome(t, run(t, buildOne(t, wsCheck(url, fmt.Sprintf("    tls: {ca_file: %q, server_name: app.example.com}\n%s", ca.pemFile, subscribeSteps))), Input{}), Pass)
	wantOutcome(t, run(t, buildOne(t, wsCheck(url, fmt.Sprintf("    tls: {ca_file: %q}\n%s", ca.pemFile, subscribeSteps))), Input{}), Fail, "certificate")
}
