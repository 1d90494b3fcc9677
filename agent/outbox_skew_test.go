package agent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/pgtest"
	"github.com/vigil-monitor/vigil/store"
)

// pacingHook is a webhook receiver on loopback that answers its first request 429 with a
// Retry-After of wait, and the others 200; it notes when it answered each, by the host's
// clock (the database's: the test's PostgreSQL runs on the same host).
type pacingHook struct {
	srv  *httptest.Server
	mu   sync.Mutex
	at   []time.Time
	wait time.Duration
}

func newPacingHook(t *testing.T, wait time.Duration) *pacingHook {
	h := &pacingHook{wait: wait}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.at) == 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)))
			w.WriteHeader(http.StatusTooManyRequests)
		} else {
			w.WriteHeader(http.StatusOK)
		}
		h.at = append(h.at, time.Now())
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *pacingHook) answered() []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Time{}, h.at...)
}

// Two agents share a PostgreSQL store, their clocks 60 s apart. The receiver answers the
// rollback with a 429 and Retry-After: 3. Its next attempt is stamped and judged by the
// database's clock: no agent sends it again before 3 s have passed, whichever clock is
// ahead, and when the agent that was told to wait stops, the other sends it within
// seconds of the 3 s, not a minute later. (By the agents' own clocks, the one ahead sent
// it again at once, ignoring the receiver's Retry-After; and a retry stamped by the one
// ahead waited a minute more for the other.)
func TestARetryAfterIsKeptByTheDatabasesClock(t *testing.T) {
	const retryAfter = 3 * time.Second
	srv := pgtest.Start(t, pgtest.Options{})
	for _, tc := range []struct {
		name        string
		told, other time.Duration // the clocks of the agent the receiver told to wait, and of the other
		stop        bool          // the told agent stops once the 429 is recorded
	}{
		{name: "the other agent 60s ahead", other: time.Minute},
		{name: "the agent told to wait 60s behind", told: -time.Minute},
		{name: "the agent told to wait 60s ahead, then stopped", told: time.Minute, stop: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := srv.Database(t)
			hook, slack := newPacingHook(t, retryAfter), loopback.NewSlack(t)
			start := func(name string, by time.Duration) *launched {
				l := launch(t, t.TempDir(), rollbackConfig(name, dsn, "30s", hook.srv.URL, slack),
					Options{Store: openPostgres(t, dsn), Clock: skewed{by: by}})
				t.Cleanup(func() { _ = l.stop() })
				return l
			}
			told := start("eu-1", tc.told)
			key := queueRollback(t, told.a.store, told.a.clock.Now())
			told.a.signalOutbox()
			eventually(t, 20*time.Second, "the 429 to be recorded", func() bool {
				es, err := told.a.store.OutboxByKey(t.Context(), key)
				return err == nil && len(es) == 1 && es[0].LastError != "" && es[0].ClaimedBy == ""
			})
			if tc.stop {
				if err := told.stop(); err != nil {
					t.Fatal(err)
				}
			}
			other := start("eu-2", tc.other)
			eventually(t, 30*time.Second, "the rollback to be sent again", func() bool {
				other.a.signalOutbox()
				return len(hook.answered()) >= 2
			})
			at := hook.answered()
			if gap := at[1].Sub(at[0]); gap < retryAfter {
				t.Errorf("the rollback was sent again %s after the receiver answered 429 with Retry-After: %d; want %s at least",
					gap.Round(time.Millisecond), int(retryAfter/time.Second), retryAfter)
			}
			eventually(t, 20*time.Second, "the rollback to be delivered", func() bool {
				es, err := other.a.store.OutboxByKey(t.Context(), key)
				return err == nil && len(es) == 1 && es[0].Status == store.OutboxDelivered
			})
		})
	}
}
