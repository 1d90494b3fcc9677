package agent

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/clock"
	"github.com/vigil-monitor/vigil/store"
)

// A silence of a service, made through the API, mutes its checks' incidents and expires
// while two of them are open. The one told before the silence stays quiet when it
// expires (it was told; nothing changed); the one that opened under the silence is sent
// by its first failing run after the expiry, once. The agent runs on a fake clock, a run
// of both checks every 10 minutes, and the silence ends with the clock, not a DELETE.
func TestASilenceThatExpiresWhileIncidentsAreOpen(t *testing.T) {
	told, quiet := newTarget(t), newTarget(t)
	pd := loopback.NewPagerDuty(t)
	fc := clock.NewFake(time.Now().Truncate(time.Second))
	l := launch(t, t.TempDir(), fmt.Sprintf(`
checks:
  - {name: told, kind: http, every: 10m, timeout: 2s, retries: 0, failure_threshold: 1, notify: [pager], request: {url: %q}}
  - {name: quiet, kind: http, every: 10m, timeout: 2s, retries: 0, failure_threshold: 1, notify: [pager], request: {url: %q}}
services:
  web: {checks: [told, quiet]}
notifiers:%s
`, told.srv.URL+"/", quiet.srv.URL+"/", pagerDutyNotifier(pd)),
		Options{Clock: fc, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	t.Cleanup(func() { _ = l.stop() })
	a := l.a
	step := stepper(t, a, fc, told, quiet)
	keys := func() []string { // the pager's entries, "key status"
		t.Helper()
		list, err := a.store.Outbox(t.Context(), "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range list {
			if e.Notifier == "pager" {
				out = append(out, e.Key+" "+e.Status)
			}
		}
		slices.Sort(out)
		return out
	}

	step("broken", "good") // +10m: told's incident opens and is sent
	eventually(t, 30*time.Second, "told's page", func() bool { return len(pd.Events()) == 1 })
	h := &harness{t: t, url: l.url}
	status, out := h.request("POST", "/api/v1/silences", `{"service":"web","duration":"25m","reason":"failover drill"}`)
	if status != 201 {
		t.Fatalf("silence: %d %v", status, out)
	}
	silence := fmt.Sprintf("silence %s (failover drill)", out["id"])
	step("broken", "broken") // +20m: quiet opens under the silence
	step("broken", "broken") // +30m
	a.incMu.Lock()
	in := a.incidents["quiet"]
	a.incMu.Unlock()
	if in == nil || !in.Open || in.Muted != silence {
		t.Fatalf("quiet's incident: %+v; want open, muted by %s", in, silence)
	}
	a.deliverDue(t.Context())
	if n := len(pd.Events()); n != 1 {
		t.Fatalf("%d pages while the silence lasts; want told's alone", n)
	}

	step("broken", "broken") // +40m: the silence ended at +35m
	step("broken", "broken") // +50m
	want := []string{
		"check:quiet:1:check_failed " + store.OutboxSilenced,
		"check:quiet:1:check_failed:after-mute " + store.OutboxDelivered,
		"check:told:1:check_failed " + store.OutboxDelivered,
	}
	eventually(t, 30*time.Second, "quiet's page after the silence", func() bool {
		return len(pd.Events()) >= 2 && slices.Equal(keys(), want)
	})
	a.deliverDue(t.Context())
	if got := keys(); !slices.Equal(got, want) {
		t.Errorf("the pager's entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	sent := pd.Events()
	if len(sent) != 2 || sent[1].Action != "trigger" || !strings.Contains(sent[1].Payload.Summary, "still failing after "+silence+" ended") {
		t.Errorf("PagerDuty got %d events; want told's trigger, then one for quiet saying it outlived the silence: %+v", len(sent), sent)
	}
}
