package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/clock"
	"github.com/vigil-monitor/vigil/store"
)

// wakeCounter is a SQLite store that counts how often the outbox loop asks when to wake.
type wakeCounter struct {
	*store.SQLite
	asks atomic.Int64
}

func (s *wakeCounter) NextDue(ctx context.Context, now time.Time, skip []string) (time.Time, error) {
	s.asks.Add(1)
	return s.SQLite.NextDue(ctx, now, skip)
}

// queueThread writes an incident's opening message and a reply to it for the webhook
// notifier hook, as a failed and then a passing deploy do at at; it returns their keys.
// Every notifier's entries of one incident go out in order, as a Slack thread's must: a
// webhook stands in for Slack.
func queueThread(t *testing.T, st outboxStore, at time.Time) (opener, reply string) {
	t.Helper()
	var entries []*store.OutboxEntry
	for _, name := range []string{"deploy_failed", "deploy_passed"} {
		ev := alerting.Event{Name: name, Key: "d-1:" + name, Incident: "d-1", Service: "web", Summary: name, OccurredAt: at,
			Deploy: &alerting.Deploy{ID: "d-1", Service: "web", Version: "v2"}}
		payload, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, &store.OutboxEntry{Notifier: "hook", Event: name, Key: ev.Key, Incident: ev.Incident, Payload: payload, CreatedAt: at})
	}
	if err := st.Enqueue(t.Context(), entries); err != nil {
		t.Fatal(err)
	}
	return entries[0].Key, entries[1].Key
}

func threadConfig(hookURL string) string {
	return fmt.Sprintf(`
agent: {location: eu, name: eu-1, outbox_lease: 30s}
checks: [{name: home, kind: http, every: 1h, request: {url: "http://127.0.0.1:9/"}}]
notifiers:
  hook: {type: webhook, url: %s, secret: %s}
`, hookURL, loopback.WebhookSecret)
}

// outboxAsks counts the outbox loop's NextDue calls over 2 s of real time, the agent's
// clock standing still: a loop that waits for what it was told asks a few times at most.
func outboxAsks(t *testing.T, st *wakeCounter, why string) {
	t.Helper()
	before := st.asks.Load()
	time.Sleep(2 * time.Second)
	n := st.asks.Load() - before
	t.Logf("the outbox loop asked NextDue %d times in 2 s while %s", n, why)
	if n >= 200 {
		t.Errorf("the outbox loop asked NextDue %d times in 2 s (the clock standing still) while %s; want it to wait", n, why)
	}
}

// delivered says whether the entry of key is delivered.
func delivered(t *testing.T, st outboxStore, key string) bool {
	es, err := st.OutboxByKey(t.Context(), key)
	return err == nil && len(es) == 1 && es[0].Status == store.OutboxDelivered
}

// A thread's reply waits behind its opener, which is retried with backoff: the outbox loop
// waits for the opener's retry, where it woke at once again and again (the reply, though
// due, cannot be claimed before its opener is delivered: it spun, claiming nothing, asking
// NextDue thousands of times a second). Once the opener goes out, the reply follows at
// once: the agent's clock is not moved after the opener's retry.
func TestAReplyBehindARetryingOpenerDoesNotSpinTheOutbox(t *testing.T) {
	hook := loopback.NewWebhook(t)
	hook.Fail(loopback.Fault{Status: 500, Times: 1})
	fake := clock.NewFake(time.Now())
	dir := t.TempDir()
	st := &wakeCounter{SQLite: openSQLite(t, dir)}
	opener, reply := queueThread(t, st, fake.Now())
	startAgentWith(t, dir, threadConfig(hook.URL()), Options{Store: st, Clock: fake})
	eventually(t, 20*time.Second, "the opener's first attempt to fail and be recorded", func() bool {
		es, err := st.OutboxByKey(t.Context(), opener)
		return err == nil && len(es) == 1 && es[0].Attempts == 1 && es[0].ClaimedBy == ""
	})
	outboxAsks(t, st, "the opener waits for its retry")

	fake.Advance(outboxBackoff.First) // the opener's retry is due (a first retry waits at most that), and succeeds
	eventually(t, 20*time.Second, "the opener and then its reply to be delivered", func() bool {
		return delivered(t, st, opener) && delivered(t, st, reply)
	})
	if got := hook.Deliveries(); len(got) != 3 || got[1].Key != opener || got[2].Key != reply {
		t.Errorf("the receiver got %d requests; want the opener twice, then the reply", len(got))
	}
}

// The opener is held by another agent (sending it, its receiver slow to answer): this
// agent's loop waits for the end of that agent's lease instead of spinning on the reply
// it cannot claim. When the other agent has delivered the opener, this agent sends the
// reply at its next poll, by the opener's lease end at the latest.
func TestAReplyBehindAnOpenerAnotherAgentHoldsDoesNotSpinTheOutbox(t *testing.T) {
	hook := loopback.NewWebhook(t)
	fake := clock.NewFake(time.Now())
	dir := t.TempDir()
	st := &wakeCounter{SQLite: openSQLite(t, dir)}
	opener, reply := queueThread(t, st, fake.Now())
	held, err := st.ClaimOutbox(t.Context(), "eu-2", fake.Now(), 30*time.Second, 10, nil)
	if err != nil || len(held) != 1 || held[0].Key != opener {
		t.Fatalf("eu-2 claimed %s, %v; want the opener alone", describeOutbox(held), err)
	}
	startAgentWith(t, dir, threadConfig(hook.URL()), Options{Store: st, Clock: fake})
	eventually(t, 20*time.Second, "the agent's outbox loop to ask when to wake", func() bool { return st.asks.Load() > 0 })
	outboxAsks(t, st, "another agent holds the opener")

	if err := st.RecordAttempt(t.Context(), store.OutboxAttempt{ID: held[0].ID, Agent: "eu-2", Status: store.OutboxDelivered,
		Attempts: 1, At: fake.Now()}); err != nil {
		t.Fatal(err)
	}
	fake.Advance(30 * time.Second) // eu-2's lease on the opener would have ended: this agent looks again
	eventually(t, 20*time.Second, "the reply to be delivered", func() bool { return delivered(t, st, reply) })
	if got := hook.Deliveries(); len(got) != 1 || got[0].Key != reply {
		t.Errorf("the receiver got %d requests; want the reply alone (eu-2 sent the opener)", len(got))
	}
}
