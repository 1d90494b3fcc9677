package loopback

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
)

// WebhookSecret is the signing secret NewWebhook uses.
const WebhookSecret = "vigil-webhook-test-secret"

// Webhook is a loopback webhook receiver, as a rollback endpoint would be written: it
// verifies X-Vigil-Signature with the shared secret by the documented formula, computed
// here independently of alerting.Sign (a bad or missing one is a 401),
// requires an Idempotency-Key, and counts accepted deliveries per key. GET /counts answers
// the counts as JSON, for a receiver running in another process.
type Webhook struct {
	server
	// Secret is the shared signing secret.
	Secret []byte
	// Tolerance is how far X-Vigil-Timestamp may be from now; 0 is five minutes.
	Tolerance time.Duration
	// Idempotent makes it a receiver that keys its work by Idempotency-Key as the IETF
	// Idempotency-Key draft has it (and Stripe does): the first request of a key is acted
	// on (counted as accepted) and takes Work to finish, whether or not its sender is still
	// waiting; a request of the key while that runs is answered 409 Conflict; one after it,
	// with the same body, gets the first one's answer again without a second action; one
	// with another body is refused, 422 Unprocessable Content. Set before the first request.
	Idempotent bool
	// Work is how long an Idempotent receiver takes to act on a key (a rollback that takes
	// 40 s) before it answers 200.
	Work time.Duration

	mu         sync.Mutex
	deliveries []WebhookDelivery
	attempts   map[string]int
	accepted   map[string]int
	rejected   []WebhookRejection
	keys       map[string]*keyed // Idempotent: the work per key
}

// keyed is an Idempotent receiver's record of one Idempotency-Key.
type keyed struct {
	body []byte        // the first request's body
	done chan struct{} // closed when its work is finished
}

// WebhookDelivery is a request that passed verification, accepted or answered with a fault.
type WebhookDelivery struct {
	Key       string // Idempotency-Key
	Event     string // X-Vigil-Event
	Timestamp string
	Signature string
	Header    http.Header
	Body      []byte
	// Payload is Body decoded.
	Payload map[string]any
	// Accepted: the receiver answered 2xx, or accepted and then held its answer
	// (Fault.AcceptThenHang).
	Accepted bool
	Status   int
	At       time.Time
}

// WebhookRejection is a request the receiver refused: bad signature, stale timestamp, no key.
type WebhookRejection struct {
	Reason string
	Header http.Header
	At     time.Time
}

// NewWebhook starts a webhook receiver for the test with WebhookSecret.
func NewWebhook(tb testing.TB) *Webhook {
	w := &Webhook{Secret: []byte(WebhookSecret)}
	mustStart(tb, func() error { return w.Start("") }, w.Close)
	return w
}

// Start listens on addr ("" for 127.0.0.1 and a free port).
func (w *Webhook) Start(addr string) error {
	w.attempts, w.accepted, w.keys = map[string]int{}, map[string]int{}, map[string]*keyed{}
	return w.start(addr, http.HandlerFunc(w.handle))
}

// URL is the address to configure as the webhook's url.
func (w *Webhook) URL() string { return "http://" + w.Addr() + "/hook" }

// Fail queues a fault: the next verified deliveries are answered with it.
func (w *Webhook) Fail(f Fault) { w.fail("", f) }

// Count is how many deliveries with the Idempotency-Key were accepted (answered 2xx, or
// accepted with the answer held: Fault.AcceptThenHang); for an Idempotent receiver, how
// many times it acted on the key.
func (w *Webhook) Count(key string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.accepted[key]
}

// Counts returns the accepted deliveries per Idempotency-Key.
func (w *Webhook) Counts() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.accepted)
}

// Attempts is how many verified requests with the key arrived, accepted or not.
func (w *Webhook) Attempts(key string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.attempts[key]
}

// AllAttempts is how many verified requests arrived, of every key, accepted or not.
func (w *Webhook) AllAttempts() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, a := range w.attempts {
		n += a
	}
	return n
}

// Deliveries returns the verified requests, in order.
func (w *Webhook) Deliveries() []WebhookDelivery {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.deliveries)
}

// Rejected returns the refused requests.
func (w *Webhook) Rejected() []WebhookRejection {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.rejected)
}

// WebhookCounts is what GET /counts answers.
type WebhookCounts struct {
	Accepted map[string]int `json:"accepted"`
	Attempts map[string]int `json:"attempts"`
	Rejected int            `json:"rejected"`
}

