package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/vigil-monitor/vigil/internal/text"
	"github.com/vigil-monitor/vigil/store"
)

// Flagger (a progressive delivery operator) calls webhooks during a canary analysis and
// reads only the status code: 200-202 lets the canary advance, anything else halts it and
// counts a failed check. POST /api/v1/flagger is such a webhook. The first call for a
// canary checksum registers a deploy of the service and starts verifying it; every call
// answers with that deploy's verdict: 200 once it passed, 425 while it is verifying, 409
// when it failed, was inconclusive or was superseded. ?wait=D holds the call until the
// verdict or D (keep D under the webhook's timeout), so a short verification passes on the
// first call instead of costing Flagger a failed check. A canary of another namespace
// than the one the service verifies is refused (namespaceConflict); the post-rollout call
// after the analysis cancels the deploy of a canary Flagger did not promote
// (flagger_post.go).
//
// Flagger sends no headers of its own; the API token travels as the URL's user info
// (http://vigil:TOKEN@host/...), which Go's HTTP client, and so Flagger, sends as basic
// auth: the same check as every /api call.

// flaggerPayload is what Flagger POSTs (pkg/apis/flagger/v1beta1 CanaryWebhookPayload):
// name, namespace, phase, checksum and the webhook's own metadata. Unknown fields are
// ignored, unlike the rest of the API, so that a field a later Flagger adds breaks nothing.
type flaggerPayload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum"`
	Metadata  map[string]string `json:"metadata"`
}

// flaggerGates are the webhook types whose 2xx means "go on". A post-rollout hook tells
// how the analysis ended (flagger_post.go). Others are refused: confirm-rollout runs before
// the canary is up (vigil would verify the old version), rollback reads a 2xx as "roll
// back now", event is a notification of every step. Flagger's payload does not say which
// hook called, so the type is the webhook's metadata.type; an event hook is known by the
// eventType Flagger puts in its metadata, and a post-rollout hook by its phase, which only
// it carries past the analysis (Succeeded, Failed).
var flaggerGates = []string{"pre-rollout", "rollout", "confirm-traffic-increase", "confirm-promotion"}

// flaggerDone are canary phases after the analysis: nothing is left to verify.
var flaggerDone = []string{"Succeeded", "Failed", "Terminating", "Terminated"}

// flaggerAnswer is the body of every answer; Flagger shows it in the canary's events.
type flaggerAnswer struct {
	Error   string `json:"error,omitempty"`
	Status  int    `json:"status"`
	Verdict string `json:"verdict"`
	Deploy  string `json:"deploy,omitempty"`
	Service string `json:"service"`
	Version string `json:"version,omitempty"`
	Reason  string `json:"reason,omitempty"`
	URL     string `json:"url,omitempty"`
}

// flaggerHook serves the webhook. Its lock makes "find the canary's deploy, else register
// it" one step: Flagger retries a call that timed out while the first is still waiting.
type flaggerHook struct {
	a  *Agent
	mu sync.Mutex
}

func newFlaggerHook(a *Agent) *flaggerHook { return &flaggerHook{a: a} }

