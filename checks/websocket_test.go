package checks

import (
	"context"
	"fmt"
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
	wantOutcome(t, res, Fail, "steps[0]: no message matched", "1024")
}

func TestWebSocketConfigErrors(t *testing.T) {
	wantBuildError(t, wsCheck("http://127.0.0.1/ws", ""), `checks[0].url: "http://127.0.0.1/ws" needs a ws or wss scheme`)
	wantBuildError(t, wsCheck("ws://127.0.0.1/ws", "    tls: {insecure_skip_verify: true}\n"), "checks[0].tls: tls is set but")
	wantBuildError(t, wsCheck("ws://127.0.0.1/ws", "    steps: [{send: a, expect: b}]\n"), "checks[0].steps[0]: a step has both send and expect")
	wantBuildError(t, wsCheck("ws://127.0.0.1/ws", "    auth: {bearer: x, username: u}\n"), "checks[0].auth")
}
