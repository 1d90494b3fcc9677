package agent

// The silences resource of the HTTP API: mute a service or a check for a while.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/internal/text"
	"github.com/vigil-monitor/vigil/store"
)

// SilenceRequest is the body of POST /api/v1/silences.
type SilenceRequest struct {
	Check     string `json:"check"`
	Service   string `json:"service"`
	Duration  string `json:"duration"`
	Reason    string `json:"reason"`
	CreatedBy string `json:"created_by"`
}

type silenceView struct {
	ID        string    `json:"id"`
	Check     string    `json:"check,omitempty"`
	Service   string    `json:"service,omitempty"`
	Starts    time.Time `json:"starts_at"`
	Ends      time.Time `json:"ends_at"`
	Reason    string    `json:"reason"`
	CreatedBy string    `json:"created_by,omitempty"`
}

func (a *Agent) postSilence(w http.ResponseWriter, r *http.Request) {
	var req SilenceRequest
	if !decodeBody(w, r, &req) {
		return
	}
	rt := a.Runtime()
	switch {
	case (req.Check == "") == (req.Service == ""):
		writeError(w, http.StatusBadRequest, `name exactly one of check or service: {"check":"login","duration":"2h","reason":"db migration"}`)
		return
	case req.Check != "" && rt.Checks[req.Check] == nil:
		writeError(w, http.StatusUnprocessableEntity, "%s", unknownCheck(rt, req.Check))
		return
	case req.Service != "" && rt.Config.Services[req.Service] == nil:
		writeError(w, http.StatusUnprocessableEntity, "%s", unknownService(rt, req.Service).msg)
		return
	case strings.TrimSpace(req.Reason) == "" || len(req.Reason) > 500 || len(req.CreatedBy) > 200:
		writeError(w, http.StatusBadRequest, "say why in reason (1 to 500 characters): people will see it next to muted alerts")
		return
	}
	d, err := time.ParseDuration(req.Duration)
	if err != nil || d <= 0 || d > maxSilence {
		writeError(w, http.StatusBadRequest, "duration must be like 30m or 2h, at most %s, not %q", maxSilence, text.Ellipsis(req.Duration, 40))
		return
	}
	now := a.clock.Now()
	var b [6]byte
	_, _ = rand.Read(b[:])
	sl := &store.Silence{ID: hex.EncodeToString(b[:]), Check: req.Check, Service: req.Service, Starts: now, Ends: now.Add(d),
		Reason: req.Reason, CreatedBy: req.CreatedBy, CreatedAt: now}
	if err := a.store.AddSilence(r.Context(), sl); err != nil {
		writeError(w, http.StatusInternalServerError, "saving the silence failed: %v", err)
		return
	}
	a.log.Info("silence added", "id", sl.ID, "check", sl.Check, "service", sl.Service, "until", sl.Ends, "reason", sl.Reason)
	a.recordEvent(&store.Event{At: now, Kind: eventSilenceAdded, Check: sl.Check, Service: sl.Service,
		Summary: silenceSummary(sl)})
	writeJSON(w, http.StatusCreated, viewSilence(sl))
}

func viewSilence(s *store.Silence) silenceView {
	return silenceView{ID: s.ID, Check: s.Check, Service: s.Service, Starts: s.Starts.UTC(), Ends: s.Ends.UTC(), Reason: s.Reason, CreatedBy: s.CreatedBy}
}

func (a *Agent) listSilences(w http.ResponseWriter, r *http.Request) {
	list, err := a.store.Silences(r.Context(), a.clock.Now())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading silences failed: %v", err)
		return
	}
	out := make([]silenceView, 0, len(list))
	for _, s := range list {
		out = append(out, viewSilence(s))
	}
	writeJSON(w, http.StatusOK, map[string]any{"silences": out})
}

func (a *Agent) deleteSilence(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var gone *store.Silence
	if list, err := a.store.Silences(r.Context(), a.clock.Now()); err == nil {
		for _, s := range list {
			if s.ID == id {
				gone = s
			}
		}
	}
	err := a.store.DeleteSilence(r.Context(), id)
	if err == nil && gone != nil {
		a.recordEvent(&store.Event{Kind: eventSilenceRemoved, Check: gone.Check, Service: gone.Service,
			Summary: "ended early: " + silenceSummary(gone)})
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no silence %q", text.Ellipsis(r.PathValue("id"), 80))
	case err != nil:
		writeError(w, http.StatusInternalServerError, "deleting the silence failed: %v", err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// silenceSummary says what a silence mutes, until when and why, for the timeline.
func silenceSummary(s *store.Silence) string {
	what := "service " + s.Service
	if s.Check != "" {
		what = "check " + s.Check
	}
	out := what + " silenced until " + s.Ends.UTC().Format("2006-01-02 15:04Z") + ": " + s.Reason
	if s.CreatedBy != "" {
		out += " (" + s.CreatedBy + ")"
	}
	return out
}
