package agent

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/internal/text"
	"github.com/vigil-monitor/vigil/store"
)

// The HTTP API's plumbing: routes, auth, bounded JSON bodies, JSON errors. Each resource's
// handlers have their own file (api_deploys.go, api_checks.go, api_silences.go,
// api_outbox.go, flagger.go). Every /api/ answer is JSON, errors included:
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
	api("/api/v1/deploys/{id}/cancel", map[string]http.HandlerFunc{"POST": a.cancelDeploy})
	api("/api/v1/services/{name}/deploys/cancel", map[string]http.HandlerFunc{"POST": a.cancelServiceDeploy})
	api("/api/v1/services/{name}/preflight", map[string]http.HandlerFunc{"GET": a.getPreflight}) // preflight.go
	api("/api/v1/checks", map[string]http.HandlerFunc{"GET": a.listChecks})
	api("/api/v1/checks/{name}/run", map[string]http.HandlerFunc{"POST": a.runCheck})
	api("/api/v1/silences", map[string]http.HandlerFunc{"POST": a.postSilence, "GET": a.listSilences})
	api("/api/v1/silences/{id}", map[string]http.HandlerFunc{"DELETE": a.deleteSilence})
	api("/api/v1/outbox", map[string]http.HandlerFunc{"GET": a.listOutbox})
	api("/api/v1/outbox/{id}/retry", map[string]http.HandlerFunc{"POST": a.retryOutbox})
	api("/api/v1/agents", map[string]http.HandlerFunc{"GET": a.listAgents})              // members.go
	api("/api/v1/agents/{name}", map[string]http.HandlerFunc{"DELETE": a.forgetAgent})   // members.go
	api("/api/v1/flagger", map[string]http.HandlerFunc{"POST": newFlaggerHook(a).serve}) // flagger.go
	// Beats carry their check's own token, not the API token (api_heartbeats.go).
	mux.Handle("/api/v1/heartbeats/{name}", methods(map[string]http.HandlerFunc{"POST": a.postHeartbeat}))
	mux.Handle("/api/", a.authorized(always, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint: %s %s (see the README, \"HTTP API\")", r.Method, r.URL.Path)
	})))

	// OpenMetrics when the scraper asks for it: that is where exemplars (trace ids) travel.
	mux.Handle("GET /metrics", metricsHandler(a.opts.Registry, a.metrics.own))
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
	page("GET /badges/{name}/{badge}", a.badgeSVG)             // badges.go
	page("GET /badges/{name}/shields.json", a.shieldsEndpoint) // badges.go
	mux.HandleFunc("GET /theme/{mode}", a.setTheme)
	h := securityHeaders(a.redactOutput(sameOrigin(pagesOr404(mux, a.authorized(pageAuth, http.HandlerFunc(a.noSuchPage))))))
	if !a.opts.Pprof {
		return h
	}
	// Profiles are binary and hold no config values: they bypass the output redactor.
	outer := http.NewServeMux()
	outer.Handle("/debug/pprof/", a.authorized(always, http.HandlerFunc(pprof.Index)))
	outer.Handle("/debug/pprof/cmdline", a.authorized(always, http.HandlerFunc(pprof.Cmdline)))
	outer.Handle("/debug/pprof/profile", a.authorized(always, http.HandlerFunc(pprof.Profile)))
	outer.Handle("/debug/pprof/symbol", a.authorized(always, http.HandlerFunc(pprof.Symbol)))
	outer.Handle("/debug/pprof/trace", a.authorized(always, http.HandlerFunc(pprof.Trace)))
	outer.Handle("/", h)
	return outer
}

// pagesOr404 hands a GET of a path no pattern of mux has, outside /api/, to notFound (the
// status page's 404): as a pattern, "GET /" would conflict with every route registered
// without a method. Method-less routes match every method, and no page's path is
// registered for other methods only, so such a GET is a 404, never a 405.
func pagesOr404(mux *http.ServeMux, notFound http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && !strings.HasPrefix(r.URL.Path, "/api/") {
			if _, pattern := mux.Handler(r); pattern == "" {
				notFound.ServeHTTP(w, r)
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
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

// sameOrigin refuses a POST or DELETE that a browser sends from another site's page (its
// Sec-Fetch-Site or Origin says so): with no token on a loopback agent, or with a token the
// browser keeps for the status page, such a page could otherwise run checks, retry
// notifications or add silences. curl, vigil and Flagger send neither header.
func sameOrigin(next http.Handler) http.Handler {
	p := http.NewCrossOriginProtection()
	p.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "%s %s from another site's page is refused: call the API from a pipeline or a shell", r.Method, r.URL.Path)
	}))
	return p.Handler(next)
}

