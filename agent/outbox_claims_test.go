package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/clock"
	"github.com/vigil-monitor/vigil/internal/pgtest"
	"github.com/vigil-monitor/vigil/store"
)

// holdingHook is a webhook receiver on loopback that records the Idempotency-Key of each
// request and answers it (200) only when the test lets it; it notes the requests whose
// sender hung up first.
type holdingHook struct {
	srv   *httptest.Server
	mu    sync.Mutex
	keys  []string
	gates map[int]chan struct{}
	gone  map[int]bool
	done  chan struct{}
}

func newHoldingHook(t *testing.T) *holdingHook {
	h := &holdingHook{gates: map[int]chan struct{}{}, gone: map[int]bool{}, done: make(chan struct{})}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h.mu.Lock()
		n := len(h.keys)
		h.keys = append(h.keys, r.Header.Get(alerting.HeaderIdempotencyKey))
		h.mu.Unlock()
		select {
		case <-h.gate(n):
			w.WriteHeader(http.StatusOK)
		case <-h.done:
		case <-r.Context().Done():
			h.mu.Lock()
			h.gone[n] = true
			h.mu.Unlock()
		}
	}))
	t.Cleanup(h.srv.Close)
	t.Cleanup(func() { close(h.done) }) // runs first: held requests end before the server closes
	return h
}

func (h *holdingHook) gate(n int) chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gates[n] == nil {
		h.gates[n] = make(chan struct{})
	}
	return h.gates[n]
}

// let answers request n (from 0), now or when it comes.
func (h *holdingHook) let(n int) { close(h.gate(n)) }

func (h *holdingHook) received() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string{}, h.keys...)
}

func (h *holdingHook) hungUp(n int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gone[n]
}

// rollbackConfig is an agent whose service web rolls back through the webhook at url and
// tells Slack what the rollback did; its store is the PostgreSQL at dsn, or SQLite ("").
func rollbackConfig(name, dsn, lease, hookURL string, slack *loopback.Slack) string {
	storeYAML := ""
	if dsn != "" {
		storeYAML = fmt.Sprintf("store: {driver: postgres, dsn: %q}", dsn)
	}
	return fmt.Sprintf(`
agent: {location: eu, name: %s, heartbeat: 1s, outbox_lease: %s}
%s
checks: [{name: home, kind: http, every: 1h, request: {url: "http://127.0.0.1:9/"}}]
services:
  web:
    checks: [home]
    on_failure: [slack, rollback]
notifiers:%s
  rollback:
    type: webhook
    url: %s
    secret: %s
    action: rollback
    timeout: 2m
    max_attempts: 20
`, name, lease, storeYAML, slackNotifier(slack), hookURL, loopback.WebhookSecret)
}

// queueRollback writes the rollback of deploy d-1 of web into the outbox, as a failed
// verdict does at at; it returns its idempotency key.
func queueRollback(t *testing.T, st outboxStore, at time.Time) string {
	t.Helper()
	ev := alerting.Event{Name: "deploy_failed", Key: "d-1:deploy_failed", Incident: "d-1", Service: "web", Summary: "home failed",
		OccurredAt: at, Deploy: &alerting.Deploy{ID: "d-1", Service: "web", Version: "v2", PreviousVersion: "v1"}}
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Enqueue(t.Context(), []*store.OutboxEntry{{Notifier: "rollback", Event: ev.Name, Key: ev.Key, Incident: ev.Incident,
		Payload: payload, CreatedAt: at}}); err != nil {
		t.Fatal(err)
	}
	return ev.Key
}

// openPostgres opens the store at dsn for one agent; it is closed at cleanup.
func openPostgres(t *testing.T, dsn string) *store.Postgres {
	t.Helper()
	st, err := store.OpenPostgres(context.Background(), dsn, store.PoolOptions{MaxConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// laneIdle says whether a's lane of notifier has nothing in hand.
func laneIdle(a *Agent, notifier string) bool {
	a.lanes.mu.Lock()
	defer a.lanes.mu.Unlock()
	return !a.lanes.busy[notifier]
}

// Two agents share a PostgreSQL store; one's clock is 60s off, twice the lease. The agent
// holding the rollback (sending it, the receiver slow to answer) keeps it: the other never
// sends it a second time while the holder's lease is live, whichever of the two is skewed.
func TestASkewedClockTakesNoLiveLease(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Options{})
	for _, tc := range []struct {
		name          string
		holder, other time.Duration
	}{
		{name: "the other agent 60s ahead", other: time.Minute},
		{name: "the holder 60s behind", holder: -time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := srv.Database(t)
			hook, slack := newHoldingHook(t), loopback.NewSlack(t)
			start := func(name string, by time.Duration) *launched {
				st := openPostgres(t, dsn)
				l := launch(t, t.TempDir(), rollbackConfig(name, dsn, "30s", hook.srv.URL, slack),
					Options{Store: st, Clock: skewed{by: by}})
				t.Cleanup(func() { _ = l.stop() })
				return l
			}
			holder := start("eu-1", tc.holder)
			key := queueRollback(t, holder.a.store, holder.a.clock.Now())
			holder.a.signalOutbox()
			eventually(t, 20*time.Second, "the holder to send the rollback", func() bool { return len(hook.received()) == 1 })
			other := start("eu-2", tc.other) // it reads the outbox as it starts
			for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
				other.a.signalOutbox()
				if got := hook.received(); len(got) != 1 {
					t.Fatalf("the receiver got %d requests %v while eu-1 held the rollback's lease; want eu-1's alone", len(got), got)
				}
			}
			hook.let(0)
			eventually(t, 20*time.Second, "the rollback to be delivered", func() bool {
				es, err := holder.a.store.OutboxByKey(t.Context(), key)
				return err == nil && len(es) == 1 && es[0].Status == store.OutboxDelivered
			})
			if got := hook.received(); len(got) != 1 {
				t.Errorf("the rollback was sent %d times %v; want once", len(got), got)
			}
		})
	}
}

