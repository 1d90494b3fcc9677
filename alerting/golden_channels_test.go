package alerting_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/golden"
	"github.com/vigil-monitor/vigil/internal/smtptest"
)

// deliverStory delivers an incident's events in order, as the outbox does: only the ones
// the notifier wants, with one State for the incident; one it skips sends nothing.
func deliverStory(t *testing.T, n alerting.Notifier, evs []*alerting.Event) {
	t.Helper()
	st := alerting.State{}
	for _, ev := range evs {
		if !n.Wants(ev.Name) {
			continue
		}
		if err := n.Deliver(t.Context(), ev, st); err != nil && !errors.Is(err, alerting.ErrSkipped) {
			t.Fatalf("%s: %v", ev.Name, err)
		}
	}
}

// writeCall prints one request for a golden file: its path and query, then its JSON body.
func writeCall(t *testing.T, out *bytes.Buffer, path string, query url.Values, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: the body is not JSON: %v", path, err)
	}
	if q := query.Encode(); q != "" {
		path += "?" + q
	}
	fmt.Fprintf(out, "== POST %s\n", path)
	out.Write(indentJSON(v))
}

// The Opsgenie requests of every incident story (create, note, close), pinned by golden files.
func TestOpsgeniePayloadsGolden(t *testing.T) {
	t.Parallel()
	for name, evs := range incidents() {
		t.Run(name, func(t *testing.T) {
			rx := loopback.NewOpsgenie(t)
			deliverStory(t, newNotifier(t, opsgenieConfig(rx), nil), evs)
			var out bytes.Buffer
			for _, c := range rx.Calls() {
				writeCall(t, &out, c.Path, c.Query, c.Body)
			}
			golden.Assert(t, "opsgenie/"+name+".txt", out.Bytes())
		})
	}
}

// The Teams cards of every incident story, pinned by golden files.
func TestTeamsCardsGolden(t *testing.T) {
	t.Parallel()
	for name, evs := range incidents() {
		t.Run(name, func(t *testing.T) {
			rx := loopback.NewTeams(t)
			deliverStory(t, newNotifier(t, teamsConfig(rx), nil), evs)
			var out bytes.Buffer
			for _, p := range rx.Posts() {
				writeCall(t, &out, "(the Workflows webhook URL)", nil, p.Body)
			}
			golden.Assert(t, "teams/"+name+".txt", out.Bytes())
		})
	}
}

// The Discord messages of every incident story, pinned by golden files.
func TestDiscordMessagesGolden(t *testing.T) {
	t.Parallel()
	for name, evs := range incidents() {
		t.Run(name, func(t *testing.T) {
			rx := loopback.NewDiscord(t)
			deliverStory(t, newNotifier(t, discordConfig(rx), nil), evs)
			var out bytes.Buffer
			for _, p := range rx.Posts() {
				writeCall(t, &out, "(the webhook URL)", p.Query, p.Body)
			}
			golden.Assert(t, "discord/"+name+".txt", out.Bytes())
		})
	}
}

// The mail of every incident story, as the SMTP server received it (attachments shortened),
// pinned by golden files.
func TestEmailMessagesGolden(t *testing.T) {
	t.Parallel()
	for name, evs := range incidents() {
		t.Run(name, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{})
			n, err := alerting.New(emailConfig(srv), alerting.Options{Now: func() time.Time { return time.Date(2026, 1, 1, 12, 0, 5, 0, time.UTC) }})
			if err != nil {
				t.Fatal(err)
			}
			deliverStory(t, n, evs)
			var out bytes.Buffer
			for _, m := range srv.Messages() {
				fmt.Fprintf(&out, "== MAIL FROM %s RCPT TO %v\n", m.From, m.To)
				out.Write(base64Lines.ReplaceAll(m.Data, []byte("(base64 of the PNG)\r\n")))
			}
			golden.Assert(t, "email/"+name+".txt", bytes.ReplaceAll(out.Bytes(), []byte("\r\n"), []byte("\n")))
		})
	}
}

// base64Lines are an attachment's lines.
var base64Lines = regexp.MustCompile(`(?m)(^[A-Za-z0-9+/=]{20,}\r\n)+`)