func (h *flaggerHook) serve(w http.ResponseWriter, r *http.Request) {
	p, ok := decodeFlagger(w, r)
	if !ok {
		return
	}
	var wait time.Duration
	if s := r.URL.Query().Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > maxWait {
			writeError(w, http.StatusBadRequest, "wait must be a duration from 0s to %s, like 50s (under the webhook's timeout), not %q", maxWait, text.Ellipsis(s, 40))
			return
		}
		wait = d
	}
	service := p.Metadata["service"]
	if service == "" {
		service = p.Name
	}
	typ := p.Metadata["type"]
	if _, ok := p.Metadata["eventType"]; ok && typ == "" {
		typ = "event"
	}
	switch {
	case p.Name == "" || p.Checksum == "":
		writeError(w, http.StatusBadRequest, "not a Flagger webhook payload: name and checksum are required (Flagger sends both)")
		return
	case len(p.Checksum) > 200 || strings.ContainsFunc(p.Checksum, unicode.IsControl):
		writeError(w, http.StatusBadRequest, "not a Flagger webhook payload: its checksum is at most 200 characters of one line (Flagger's is a hash)")
		return
	case typ == "post-rollout" || typ == "" && slices.Contains(flaggerDone, p.Phase):
		h.postRollout(w, r, service, p, wait)
		return
	case typ != "" && !slices.Contains(flaggerGates, typ):
		writeError(w, http.StatusBadRequest, "a %s webhook cannot gate on vigil: use type %s (and say it in the webhook's metadata.type)", text.Ellipsis(typ, 40), strings.Join(flaggerGates, ", "))
		return
	case slices.Contains(flaggerDone, p.Phase):
		writeError(w, http.StatusBadRequest, "canary %s.%s is %s: its analysis is over and there is nothing to verify", text.Ellipsis(p.Name, 80), text.Ellipsis(p.Namespace, 80), p.Phase)
		return
	}

	d, created, err := h.deploy(r.Context(), service, p)
	// Flagger calls again after its interval whatever the status; a 503 with Retry-After
	// says the same to anything else in front (a proxy, a person).
	if h.a.answerFailed(w, err, " (the service is metadata.service, else the canary's name)", unavailable{
		"registering the deploy failed (%v): Flagger calls again, and the canary's checksum finds the deploy once it is registered",
		"flagger webhook: registering the deploy failed; Flagger calls again", []any{"service", service, "checksum", p.Checksum}}) {
		return
	}
	if created {
		h.a.log.Info("flagger webhook: deploy registered for the canary", "deploy", d.ID, "service", service,
			"canary", p.Name+"."+p.Namespace, "checksum", p.Checksum, "type", typ)
	}
	h.answer(w, r, d, wait)
}

// answer answers with d's verdict, after holding the call until it or wait.
func (h *flaggerHook) answer(w http.ResponseWriter, r *http.Request, d *store.Deploy, wait time.Duration) {
	if d.Status == store.StatusVerifying && wait > 0 {
		var err error
		if d, err = h.a.WaitDeploy(r.Context(), d.ID, wait); err != nil {
			writeError(w, http.StatusInternalServerError, "reading the deploy failed: %v", err)
			return
		}
	}
	ans := h.verdict(d)
	switch d.Status {
	case store.StatusPassed:
		ans.Status = http.StatusOK
	case store.StatusVerifying:
		ans.Status = http.StatusTooEarly
		ans.Error = fmt.Sprintf("vigil is verifying %s %s; call again for the verdict", d.Service, d.Version)
	default:
		ans.Status = http.StatusConflict
		ans.Error = fmt.Sprintf("vigil's verdict on %s %s is %s", d.Service, d.Version, d.Status)
		if d.Reason != "" {
			ans.Error += ": " + d.Reason
		}
	}
	writeJSON(w, ans.Status, ans)
}

// verdict is the answer's account of d, without its status.
func (h *flaggerHook) verdict(d *store.Deploy) flaggerAnswer {
	return flaggerAnswer{Verdict: d.Status, Deploy: d.ID, Service: d.Service, Version: d.Version, Reason: d.Reason,
		URL: h.a.baseURL() + "/deploys/" + d.ID}
}

