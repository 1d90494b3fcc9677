package agent

// The outbox resource of the HTTP API: notifications and their delivery, and a retry for
// a dead letter.

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/internal/text"
	"github.com/vigil-monitor/vigil/store"
)

// outboxView is an outbox entry as the API shows it (its payload left out).
type outboxView struct {
	ID        int64      `json:"id"`
	Notifier  string     `json:"notifier"`
	Event     string     `json:"event"`
	Key       string     `json:"idempotency_key"`
	Incident  string     `json:"incident"`
	Status    string     `json:"state"`
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	Next      *time.Time `json:"next_attempt_at,omitempty"`
	DoneAt    *time.Time `json:"done_at,omitempty"`
}

func (a *Agent) listOutbox(w http.ResponseWriter, r *http.Request) {
	state, ok := queryParam(w, r, "state")
	if !ok {
		return
	}
	if !slices.Contains(outboxStates, state) {
		writeError(w, http.StatusBadRequest, "state must be one of %s, not %q%s", strings.Join(outboxStates[1:], ", "), text.Ellipsis(state, 40),
			nearestValue(state, outboxStates[1:]))
		return
	}
	limit, ok := limitParam(w, r)
	if !ok {
		return
	}
	list, err := a.store.Outbox(r.Context(), state, limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the outbox failed: %v", err)
		return
	}
	counts, _ := a.store.OutboxCounts(r.Context())
	out := make([]outboxView, 0, len(list))
	for _, e := range list {
		v := outboxView{ID: e.ID, Notifier: e.Notifier, Event: e.Event, Key: e.Key, Incident: e.Incident, Status: e.Status,
			Attempts: e.Attempts, LastError: e.LastError, CreatedAt: e.CreatedAt.UTC()}
		if e.Status == store.OutboxPending {
			t := e.NextAttempt.UTC()
			v.Next = &t
		} else if !e.DoneAt.IsZero() {
			t := e.DoneAt.UTC()
			v.DoneAt = &t
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": out, "counts": counts})
}

func (a *Agent) retryOutbox(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "outbox ids are numbers, not %q", text.Ellipsis(r.PathValue("id"), 40))
		return
	}
	switch err := a.store.Retry(r.Context(), id, a.clock.Now()); {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no dead-lettered outbox entry %d (only dead entries can be retried)", id)
		return
	case errors.Is(err, store.ErrSuperseded):
		writeError(w, http.StatusConflict, "outbox entry %d is not sent again: %v, and it would arrive after it (an incident's opening after its all-clear)", id, err)
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "retrying failed: %v", err)
		return
	}
	a.signalOutbox()
	writeJSON(w, http.StatusAccepted, map[string]any{"id": id, "state": store.OutboxPending})
}
