package checks

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/expr-lang/expr/types"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/tracing"
)

// websocketVars are the websocket kind's variables.
var websocketVars = types.Map{
	"connect_ms":   types.Float64,
	"subprotocol":  types.String,
	"messages":     types.Int,
	"expects":      types.Int,
	"last_message": types.String,
}

// WebSocket is the websocket kind: open a WebSocket, then send text messages and wait for
// messages matching regular expressions. Each run dials through a transport of its own, so
// a deploy's verification never rides a connection from before it.
type WebSocket struct {
	url          string
	header       http.Header
	subprotocols []string
	tls          tlsDialer
	steps        []tcpStep
	maxMessage   int64
	tracing      *tracing.Tracing
}

// Probe implements Prober.
func (w *WebSocket) Probe(ctx context.Context, run *Run) error {
	tr := &http.Transport{
		// The run's deadline on the connection itself: the WebSocket library reads the body
		// of an upgrade it refuses for up to 3 s whatever the context says, and a server that
		// answers 101 wrongly and holds the connection open would keep the run past its timeout.
		DialContext: func(dctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(dctx, network, addr)
			if err == nil {
				if dl, ok := ctx.Deadline(); ok {
					_ = c.SetDeadline(dl)
				}
			}
			return c, err
		},
		TLSClientConfig:       &tls.Config{ServerName: w.tls.serverName, RootCAs: w.tls.roots, InsecureSkipVerify: w.tls.insecure}, //nolint:gosec // opt-in per check
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		DisableKeepAlives:     true,
	}
	defer tr.CloseIdleConnections()
	start := time.Now()
	run.Transcript.Printf("dialing %s", w.url)
	header := w.header.Clone()
	w.tracing.Inject(ctx, header) // the upgrade is a request to the target like any other
	conn, resp, err := websocket.Dial(ctx, w.url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr},
		HTTPHeader: header, Subprotocols: w.subprotocols})
	if err != nil {
		if resp != nil {
			// The server answered, and not with an upgrade: the application's doing.
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			_ = resp.Body.Close()
			run.Vars["connect_ms"] = ms(time.Since(start))
			if resp.StatusCode == http.StatusSwitchingProtocols {
				// A 101 that is no WebSocket's (a wrong Sec-WebSocket-Accept, a subprotocol
				// never offered): only the handshake's error says what is wrong with it.
				run.Failf("%s answered the WebSocket upgrade with %s, not as a WebSocket server does: %v", w.url, resp.Status, Trim(err.Error(), 200))
				return nil
			}
			run.Failf("%s answered the WebSocket upgrade with %s: %s", w.url, resp.Status, Trim(strings.TrimSpace(string(body)), 200))
			return nil
		}
		return targetFault(fmt.Errorf("could not open %s: %w", w.url, err))
	}
	defer conn.CloseNow() // a prober does not wait on a close handshake a hostile peer may never finish
	conn.SetReadLimit(w.maxMessage)
	run.Vars["connect_ms"] = ms(time.Since(start))
	run.Vars["subprotocol"] = conn.Subprotocol()
	run.Vars["messages"] = 0
	run.Vars["expects"] = 0
	run.Vars["last_message"] = ""
	run.Transcript.Printf("connected in %s (subprotocol %q)", time.Since(start).Round(time.Microsecond), conn.Subprotocol())
	return w.exchange(ctx, conn, run)
}

// exchange runs the steps; the first expect no message matches fails the run.
func (w *WebSocket) exchange(ctx context.Context, conn *websocket.Conn, run *Run) error {
	messages, expects := 0, 0
	for i, st := range w.steps {
		if st.expect == nil {
			run.Transcript.Printf("> %s", Trim(st.send, 200))
			if err := conn.Write(ctx, websocket.MessageText, []byte(st.send)); err != nil {
				run.Failf("steps[%d]: sending failed: %s", i, wsErr(err))
				return nil
			}
			continue
		}
		for {
			typ, data, err := conn.Read(ctx)
			if err != nil {
				seen := "no message at all"
				if messages > 0 {
					seen = fmt.Sprintf("%d message(s), the last %q", messages, Trim(run.Vars["last_message"].(string), 120))
				}
				why := wsErr(err)
				if errors.Is(err, websocket.ErrMessageTooBig) {
					why = fmt.Sprintf("a message was larger than max_message_bytes (%d bytes)", w.maxMessage)
				}
				run.Failf("steps[%d]: no message matched %q: %s (read %s)", i, st.expect, why, seen)
				return nil
			}
			messages++
			msg := showMessage(typ, data)
			run.Vars["messages"], run.Vars["last_message"] = messages, msg
			run.Transcript.Printf("< %s", Trim(msg, 200))
			if st.expect.Match(data) {
				expects++
				run.Vars["expects"] = expects
				break
			}
		}
	}
	return nil
}

// showMessage is a message as variables and transcripts show it: text as is, binary as
// base64.
func showMessage(typ websocket.MessageType, data []byte) string {
	if typ == websocket.MessageText && utf8.Valid(data) {
		return string(data)
	}
	return "binary:" + base64.StdEncoding.EncodeToString(data)
}

// wsErr says why a read or write ended.
func wsErr(err error) string {
	var ce websocket.CloseError
	switch {
	case errors.As(err, &ce):
		return fmt.Sprintf("the server closed the WebSocket (%d %s)", int(ce.Code), Trim(ce.Reason, 120))
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		// The connection's deadline is the run's (Probe): either may fire first.
		return "nothing more arrived before the check's timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the server dropped the connection"
	}
	return err.Error()
}

// websocketKind registers the websocket kind (kinds.go).
type websocketKind struct{}

func (websocketKind) vars() types.Map { return websocketVars }

func (websocketKind) build(b *builder, c *configs.Check) Prober {
	s := c.Spec.(*configs.WebSocketSpec)
	host := ""
	if u, err := url.Parse(s.URL); err == nil {
		host = u.Hostname()
	}
	d, err := newTLSDialer(s.TLS, net.JoinHostPort(host, "443"))
	if err != nil {
		b.errf(c.Path()+".tls.ca_file", "point it at a PEM file of CA certificates", "%v", err)
		return nil
	}
	h := headerOf(s.Headers)
	switch {
	case s.Auth.Bearer.IsSet():
		h.Set("Authorization", "Bearer "+s.Auth.Bearer.Value())
	case s.Auth.Username != "":
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(s.Auth.Username+":"+s.Auth.Password.Value())))
	}
	w := &WebSocket{url: s.URL, header: h, subprotocols: s.Subprotocols, tls: d, maxMessage: int64(s.MaxMessageBytes), tracing: b.deps.Tracing}
	for _, st := range s.Steps {
		step := tcpStep{send: st.Send}
		if st.Expect != "" {
			step.expect = regexp.MustCompile(st.Expect) // validated when the config loaded
		}
		w.steps = append(w.steps, step)
	}
	return w
}