// deploy returns the deploy verifying this canary checksum, registering it when the
// service's newest deploy is not of it. A checksum deployed again after another one (A, B,
// A) is a new deploy: only the newest deploy can be the canary's. The deploy's version is
// the webhook's metadata.version when the Canary says it, else the checksum.
//
// The deploy is registered under a key made of the checksum and the deploy it follows, so
// that two calls for one canary that miss each other (a retry, or two agents sharing the
// store behind one Kubernetes Service) register it once, and A after B after A is a key
// of its own. The checksum tells canaries of one version apart (a changed ConfigMap or
// resource, the same image): each is verified.
func (h *flaggerHook) deploy(ctx context.Context, service string, p flaggerPayload) (*store.Deploy, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	version := p.Checksum
	if v := p.Metadata["version"]; v != "" {
		version = v
	}
	after := ""
	if h.a.Runtime().Config.Services[service] != nil {
		newest, err := h.a.store.ServiceDeploys(ctx, service, 1)
		if err != nil {
			return nil, false, fmt.Errorf("reading the deploys of %s: %w", service, err)
		}
		if len(newest) == 1 {
			n := newest[0]
			// A deploy registered by a vigil before keys were used has none.
			checksum, keyed := flaggerChecksum(n.RequestKey)
			if n.Version == version && n.Environment == p.Namespace && (checksum == p.Checksum || !keyed && n.Version == p.Checksum) {
				return n, false, nil
			}
			after = n.ID
		}
	}
	now := h.a.clock.Now()
	// A canary of another namespace than the one the service verifies is refused by the
	// store, under the lock that supersedes: two agents sharing it that take the first
	// calls of two namespaces at once register one of them.
	list, err := h.a.StartDeploys(ctx, DeployRequest{Service: service, Version: version, Environment: p.Namespace,
		Key: flaggerKeys + after + ":" + p.Checksum, Source: flaggerKeys})
	var conflict *store.SourceConflictError
	if errors.As(err, &conflict) {
		return nil, false, namespaceConflict(service, conflict.Verifying, p.Namespace)
	}
	if err != nil {
		return nil, false, err
	}
	return list[0], !list[0].CreatedAt.Before(now), nil
}

// namespaceConflict refuses a canary of namespace ns while the service verifies a canary of
// another namespace (inflight). Registering it would supersede that verification, and the
// service's checks test one set of URLs: one canary would be judged on the other's
// answers. A canary of the same namespace supersedes as a pipeline's deploy does (the
// newer revision replaced the older), and one namespace after the other is no conflict: a
// check can read the deploy's namespace ({{ .Deploy.Environment }} in a query, the
// environment variable in an assertion).
func namespaceConflict(service string, inflight *store.Deploy, ns string) error {
	other, ns, svc := text.Ellipsis(inflight.Environment, 80), text.Ellipsis(ns, 80), text.Ellipsis(service, 80)
	return &requestError{http.StatusConflict, fmt.Sprintf("vigil's service %s is verifying a canary of namespace %s (deploy %s, version %s); "+
		"a canary of namespace %s would supersede it, and %s's checks, one set of URLs, would judge each canary on the other's answers. "+
		"Nothing was registered: give this canary a service of its own, metadata: {service: %s-%s} in its webhooks, "+
		"with checks that call its canary; or wait until %s's verification ends",
		svc, other, inflight.ID, text.Ellipsis(inflight.Version, 80), ns, svc, svc, ns, other)}
}

// flaggerKeys begins the key of every deploy the webhook registers: the deploys' source.
const flaggerKeys = "flagger:"

// flaggerChecksum is the canary checksum a deploy's registration key holds
// ("flagger:AFTER:CHECKSUM", AFTER the id of the deploy it followed, "" for the
// service's first; deploy ids hold no colon), and whether it is such a key.
func flaggerChecksum(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, flaggerKeys)
	if !ok {
		return "", false
	}
	_, checksum, ok := strings.Cut(rest, ":")
	return checksum, ok
}

// decodeFlagger reads the payload: JSON, at most 1 MiB, unknown fields allowed.
func decodeFlagger(w http.ResponseWriter, r *http.Request) (flaggerPayload, bool) {
	var p flaggerPayload
	body, ok := readJSONBody(w, r)
	if !ok {
		return p, false
	}
	if err := json.Unmarshal(body, &p); err != nil {
		writeError(w, http.StatusBadRequest, "not a Flagger webhook payload: %v", err)
		return p, false
	}
	return p, true
}
