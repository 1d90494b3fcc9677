package agent

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/store"
)

// The HTTP API is DESIGN.md §5. Every /api/ answer is JSON, errors included:
// {"error": "what went wrong and how to fix it", "status": 400}.

const (
	maxBody     = 1 << 20
	maxWait     = 10 * time.Minute
	maxSilence  = 30 * 24 * time.Hour
	listDefault = 50
	listMax     = 1000
)

// Handler serves the API, metrics, health and the status page.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	always := func() bool { return true }
	api := func(pattern string, h map[string]http.HandlerFunc) {
		mux.Handle(pattern, a.authorized(always, methods(h)))
	}
	api("/api/v1/deploys", map[string]http.HandlerFunc{"POST": a.postDeploys, "GET": a.listDeploys})
	api("/api/v1/deploys/{id}", map[string]http.HandlerFunc{"GET": a.getDeploy})
	api("/api/v1/checks", map[string]http.HandlerFunc{"GET": a.listChecks})
	api("/api/v1/checks/{name}/run", map[string]http.HandlerFunc{"POST": a.runCheck})
	api("/api/v1/silences", map[string]http.HandlerFunc{"POST": a.postSilence, "GET": a.listSilences})
	api("/api/v1/silences/{id}", map[string]http.HandlerFunc{"DELETE": a.deleteSilence})
	api("/api/v1/outbox", map[string]http.HandlerFunc{"GET": a.listOutbox})
	api("/api/v1/outbox/{id}/retry", map[string]http.HandlerFunc{"POST": a.retryOutbox})
	api("/api/v1/flagger", map[string]http.HandlerFunc{"POST": newFlaggerHook(a).serve}) // flagger.go
	mux.Handle("/api/", a.authorized(always, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint: %s %s (see the README, \"HTTP API\")", r.Method, r.URL.Path)
	})))

	// OpenMetrics when the scraper asks for it: that is where exemplars (trace ids) travel.
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.opts.Registry, promhttp.HandlerOpts{Registry: a.opts.Registry, EnableOpenMetrics: true}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.readyz)

	pageAuth := func() bool { return a.Runtime().Config.Agent.StatusPageAuth }
	page := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, a.authorized(pageAuth, h))
	}
	page("GET /{$}", a.statusPage)
	page("GET /checks/{name}", a.checkPage)
	page("GET /deploys/{id}", a.deployPage)
	page("GET /runs/{id}", a.runPage)
	page("GET /runs/{id}/artifacts/{name}", a.artifact)
	return securityHeaders(a.redactOutput(mux))
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// methods dispatches on the method and answers anything else with a JSON 405.
func methods(h map[string]http.HandlerFunc) http.Handler {
	allowed := make([]string, 0, len(h))
	for m := range h {
		allowed = append(allowed, m)
	}
	sort.Strings(allowed)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := h[r.Method]; f != nil {
			f(w, r)
			return
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, http.StatusMethodNotAllowed, "%s is not allowed here; use %s", r.Method, strings.Join(allowed, " or "))
	})
}

// authorized requires the bearer token (or, for people's browsers on the status page,
// HTTP basic auth with the token as password) when one is configured and required says so
// (asked per request: status_page_auth applies on reload). It is compared in constant time.
func (a *Agent) authorized(required func() bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := a.Runtime().Config.Agent.APIToken.Value()
		if token == "" || !required() {
			next.ServeHTTP(w, r)
			return
		}
		got, ok := "", false
		if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			got, ok = strings.TrimSpace(h[7:]), true
		} else if _, pw, basic := r.BasicAuth(); basic {
			got, ok = pw, true
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
			writeError(w, http.StatusUnauthorized, "missing credentials: send Authorization: Bearer <agent.api_token>")
			return
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "wrong token: send the agent's api_token as Authorization: Bearer <token>")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// apiError is the body of every API error.
type apiError struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, apiError{Error: fmt.Sprintf(format, args...), Status: status})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// decodeBody reads one JSON object of at most 1 MiB with no unknown fields into v. On
// failure it has already answered.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "send JSON with Content-Type: application/json, not %q", ct)
			return false
		}
	}
	if err := DecodeJSON(http.MaxBytesReader(w, r.Body, maxBody), v); err != nil {
		status := http.StatusBadRequest
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			status = http.StatusRequestEntityTooLarge
		}
		writeError(w, status, "%v", err)
		return false
	}
	return true
}