// An agent paused past its lease while a rollback webhook it sent goes unanswered (a
// SIGSTOP, a VM frozen: its clock stands still, so it renews nothing) loses the rollback
// to the other agent, which sends it again under the same Idempotency-Key. When the first
// agent resumes and the receiver answers it too, it records nothing: one rollback on the
// deploy's timeline, one action_result to Slack.
func TestAPausedAgentLeavesTheRollbackToTheAgentThatTookItOver(t *testing.T) {
	dsn := pgtest.Start(t, pgtest.Options{}).Database(t)
	hook, slack := newHoldingHook(t), loopback.NewSlack(t)
	paused := openPostgres(t, dsn)
	frozen := clock.NewFake(time.Now())
	key := queueRollback(t, paused, frozen.Now())
	first := launch(t, t.TempDir(), rollbackConfig("eu-1", dsn, "1s", hook.srv.URL, slack), Options{Store: paused, Clock: frozen})
	t.Cleanup(func() { _ = first.stop() })
	eventually(t, 20*time.Second, "eu-1 to send the rollback", func() bool { return len(hook.received()) == 1 })

	second := launch(t, t.TempDir(), rollbackConfig("eu-2", dsn, "1s", hook.srv.URL, slack), Options{Store: openPostgres(t, dsn)})
	t.Cleanup(func() { _ = second.stop() })
	hook.let(1) // eu-2's send, once its lease is over, is answered at once
	eventually(t, 20*time.Second, "eu-2 to send the rollback again and record it", func() bool {
		es, err := second.a.store.OutboxByKey(t.Context(), key)
		return len(hook.received()) == 2 && err == nil && len(es) == 1 && es[0].Status == store.OutboxDelivered
	})
	hook.let(0) // eu-1 resumes: its send is answered too
	eventually(t, 20*time.Second, "eu-1 to finish with the rollback", func() bool { return laneIdle(first.a, "rollback") })

	if got := hook.received(); len(got) != 2 || got[0] != key || got[1] != key {
		t.Errorf("the receiver got %v; want the rollback twice under one Idempotency-Key %q", got, key)
	}
	events, err := second.a.store.DeployEvents(t.Context(), "d-1")
	if err != nil {
		t.Fatal(err)
	}
	var rollbacks []string
	for _, e := range events {
		if e.Kind == eventRollback {
			rollbacks = append(rollbacks, e.Summary)
		}
	}
	if len(rollbacks) != 1 {
		t.Errorf("the deploy's timeline has %d rollbacks %q; want 1", len(rollbacks), rollbacks)
	}
	results, err := second.a.store.OutboxByKey(t.Context(), key+":rollback")
	if err != nil || len(results) != 1 || results[0].Notifier != "slack" {
		t.Errorf("action results queued: %s, %v; want one, to slack", describeOutbox(results), err)
	}
}

// The claim on a rollback is lost while it is being sent (the lease ran out and another
// agent took it): the next renewal finds it lost, and the send is abandoned at once, with
// nothing recorded, instead of going on to record a result that is no longer its own.
func TestALostClaimAbandonsTheSend(t *testing.T) {
	hook, slack := newHoldingHook(t), loopback.NewSlack(t)
	fake := clock.NewFake(time.Now())
	dir := t.TempDir()
	h := startAgentWith(t, dir, rollbackConfig("eu-1", "", "30s", hook.srv.URL, slack), Options{Clock: fake})
	key := queueRollback(t, h.a.store, fake.Now())
	h.a.signalOutbox()
	eventually(t, 20*time.Second, "the rollback to be sent", func() bool { return len(hook.received()) == 1 })
	// Another agent takes it over once the lease is over by its clock.
	taken, err := h.a.store.ClaimOutbox(t.Context(), "eu-2", fake.Now().Add(31*time.Second), 30*time.Second, 10, nil)
	if err != nil || len(taken) != 1 || taken[0].Key != key {
		t.Fatalf("eu-2 claimed %s, %v; want the rollback", describeOutbox(taken), err)
	}
	eventually(t, 20*time.Second, "the send to be abandoned once its claim is found lost", func() bool {
		fake.Advance(10 * time.Second) // a renewal is due every third of a lease
		return hook.hungUp(0)
	})
	eventually(t, 20*time.Second, "the lane to be free", func() bool { return laneIdle(h.a, "rollback") })
	es, err := h.a.store.OutboxByKey(t.Context(), key)
	if err != nil || len(es) != 1 || es[0].Status != store.OutboxPending || es[0].ClaimedBy != "eu-2" || es[0].Attempts != 0 {
		t.Errorf("the rollback after the lost claim: %s, %v; want pending, eu-2's, no attempt counted", describeOutbox(es), err)
	}
	if results, _ := h.a.store.OutboxByKey(t.Context(), key+":rollback"); len(results) != 0 {
		t.Errorf("action results queued by the agent that lost the claim: %s", describeOutbox(results))
	}
}
