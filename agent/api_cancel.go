package agent

// The cancel endpoints of the deploys resource: POST /api/v1/deploys/{id}/cancel, and for
// a caller that knows only the service and the version (Argo Rollouts' notification
// engine), POST /api/v1/services/{name}/deploys/cancel. cancel.go does the work.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/vigil-monitor/vigil/internal/text"
	"github.com/vigil-monitor/vigil/store"
)

// cancelRequest is the body of a cancel: optional for one by id.
type cancelRequest struct {
	Version string `json:"version"`
	Reason  string `json:"reason"`
}

// cancelConflict is the 409 for a deploy decided before the cancel: its verdict stands.
type cancelConflict struct {
	Error   string      `json:"error"`
	Status  int         `json:"status"`
	Verdict string      `json:"verdict"`
	Deploy  *deployView `json:"deploy"`
}

// decodeOptionalBody reads a JSON body into v as decodeBody does, where no body at all
// (curl -X POST without -d) is a body with no fields.
func decodeOptionalBody(w http.ResponseWriter, r *http.Request, v any) bool {
	raw, ok := readJSONBody(w, r)
	if !ok {
		return false
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return true
	}
	if err := decodeJSON(bytes.NewReader(raw), v); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return false
	}
	return true
}

// readJSONBody reads a request's body, at most maxBody bytes, sent as JSON or with no
// Content-Type at all (curl -d, Flagger); false when it answered the request with an error.
func readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "send JSON with Content-Type: application/json, not %q", text.Ellipsis(ct, 80))
			return nil, false
		}
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "body is larger than %d bytes", maxBody)
		} else {
			writeError(w, http.StatusBadRequest, "reading the body failed: %v", err)
		}
		return nil, false
	}
	return raw, true
}

// cancelDeploy serves POST /api/v1/deploys/{id}/cancel, body {"reason": "..."} or none.
func (a *Agent) cancelDeploy(w http.ResponseWriter, r *http.Request) {
	var req cancelRequest
	if !decodeOptionalBody(w, r, &req) {
		return
	}
	if req.Version != "" {
		writeError(w, http.StatusBadRequest, "the deploy's id says which deploy: send only a reason, {\"reason\":\"rollout aborted\"}")
		return
	}
	a.answerCancel(w, r, r.PathValue("id"), req.Reason)
}

// cancelServiceDeploy serves POST /api/v1/services/{name}/deploys/cancel, body
// {"version": "...", "reason": "..."}: the service's deploy of that version verifying now.
func (a *Agent) cancelServiceDeploy(w http.ResponseWriter, r *http.Request) {
	var req cancelRequest
	if !decodeBody(w, r, &req) {
		return
	}
	service := r.PathValue("name")
	switch {
	case strings.TrimSpace(req.Version) == "":
		writeError(w, http.StatusBadRequest, `version is required: {"version":"v2","reason":"rollout aborted"}`)
		return
	case len(req.Version) > 200:
		writeError(w, http.StatusBadRequest, "version is at most 200 characters, as a deploy's")
		return
	}
	if msg := checkCancelReason(req.Reason); msg != "" {
		writeError(w, http.StatusBadRequest, "%s", msg)
		return
	}
	d, err := a.serviceDeployOf(r.Context(), service, req.Version)
	if a.answerFailed(w, err, "", unavailable{"%v: send the cancel again",
		"finding the deploy to cancel failed; the caller was told to send it again", []any{"service", service}}) {
		return
	}
	a.answerCancel(w, r, d.ID, req.Reason)
}

// answerCancel cancels deploy id and answers: 200 with the deploy once it is cancelled
// (again: a cancel sent twice is answered the same), 409 with the verdict of a deploy
// decided before it, 404 for no such deploy.
func (a *Agent) answerCancel(w http.ResponseWriter, r *http.Request, id, reason string) {
	d, cancelled, err := a.CancelDeploy(r.Context(), id, reason)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no deploy %q (deploy ids come from POST /api/v1/deploys)", text.Ellipsis(id, 80))
		return
	}
	if a.answerFailed(w, err, "", unavailable{"cancelling the deploy failed (%v): send the cancel again",
		"cancelling a deploy failed; the caller was told to send it again", []any{"deploy", id}}) {
		return
	}
	view := a.viewDeploy(r.Context(), d, true)
	if cancelled {
		writeJSON(w, http.StatusOK, view)
		return
	}
	msg := fmt.Sprintf("deploy %s (%s %s) was decided before the cancel: %s", d.ID, d.Service, text.Ellipsis(d.Version, 80), d.Status)
	if d.Reason != "" {
		msg += ": " + text.Ellipsis(d.Reason, 500)
	}
	writeJSON(w, http.StatusConflict, cancelConflict{Error: msg + "; its verdict stands, and what it sent stays sent", Status: http.StatusConflict,
		Verdict: d.Status, Deploy: view})
}