// DecodeJSON decodes exactly one JSON object with no unknown fields from r. Its errors
// say what is wrong in words a caller can act on.
func DecodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooBig):
			return fmt.Errorf("body is larger than %d bytes: %w", maxBody, tooBig)
		case errors.Is(err, io.EOF):
			return errors.New("empty body: send a JSON object")
		case errors.As(err, &syntax):
			return fmt.Errorf("malformed JSON at byte %d: %v", syntax.Offset, syntax)
		case errors.As(err, &typ):
			if typ.Field == "" {
				return fmt.Errorf("the body must be a JSON object, not %s", typ.Value)
			}
			return fmt.Errorf("field %q must be %s, not %s", typ.Field, typ.Type, typ.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return fmt.Errorf("unknown field %s (see the README, \"HTTP API\", for the fields)", strings.TrimPrefix(err.Error(), "json: unknown field "))
		case errors.Is(err, io.ErrUnexpectedEOF):
			return errors.New("malformed JSON: the body ends in the middle of a value")
		}
		return fmt.Errorf("malformed JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("body is larger than %d bytes: %w", maxBody, tooBig)
		}
		return errors.New("malformed JSON: send one object, with nothing after it")
	}
	return nil
}

// deployView is a deploy as the API shows it.
type deployView struct {
	ID           string         `json:"id"`
	Service      string         `json:"service"`
	Version      string         `json:"version"`
	Environment  string         `json:"environment,omitempty"`
	Commit       string         `json:"commit,omitempty"`
	Status       string         `json:"status"`
	Reason       string         `json:"reason,omitempty"`
	Halt         string         `json:"halt,omitempty"`
	CreatedAt    time.Time      `json:"created_at"`
	DecidedAt    *time.Time     `json:"decided_at,omitempty"`
	SupersededBy string         `json:"superseded_by,omitempty"`
	URL          string         `json:"url"`
	Checks       []*DeployCheck `json:"checks,omitempty"`
}

func (a *Agent) viewDeploy(ctx context.Context, d *store.Deploy, withChecks bool) *deployView {
	v := &deployView{ID: d.ID, Service: d.Service, Version: d.Version, Environment: d.Environment, Commit: d.Commit,
		Status: d.Status, Reason: d.Reason, Halt: d.Halt, CreatedAt: d.CreatedAt.UTC(), SupersededBy: d.SupersededBy,
		URL: a.baseURL() + "/deploys/" + d.ID}
	if !d.DecidedAt.IsZero() {
		t := d.DecidedAt.UTC()
		v.DecidedAt = &t
	}
	if withChecks {
		list, err := a.DeployChecks(ctx, d)
		if err != nil {
			a.log.Warn("reading a deploy's runs failed", "deploy", d.ID, "error", err)
		}
		v.Checks = list
	}
	return v
}

