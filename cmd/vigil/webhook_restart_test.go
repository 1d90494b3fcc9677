package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// A rollback receiver that keys its work by Idempotency-Key and compares a retry's body
// with the key's first request's, as Stripe does (another body under the same key is
// refused 422), and takes a while to roll back. The agent is SIGKILLed (OOM, a node
// drain) while its first POST is in flight, before it could save anything about the
// attempt, and restarted at least a second later. The retry after the restart is the same
// request, byte for byte, with a fresh X-Vigil-Timestamp: the receiver acted once and the
// rollback is delivered. (The retry's sent_at was the restart's time: the receiver refused
// it 422 and the rollback was dead-lettered and reported failed, while it ran.)
func TestAKilledAgentsWebhookRetryIsTheSameRequest(t *testing.T) {
	a := newApp(t)
	a.mode.Store("broken")
	hook := loopback.NewWebhook(t)
	hook.Idempotent, hook.Work = true, 3*time.Second
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	dbPath := filepath.Join(dir, "v.db")
	body := fmt.Sprintf(`
agent: {outbox_lease: 2s}
checks:
  - {name: home, kind: http, every: 1h, retries: 0, request: {url: "%s/"}, assert: ["status == 200"]}
services:
  web: {checks: [home], verify: {interval: 1h, count: 2}, on_failure: [rollback]}
notifiers:
  rollback: {type: webhook, url: %q, secret: %q, action: rollback, timeout: 30s, max_attempts: 50}
store: {dsn: %q}
`, a.URL, hook.URL(), loopback.WebhookSecret, dbPath)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	p := startAgentProc(t, cfg, addr)
	waitFor := func(what string, limit time.Duration, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(limit); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s:\n%s", what, p.logs.String())
			}
		}
	}

	resp, err := http.Post(p.url+"/api/v1/deploys", "application/json", strings.NewReader(`{"service":"web","version":"v2"}`))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	key := reg.ID + ":deploy_failed"
	waitFor("the rollback never arrived", 30*time.Second, func() bool { return hook.Attempts(key) == 1 })
	p.kill() // the POST is in flight: the receiver is rolling back
	first := hook.Deliveries()[0]
	signed, err := strconv.ParseInt(first.Timestamp, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	// A body rendered anew after the restart would carry another second.
	for time.Now().Unix() <= signed {
		time.Sleep(20 * time.Millisecond)
	}
	p = startAgentProc(t, cfg, addr)

	st, err := store.Open(t.Context(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var entries []*store.OutboxEntry
	waitFor("the rollback's outbox entry did not settle", 90*time.Second, func() bool {
		entries, err = st.OutboxByKey(t.Context(), key)
		return err == nil && len(entries) == 1 && entries[0].Status != store.OutboxPending
	})
	if e := entries[0]; e.Status != store.OutboxDelivered {
		t.Errorf("the rollback after the restart: %s after %d attempts (%s); want delivered", e.Status, e.Attempts, e.LastError)
	}
	ds := hook.Deliveries()
	if len(ds) < 2 {
		t.Fatalf("%d attempts reached the receiver; want the first and the retry after the restart", len(ds))
	}
	for i, d := range ds[1:] {
		if d.Status == http.StatusUnprocessableEntity || !bytes.Equal(d.Body, first.Body) {
			t.Errorf("attempt %d, after the restart, answered %d: its body is not the first attempt's:\n%s\n%s", i+2, d.Status, first.Body, d.Body)
		}
		if d.Timestamp == first.Timestamp {
			t.Errorf("attempt %d reused the first attempt's X-Vigil-Timestamp %s", i+2, d.Timestamp)
		}
	}
	if n := hook.Count(key); n != 1 {
		t.Errorf("the receiver acted %d times; want once", n)
	}
	if code := p.terminate(); code != 0 {
		t.Errorf("SIGTERM: exit %d, want 0", code)
	}
}
