package main

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
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
	hook := loopback.NewWebhook(t)
	hook.Idempotent, hook.Work = true, 3*time.Second
	k := newKillRig(t, newApp(t), fmt.Sprintf("{type: webhook, url: %q, secret: %q, action: rollback, timeout: 30s, max_attempts: 50}",
		hook.URL(), loopback.WebhookSecret))
	k.register()
	k.waitFor("the rollback never arrived", 30*time.Second, func() bool { return hook.Attempts(k.key) == 1 })
	k.p.kill() // the POST is in flight: the receiver is rolling back
	first := hook.Deliveries()[0]
	signed, err := strconv.ParseInt(first.Timestamp, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	// A body rendered anew after the restart would carry another second.
	for time.Now().Unix() <= signed {
		time.Sleep(20 * time.Millisecond)
	}
	k.p = startAgentProc(t, k.cfg, k.addr)

	k.settled("the rollback")
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
	if n := hook.Count(k.key); n != 1 {
		t.Errorf("the receiver acted %d times; want once", n)
	}
	k.stop()
}