func (a *Agent) postDeploys(w http.ResponseWriter, r *http.Request) {
	var req DeployRequest
	if !decodeBody(w, r, &req) {
		return
	}
	list, err := a.StartDeploys(r.Context(), req)
	var rerr *requestError
	switch {
	case errors.As(err, &rerr):
		writeError(w, rerr.status, "%s", rerr.msg)
		return
	case err != nil:
		a.log.Error("registering a deploy failed", "error", err)
		writeError(w, http.StatusInternalServerError, "registering the deploy failed: %v", err)
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

func (a *Agent) listDeploys(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(w, r)
	if !ok {
		return
	}
	var list []*store.Deploy
	var err error
	if s := r.URL.Query().Get("service"); s != "" {
		list, err = a.store.ServiceDeploys(r.Context(), s, limit)
	} else {
		list, err = a.store.Deploys(r.Context(), r.URL.Query().Get("status"), limit)
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading deploys failed: %v", err)
		return
	}
	out := make([]*deployView, 0, len(list))
	for _, d := range list {
		out = append(out, a.viewDeploy(r.Context(), d, false))
	}
	writeJSON(w, http.StatusOK, map[string]any{"deploys": out})
}

func limitParam(w http.ResponseWriter, r *http.Request) (int, bool) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return listDefault, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > listMax {
		writeError(w, http.StatusBadRequest, "limit must be a number from 1 to %d, not %q", listMax, s)
		return 0, false
	}
	return n, true
}

func (a *Agent) getDeploy(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var wait time.Duration
	if s := r.URL.Query().Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > maxWait {
			writeError(w, http.StatusBadRequest, "wait must be a duration from 0s to %s, like 30s, not %q", maxWait, s)
			return
		}
		wait = d
		a.extendWriteDeadline(w, wait)
	}
	d, err := a.WaitDeploy(r.Context(), id, wait)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no deploy %q (deploy ids come from POST /api/v1/deploys)", clip(id, 80))
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "reading the deploy failed: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, a.viewDeploy(r.Context(), d, true))
}

// checkView is a check with its last result.
type checkView struct {
	Name     string        `json:"name"`
	Kind     string        `json:"kind"`
	Services []string      `json:"services,omitempty"`
	Every    string        `json:"every"`
	Incident bool          `json:"incident_open"`
	Last     *resultView   `json:"last,omitempty"`
	Notify   []string      `json:"notify,omitempty"`
	Timeout  time.Duration `json:"-"`
}

type resultView struct {
	Outcome    string         `json:"outcome"`
	Reasons    []string       `json:"reasons,omitempty"`
	Started    time.Time      `json:"started"`
	DurationMS float64        `json:"duration_ms"`
	Attempts   int            `json:"attempts,omitempty"`
	Vars       map[string]any `json:"vars,omitempty"`
	Transcript []string       `json:"transcript,omitempty"`
	Artifacts  []string       `json:"artifacts,omitempty"`
	RunURL     string         `json:"run_url,omitempty"`
}

func viewResult(r *checks.Result, runURL string, full bool) *resultView {
	v := &resultView{Outcome: string(r.Outcome), Reasons: r.Reasons, Started: r.Started.UTC(),
		DurationMS: float64(r.Duration.Microseconds()) / 1000, Attempts: r.Attempts, RunURL: runURL}
	if full {
		v.Vars, v.Transcript = r.Vars, r.Transcript
	}
	for _, art := range r.Artifacts {
		v.Artifacts = append(v.Artifacts, art.Name)
	}
	return v
}

func (a *Agent) listChecks(w http.ResponseWriter, r *http.Request) {
	rt := a.Runtime()
	a.incMu.Lock()
	open := map[string]bool{}
	for n, in := range a.incidents {
		open[n] = in.Open
	}
	a.incMu.Unlock()
	out := make([]*checkView, 0, len(rt.Order))
	for _, c := range rt.Order {
		v := &checkView{Name: c.Name, Kind: c.Kind, Services: rt.CheckServices[c.Name], Every: c.Config.Every.String(),
			Incident: open[c.Name], Notify: c.Config.Notify}
		if res := a.LastResult(c.Name); res != nil {
			v.Last = viewResult(res, "", false)
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"checks": out})
}

