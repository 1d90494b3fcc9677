package agent

// The deploys resource of the HTTP API: register a deploy, list deploys, read one (with a
// long-poll for its verdict). api.go has the plumbing every resource shares.

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/internal/text"
	"github.com/vigil-monitor/vigil/store"
)

// deployView is a deploy as the API shows it.
type deployView struct {
	ID           string     `json:"id"`
	Service      string     `json:"service"`
	Version      string     `json:"version"`
	Environment  string     `json:"environment,omitempty"`
	Commit       string     `json:"commit,omitempty"`
	Status       string     `json:"status"`
	Reason       string     `json:"reason,omitempty"`
	Halt         string     `json:"halt,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	DecidedAt    *time.Time `json:"decided_at,omitempty"`
	SupersededBy string     `json:"superseded_by,omitempty"`
	// RollbackOf is the failed deploy this one rolled back: a failed verdict on it calls
	// no rollback or halt webhook.
	RollbackOf string `json:"rollback_of,omitempty"`
	// ReadyMS is how long after registration the new version had passed every check once
	// (verify.ready_within is its limit); absent until it has.
	ReadyMS *int64         `json:"ready_ms,omitempty"`
	URL     string         `json:"url"`
	Links   []store.Link   `json:"links,omitempty"`
	Checks  []*DeployCheck `json:"checks,omitempty"`
	// Locations are the reports of the agents verifying the deploy, each for its location,
	// in the order they came (where agents share a store; one agent reports alone).
	Locations []locationView `json:"locations,omitempty"`
}

// locationView is one agent's report on a deploy, for its location.
type locationView struct {
	Location   string    `json:"location"`
	Agent      string    `json:"agent"`
	Status     string    `json:"status"`
	Reason     string    `json:"reason,omitempty"`
	Halt       string    `json:"halt,omitempty"`
	ReportedAt time.Time `json:"reported_at"`
}

func (a *Agent) viewDeploy(ctx context.Context, d *store.Deploy, withChecks bool) *deployView {
	v := &deployView{ID: d.ID, Service: d.Service, Version: d.Version, Environment: d.Environment, Commit: d.Commit,
		Status: d.Status, Reason: d.Reason, Halt: d.Halt, CreatedAt: d.CreatedAt.UTC(), SupersededBy: d.SupersededBy,
		RollbackOf: d.RollbackOf, URL: a.baseURL() + "/deploys/" + d.ID}
	if !d.DecidedAt.IsZero() {
		t := d.DecidedAt.UTC()
		v.DecidedAt = &t
	}
	if withChecks {
		links, err := a.store.DeployLinks(ctx, d.ID)
		if err != nil {
			a.log.Warn("reading a deploy's links failed", "deploy", d.ID, "error", err)
		}
		v.Links = links
		list, err := a.DeployChecks(ctx, d)
		if err != nil {
			a.log.Warn("reading a deploy's runs failed", "deploy", d.ID, "error", err)
		}
		v.Checks, v.ReadyMS = list, readyMS(list)
		reports, err := a.store.LocationReports(ctx, d.ID)
		if err != nil {
			a.log.Warn("reading a deploy's location reports failed", "deploy", d.ID, "error", err)
		}
		for _, r := range reports {
			v.Locations = append(v.Locations, locationView{Location: r.Location, Agent: r.Agent, Status: r.Status, Reason: r.Reason,
				Halt: r.Halt, ReportedAt: r.At.UTC()})
		}
	}
	return v
}

// postDeploys registers a deploy. Under an Idempotency-Key, a registration sent again
// (its answer lost, the agent restarted meanwhile) registers nothing new and gets the same
// answer; without one, every registration is a new deploy. A registration the store cannot
// take now is a 503 to send again.
func (a *Agent) postDeploys(w http.ResponseWriter, r *http.Request) {
	var req DeployRequest
	key, ok := idempotencyKey(r)
	if !ok {
		writeError(w, http.StatusBadRequest, "Idempotency-Key must be 1 to %d printable ASCII characters, e.g. the pipeline's run id and attempt", maxIdempotencyKey)
		return
	}
	if strings.HasPrefix(key, flaggerKeys) {
		// The keys of the Flagger webhook's registrations: the store reads a deploy under one
		// as a canary's (its namespace rule, the checksum it follows).
		writeError(w, http.StatusBadRequest, "Idempotency-Key %q begins with %q, which vigil keeps for the Flagger webhook's registrations; use another, e.g. the pipeline's run id and attempt",
			text.Ellipsis(key, 80), flaggerKeys)
		return
	}
	if !decodeBody(w, r, &req) {
		return
	}
	req.Key = key
	list, err := a.StartDeploys(r.Context(), req)
	how := "registering the deploy failed (%v): send it again"
	if key == "" {
		how += " (under an Idempotency-Key, so that a service registered already is not registered twice)"
	}
	if a.answerFailed(w, err, "", unavailable{how, "registering a deploy failed; the caller was told to send it again", []any{"registered", len(list)}}) {
		return
	}
	out := struct {
		ID      string        `json:"id"`
		Deploys []*deployView `json:"deploys"`
	}{ID: list[0].ID}
	for _, d := range list {
		out.Deploys = append(out.Deploys, a.viewDeploy(r.Context(), d, false))
	}
	w.Header().Set("Location", "/api/v1/deploys/"+list[0].ID)
	writeJSON(w, http.StatusAccepted, out)
}

// maxIdempotencyKey bounds an Idempotency-Key: a pipeline's run id and attempt, a UUID.
const maxIdempotencyKey = 255

var deployStatuses = []string{"", store.StatusVerifying, store.StatusPassed, store.StatusFailed, store.StatusInconclusive, store.StatusSuperseded,
	store.StatusCancelled}

// idempotencyKey is the request's Idempotency-Key, "" when it has none; ok is false for a
// key that is empty, too long or not printable ASCII (a quoted form, as the header's
// draft writes it, is taken as it is).
func idempotencyKey(r *http.Request) (string, bool) {
	vals := r.Header.Values("Idempotency-Key")
	switch len(vals) {
	case 0:
		return "", true
	case 1:
	default:
		return "", false
	}
	k := vals[0]
	if k == "" || len(k) > maxIdempotencyKey {
		return "", false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return "", false
		}
	}
	return k, true
}

func (a *Agent) listDeploys(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(w, r)
	if !ok {
		return
	}
	service, ok := queryParam(w, r, "service")
	if !ok {
		return
	}
	status, ok := queryParam(w, r, "status")
	if !ok {
		return
	}
	if !slices.Contains(deployStatuses, status) {
		writeError(w, http.StatusBadRequest, "status must be one of %s, not %q%s", strings.Join(deployStatuses[1:], ", "), text.Ellipsis(status, 40),
			nearestValue(status, deployStatuses[1:]))
		return
	}
	var list []*store.Deploy
	var err error
	switch {
	case service != "" && status != "":
		writeError(w, http.StatusBadRequest, "ask for service or status, not both")
		return
	case service != "":
		list, err = a.store.ServiceDeploys(r.Context(), service, limit)
	default:
		list, err = a.store.Deploys(r.Context(), status, limit)
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading deploys failed: %v", err)
		return
	}
	if rt := a.Runtime(); service != "" && len(list) == 0 && rt.Config.Services[service] == nil {
		// A service taken out of the config still lists the deploys it had; one that
		// never had any is a name misspelt, not an empty history.
		writeError(w, http.StatusUnprocessableEntity, "%s", unknownService(rt, service).msg)
		return
	}
	out := make([]*deployView, 0, len(list))
	for _, d := range list {
		out = append(out, a.viewDeploy(r.Context(), d, false))
	}
	writeJSON(w, http.StatusOK, map[string]any{"deploys": out})
}

func (a *Agent) getDeploy(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var wait time.Duration
	s, ok := queryParam(w, r, "wait")
	if !ok {
		return
	}
	if s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > maxWait {
			writeError(w, http.StatusBadRequest, "wait must be a duration from 0s to %s, like 30s, not %q", maxWait, text.Ellipsis(s, 40))
			return
		}
		wait = d
		if wait > 0 {
			// A connection waiting here is busy and is never closed to make room: past
			// half the cap the rest are told to come back, so a probe on a fresh
			// connection is still let in (hundreds of waiting pipelines stalled /healthz).
			limit := int64(max(a.Runtime().Config.Agent.MaxConnections/2, 1))
			if n := a.longPolls.Add(1); n > limit {
				a.longPolls.Add(-1)
				w.Header().Set("Retry-After", "2")
				writeError(w, http.StatusServiceUnavailable, "%d requests already wait for a verdict, the most at once (half of agent.max_connections): ask again in a few seconds", limit)
				return
			}
			defer a.longPolls.Add(-1)
		}
		a.extendWriteDeadline(w, wait)
	}
	d, err := a.WaitDeploy(r.Context(), id, wait)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no deploy %q (deploy ids come from POST /api/v1/deploys)", text.Ellipsis(id, 80))
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "reading the deploy failed: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, a.viewDeploy(r.Context(), d, true))
}