func (w *Webhook) handle(rw http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/counts" {
		w.mu.Lock()
		c := WebhookCounts{Accepted: maps.Clone(w.accepted), Attempts: maps.Clone(w.attempts), Rejected: len(w.rejected)}
		w.mu.Unlock()
		writeJSON(rw, http.StatusOK, c)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(rw, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, 1<<20))
	reject := func(status int, reason string) {
		w.mu.Lock()
		w.rejected = append(w.rejected, WebhookRejection{Reason: reason, Header: r.Header.Clone(), At: time.Now()})
		w.mu.Unlock()
		writeJSON(rw, status, map[string]string{"error": reason})
	}
	if err != nil {
		reject(http.StatusRequestEntityTooLarge, "body: "+err.Error())
		return
	}
	// This is what a receiver must do: verify the raw body before trusting anything in it.
	if err := verifySignature(w.Secret, r.Header, body, time.Now(), w.Tolerance); err != nil {
		reject(http.StatusUnauthorized, err.Error())
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		reject(http.StatusUnsupportedMediaType, "Content-Type is not application/json")
		return
	}
	key := r.Header.Get(alerting.HeaderIdempotencyKey)
	if key == "" {
		reject(http.StatusBadRequest, "no "+alerting.HeaderIdempotencyKey)
		return
	}
	d := WebhookDelivery{Key: key, Event: r.Header.Get(alerting.HeaderEvent), Timestamp: r.Header.Get(alerting.HeaderTimestamp),
		Signature: r.Header.Get(alerting.HeaderSignature), Header: r.Header.Clone(), Body: body, At: time.Now()}
	_ = json.Unmarshal(body, &d.Payload)
	if w.Idempotent {
		w.handleKeyed(rw, r, d)
		return
	}
	f, faulted := w.takeFault("")
	d.Status = http.StatusOK
	if faulted {
		d.Status = f.status()
	}
	d.Accepted = !faulted || f.AcceptThenHang
	// The delivery is on record before vigil hears the answer.
	w.mu.Lock()
	w.attempts[key]++
	if d.Accepted {
		w.accepted[key]++
	}
	w.deliveries = append(w.deliveries, d)
	w.mu.Unlock()
	if faulted {
		w.answerFault(rw, r, f)
		return
	}
	writeJSON(rw, http.StatusOK, map[string]any{"ok": true, "key": key})
}

// handleKeyed answers a verified delivery as an Idempotent receiver does.
func (w *Webhook) handleKeyed(rw http.ResponseWriter, r *http.Request, d WebhookDelivery) {
	w.mu.Lock()
	k := w.keys[d.Key]
	first := k == nil
	d.Status = http.StatusOK
	switch {
	case first:
		k = &keyed{body: d.Body, done: make(chan struct{})}
		w.keys[d.Key] = k
		w.accepted[d.Key]++
	case !bytes.Equal(k.body, d.Body):
		d.Status = http.StatusUnprocessableEntity
	default:
		select {
		case <-k.done:
		default:
			d.Status = http.StatusConflict
		}
	}
	d.Accepted = first
	w.attempts[d.Key]++
	w.deliveries = append(w.deliveries, d)
	w.mu.Unlock()
	switch d.Status {
	case http.StatusUnprocessableEntity:
		writeJSON(rw, d.Status, map[string]string{"error": "this Idempotency-Key was used with another body"})
		return
	case http.StatusConflict:
		writeJSON(rw, d.Status, map[string]string{"error": "a request with this Idempotency-Key is still being processed"})
		return
	}
	if first {
		// The work goes on when the sender gives up waiting, as a real rollback does.
		select {
		case <-time.After(w.Work):
		case <-w.done:
		}
		close(k.done)
	}
	writeJSON(rw, http.StatusOK, map[string]any{"ok": true, "key": d.Key})
}

// Finished says whether an Idempotent receiver finished the work of key.
func (w *Webhook) Finished(key string) bool {
	w.mu.Lock()
	k := w.keys[key]
	w.mu.Unlock()
	if k == nil {
		return false
	}
	select {
	case <-k.done:
		return true
	default:
		return false
	}
}

// verifySignature checks a delivery the way the README tells receivers to, written here
// from the documented formula and not with alerting.Verify, so that a change to what vigil
// signs fails the tests that deliver to this receiver instead of changing both sides at
// once: X-Vigil-Timestamp is unix seconds within tolerance (0: five minutes) of now, and
// one of the comma-separated X-Vigil-Signature values is
// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)), compared in constant time.
func verifySignature(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = 5 * time.Minute
	}
	ts := h.Get("X-Vigil-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("X-Vigil-Timestamp %q is not unix seconds", ts)
	}
	if skew := now.Sub(time.Unix(sec, 0)); skew > tolerance || skew < -tolerance {
		return fmt.Errorf("X-Vigil-Timestamp is %s from now, more than %s", skew.Round(time.Second), tolerance)
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "." + string(body)))
	want := m.Sum(nil)
	sigs := h.Get("X-Vigil-Signature")
	if sigs == "" {
		return errors.New("missing X-Vigil-Signature")
	}
	for _, v := range strings.Split(sigs, ",") {
		got, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(v), "sha256="))
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("X-Vigil-Signature does not match HMAC-SHA256(secret, timestamp.body)")
}

// ServeWebhook runs a webhook receiver on addr until ctx ends: a stand-alone receiver for
// a test that kills and restarts vigil, which reads the counts from GET /counts.
func ServeWebhook(ctx context.Context, addr string, secret []byte) error {
	if len(secret) == 0 {
		return errors.New("no signing secret")
	}
	w := &Webhook{Secret: secret}
	if err := w.Start(addr); err != nil {
		return err
	}
	<-ctx.Done()
	w.Close()
	return nil
}
