package alerting_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
)

// stepping is a clock that moves on 2 s each time it is read: each attempt is signed at
// another second, as retries a backoff apart are.
func stepping() func() time.Time {
	var mu sync.Mutex
	t := time.Now()
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(2 * time.Second)
		return t
	}
}

// A rollback receiver that keys its work by Idempotency-Key, as the IETF draft and Stripe
// have it, and takes longer to act than vigil waits for an attempt (the 40 s rollback
// behind a 10 s timeout): the first attempt times out while it acts; a retry meanwhile is
// answered 409 (still working on it) and asked again later; the retry after it finished
// gets its 200 again. It acted once, every attempt carried the same body, and each was
// signed at its own time. (The 409 was a refusal: dead-lettered, the thread told "nothing
// was rolled back" while the rollback ran; and each retry's sent_at differed, so such a
// receiver refused it 422 as another request under the same key.)
func TestASlowRollbackReceiverActsOnceAndIsAskedAgain(t *testing.T) {
	t.Parallel()
	rx := loopback.NewWebhook(t)
	rx.Idempotent, rx.Work = true, 2*time.Second
	cfg := webhookConfig(rx.URL())
	cfg.Name, cfg.Action, cfg.Timeout = "rollback-web", alerting.ActionRollback, 300*time.Millisecond
	n, err := alerting.New(cfg, alerting.Options{UserAgent: "vigil-test", Now: stepping()})
	if err != nil {
		t.Fatal(err)
	}
	st := alerting.State{} // saved between attempts, as the outbox does
	const key = "d-42:deploy_failed"

	err = n.Deliver(t.Context(), deployFailed(), st)
	if err == nil || alerting.Permanent(err) || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("attempt 1, the receiver acting for longer than the timeout: %v; want a retryable timeout", err)
	}
	err = n.Deliver(t.Context(), deployFailed(), st)
	if err == nil || alerting.Permanent(err) || !strings.Contains(err.Error(), "409") {
		t.Fatalf("attempt 2, while the receiver still acts: %v (permanent %v); want a retryable 409", err, alerting.Permanent(err))
	}
	for deadline := time.Now().Add(10 * time.Second); !rx.Finished(key); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the receiver did not finish its rollback")
		}
	}
	if err := n.Deliver(t.Context(), deployFailed(), st); err != nil {
		t.Fatalf("attempt 3, after the receiver finished: %v", err)
	}
	if rx.Count(key) != 1 || rx.Attempts(key) != 3 {
		t.Errorf("the receiver acted %d times on %d attempts; want once on 3", rx.Count(key), rx.Attempts(key))
	}
	ds := rx.Deliveries()
	for _, d := range ds[1:] {
		if !bytes.Equal(d.Body, ds[0].Body) {
			t.Errorf("a retry's body differs from the first attempt's:\n%s\n%s", ds[0].Body, d.Body)
		}
		if d.Timestamp == ds[0].Timestamp || d.Signature == ds[0].Signature {
			t.Errorf("a retry reused the first attempt's X-Vigil-Timestamp %s: a retry minutes later would be stale", d.Timestamp)
		}
	}
	if len(st) != 0 {
		t.Errorf("the delivered event left state behind: %v", st)
	}
}