// methods dispatches on the method and answers anything else with a JSON 405. HEAD is
// served as GET (without the body) and OPTIONS lists the methods.
func methods(h map[string]http.HandlerFunc) http.Handler {
	named := make([]string, 0, len(h))
	for m := range h {
		named = append(named, m)
	}
	sort.Strings(named)
	allowed := append(slices.Clone(named), "OPTIONS")
	if h["GET"] != nil {
		allowed = append(allowed, "HEAD")
	}
	sort.Strings(allowed)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := h[r.Method]
		if r.Method == http.MethodHead {
			f = h["GET"]
		}
		if f != nil {
			f(w, r)
			return
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeError(w, http.StatusMethodNotAllowed, "%s is not allowed here; use %s", r.Method, strings.Join(named, " or "))
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
			challenge(w, r, "")
			hint := ""
			if !strings.HasPrefix(r.URL.Path, "/api/") {
				hint = " (in a browser: any user name, and the token as the password)"
			}
			writeError(w, http.StatusUnauthorized, "missing credentials: send Authorization: Bearer <agent.api_token>%s", hint)
			return
		}
		// Hashes have equal lengths: ConstantTimeCompare returns at once on a length
		// mismatch, which told a caller the token's length (heartbeats compare so too).
		if g, t := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(token)); subtle.ConstantTimeCompare(g[:], t[:]) != 1 {
			challenge(w, r, `, error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "wrong token: send the agent's api_token as Authorization: Bearer <token>")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// challenge asks for the token: as a bearer token (RFC 6750), and on the pages people open
// in a browser also as basic auth's password. A browser has no handler for Bearer, so on a
// 401 that offers only it, it shows the answer and asks nothing: with status_page_auth on,
// no one could open the status page from a browser (nor with the token in the URL,
// http://vigil:TOKEN@host/, which a browser sends only to a Basic challenge).
func challenge(w http.ResponseWriter, r *http.Request, bearerError string) {
	w.Header().Add("WWW-Authenticate", `Bearer realm="vigil"`+bearerError)
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		w.Header().Add("WWW-Authenticate", `Basic realm="vigil status page", charset="UTF-8"`)
	}
}

// apiError is the body of every API error.
type apiError struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, apiError{Error: fmt.Sprintf(format, args...), Status: status})
}

// unavailable is what a handler says when the agent, not the caller, failed (its store
// refused or timed out): Retry-After and a 503 whose message, a format with one %v for
// the error, says what to do; log is the line the agent logs, and args its attributes.
type unavailable struct {
	message, log string
	args         []any
}

// answerFailed answers err and says whether there was one: a *requestError is the caller's
// mistake, its status and message (plus hint, when there is one: where the message's
// subject came from); anything else is u, logged as an error.
func (a *Agent) answerFailed(w http.ResponseWriter, err error, hint string, u unavailable) bool {
	var rerr *requestError
	switch {
	case err == nil:
		return false
	case errors.As(err, &rerr):
		writeError(w, rerr.status, "%s%s", rerr.msg, hint)
	default:
		a.log.Error(u.log, append(u.args, "error", err)...)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, u.message, err)
	}
	return true
}

// writeJSON answers v, encoded before the status is sent: a value that cannot be encoded
// is a 500 that says so, never a 200 with an empty body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		buf.Reset()
		status = http.StatusInternalServerError
		_ = enc.Encode(apiError{Error: "vigil could not encode its answer: " + err.Error(), Status: status})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
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
	if err := decodeJSON(http.MaxBytesReader(w, r.Body, maxBody), v); err != nil {
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

// decodeJSON decodes exactly one JSON object with no unknown fields from r. Its errors
// say what is wrong in words a caller can act on.
func decodeJSON(r io.Reader, v any) error {
	var raw bytes.Buffer // what the decoder read: the whole body once it has decoded it
	dec := json.NewDecoder(io.TeeReader(r, &raw))
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
	if k, dup := duplicateKey(raw.Bytes()); dup {
		return fmt.Errorf("field %q is given twice: send each field once", k)
	}
	return nil
}

// duplicateKey finds a key given twice in one object of well-formed JSON. Go keeps the
// last and other parsers the first, so a proxy that checked the body may have read another
// value than vigil; keys that differ only in case count as the same, as Go reads them.
func duplicateKey(data []byte) (string, bool) {
	type frame struct {
		keys    map[string]bool
		wantKey bool // an object, between its values
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].keys != nil {
				stack[len(stack)-1].wantKey = true
			}
			continue
		}
		switch {
		case top == nil || top.keys == nil:
		case top.wantKey:
			k, _ := tok.(string)
			if top.keys[strings.ToLower(k)] {
				return k, true
			}
			top.keys[strings.ToLower(k)], top.wantKey = true, false
		default:
			top.wantKey = true
		}
	}
}

// queryParam is the query parameter name, given at most once; else it has answered 400 (a
// parameter given twice is read one way by vigil and perhaps another by a proxy).
func queryParam(w http.ResponseWriter, r *http.Request, name string) (string, bool) {
	vals := r.URL.Query()[name]
	if len(vals) > 1 {
		writeError(w, http.StatusBadRequest, "give %s once, not %d times", name, len(vals))
		return "", false
	}
	if len(vals) == 0 {
		return "", true
	}
	return vals[0], true
}

func limitParam(w http.ResponseWriter, r *http.Request) (int, bool) {
	s, ok := queryParam(w, r, "limit")
	if !ok {
		return 0, false
	}
	if s == "" {
		return listDefault, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > listMax {
		writeError(w, http.StatusBadRequest, "limit must be a number from 1 to %d, not %q", listMax, text.Ellipsis(s, 40))
		return 0, false
	}
	return n, true
}

var outboxStates = []string{"", store.OutboxPending, store.OutboxDelivered, store.OutboxDead, store.OutboxDryRun, store.OutboxSilenced,
	store.OutboxSkipped}