func (a *Agent) runCheck(w http.ResponseWriter, r *http.Request) {
	rt := a.Runtime()
	name := r.PathValue("name")
	c := rt.Checks[name]
	if c == nil {
		known := make([]string, 0, len(rt.Order))
		for _, c := range rt.Order {
			known = append(known, c.Name)
		}
		writeError(w, http.StatusNotFound, "no check %q; %s", clip(name, 80), configs.DidYouMean(name, known))
		return
	}
	if r.ContentLength > 0 {
		writeError(w, http.StatusBadRequest, "this endpoint takes no body: the check runs as configured")
		return
	}
	retries := time.Duration(*c.Config.Retries)
	a.extendWriteDeadline(w, (retries+1)*c.Timeout+retries*5*time.Second)
	release, ok := a.sched.Acquire(r.Context(), c)
	if !ok {
		return // the caller went away while the run waited for a slot
	}
	res, ok := a.execute(r.Context(), c, checks.Input{}, "")
	release()
	if !ok {
		return // the caller went away: a cancelled run is not a result
	}
	sr := toStoreRun(res, "")
	if err := a.store.SaveRuns(context.WithoutCancel(r.Context()), []*store.Run{sr}); err != nil {
		a.log.Error("saving a manual run failed", "check", name, "error", err)
	}
	writeJSON(w, http.StatusOK, struct {
		Check string `json:"check"`
		*resultView
	}{name, viewResult(res, a.runURL(sr.ID), true)})
}

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
		writeError(w, http.StatusUnprocessableEntity, "no check %q in the config", clip(req.Check, 80))
		return
	case req.Service != "" && rt.Config.Services[req.Service] == nil:
		writeError(w, http.StatusUnprocessableEntity, "no service %q in the config", clip(req.Service, 80))
		return
	case strings.TrimSpace(req.Reason) == "" || len(req.Reason) > 500 || len(req.CreatedBy) > 200:
		writeError(w, http.StatusBadRequest, "say why in reason (1 to 500 characters): people will see it next to muted alerts")
		return
	}
	d, err := time.ParseDuration(req.Duration)
	if err != nil || d <= 0 || d > maxSilence {
		writeError(w, http.StatusBadRequest, "duration must be like 30m or 2h, at most %s, not %q", maxSilence, clip(req.Duration, 40))
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
	err := a.store.DeleteSilence(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no silence %q", clip(r.PathValue("id"), 80))
	case err != nil:
		writeError(w, http.StatusInternalServerError, "deleting the silence failed: %v", err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

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

var outboxStates = []string{"", store.OutboxPending, store.OutboxDelivered, store.OutboxDead, store.OutboxDryRun, store.OutboxSilenced}

func (a *Agent) listOutbox(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	if !slices.Contains(outboxStates, state) {
		writeError(w, http.StatusBadRequest, "state must be one of %s, not %q", strings.Join(outboxStates[1:], ", "), clip(state, 40))
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
		writeError(w, http.StatusBadRequest, "outbox ids are numbers, not %q", clip(r.PathValue("id"), 40))
		return
	}
	switch err := a.store.Retry(r.Context(), id, a.clock.Now()); {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no dead-lettered outbox entry %d (only dead entries can be retried)", id)
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "retrying failed: %v", err)
		return
	}
	a.signalOutbox()
	writeJSON(w, http.StatusAccepted, map[string]any{"id": id, "state": store.OutboxPending})
}

func (a *Agent) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	var problems []string
	rt := a.Runtime()
	if rt == nil {
		problems = append(problems, "no configuration loaded")
	}
	if err := a.store.Writable(ctx); err != nil {
		problems = append(problems, "store not writable: "+err.Error())
	}
	if err := a.store.Health(ctx); err != nil {
		problems = append(problems, "store: "+err.Error())
	}
	if n := a.unrecordedVerdicts(); n > 0 {
		problems = append(problems, fmt.Sprintf("%d %s decided but not yet written to the store (retrying)", n, plural(n, "verdict")))
	}
	if rt != nil && rt.HasBrowserChecks() && a.opts.BrowserReady != nil {
		if err := a.opts.BrowserReady(ctx); err != nil {
			problems = append(problems, "browser not usable: "+err.Error())
		}
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "problems": problems})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": len(rt.Order), "config_loaded_at": rt.Loaded.UTC()})
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
