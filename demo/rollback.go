package demo

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
)

// Rollback is one rollback webhook call the sample app received and acted on.
type Rollback struct {
	Key       string // Idempotency-Key
	Event     string
	From, To  string // versions
	Signature string
	At        time.Time
	Duplicate bool // the key was seen before: acknowledged, not acted on again
}

// rollback is the receiving end of vigil's rollback webhook, written as a real one should
// be: verify the signature over the raw body and the timestamp's age before trusting
// anything, act once per Idempotency-Key, answer fast.
func (a *App) rollback(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "body too large"})
		return
	}
	if len(a.RollbackSecret) == 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no rollback secret is set: rollbacks are refused"})
		return
	}
	if err := alerting.VerifyHeader(a.RollbackSecret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": err.Error()})
		return
	}
	var payload struct {
		Event  string `json:"event"`
		Deploy struct {
			Version string `json:"version"`
		} `json:"deploy"`
	}
	if err := json.Unmarshal(body, &payload); err != nil || payload.Event != "deploy_failed" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "expected a deploy_failed event"})
		return
	}
	key := r.Header.Get(alerting.HeaderIdempotencyKey)
	a.mu.Lock()
	rb := Rollback{Key: key, Event: payload.Event, From: a.version, Signature: r.Header.Get(alerting.HeaderSignature), At: time.Now()}
	if a.seenKeys[key] {
		rb.Duplicate, rb.To = true, a.version
		a.rollbacks = append(a.rollbacks, rb)
		a.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "duplicate": true})
		return
	}
	a.seenKeys[key] = true
	// Roll back to the newest version before the one that failed.
	to := GoodVersion
	for i := len(a.history) - 1; i >= 0; i-- {
		if a.history[i] != payload.Deploy.Version {
			to = a.history[i]
			break
		}
	}
	rb.To = to
	a.version = to
	a.history = append(a.history, to)
	a.rollbacks = append(a.rollbacks, rb)
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "rolled_back_to": to})
}

// Rollbacks returns the rollback calls received.
func (a *App) Rollbacks() []Rollback {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Rollback(nil), a.rollbacks...)
}
