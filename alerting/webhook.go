package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/vigil-monitor/vigil/configs"
)

// Webhook actions.
const (
	ActionRollback = "rollback"
	ActionHalt     = "halt"
)

// defaultWebhookTimeout bounds one attempt when the config sets no timeout.
const defaultWebhookTimeout = 10 * time.Second

// Webhook POSTs signed JSON (the README's "Webhooks"). With an action (rollback, halt) it is a
// machine's trigger: it fires only on deploy_failed (rollback) or deploy_halted (halt),
// never on inconclusive or errored verdicts, whatever its events list says, and in dry run
// (the notifier's or the event's) it calls nothing.
type Webhook struct {
	base
	url     string
	shown   string // url without query or credentials, for errors and dry-run notes
	secret  []byte
	headers http.Header
	action  string
	client  *http.Client
}

func newWebhook(cfg *configs.Notifier, opts Options) (*Webhook, error) {
	w := &Webhook{base: newBase(cfg, opts, defaultWebhookTimeout), url: cfg.URL, action: cfg.Action,
		client: newHTTPClient(opts.Transport), headers: http.Header{}}
	p := "notifiers." + cfg.Name
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, permanentf(nil, cfg.Name, "new", "%s.url: want an http or https URL", p)
	}
	w.shown = configs.RedactURL(cfg.URL)
	if !cfg.Secret.IsSet() {
		return nil, permanentf(nil, cfg.Name, "new", "%s.secret: missing; receivers verify %s with it", p, HeaderSignature)
	}
	w.secret = []byte(cfg.Secret.Value())
	if !slices.Contains([]string{"", ActionRollback, ActionHalt}, cfg.Action) {
		return nil, permanentf(nil, cfg.Name, "new", "%s.action: unknown action %q (use rollback, halt, or leave it out)", p, cfg.Action)
	}
	for k, v := range cfg.Headers {
		ck := http.CanonicalHeaderKey(k)
		if configs.ReservedWebhookHeader(ck) {
			return nil, permanentf(nil, cfg.Name, "new", "%s.headers.%s: vigil sets this header itself", p, k)
		}
		w.headers.Set(ck, v)
	}
	return w, nil
}

// Wants: a rollback webhook takes only deploy_failed and a halt webhook only
// deploy_halted, whatever `events` says (never a deploy_cancelled or deploy_superseded); a
// plain webhook takes its `events`, or every event in configs.Events when the list is
// empty. A list with deploy_started brings deploy_cancelled and deploy_superseded along: a
// deploy tracker told of the start hears the end.
func (w *Webhook) Wants(event string) bool {
	switch w.action {
	case ActionRollback:
		return event == configs.EventDeployFailed
	case ActionHalt:
		return event == configs.EventDeployHalted
	}
	if len(w.events) > 0 {
		return w.listed(event) || (configs.ClosesStart(event) && w.listed(configs.EventDeployStarted))
	}
	return slices.Contains(configs.Events, event)
}

// Action is the webhook's action: rollback, halt or "".
func (w *Webhook) Action() string { return w.action }

// Deliver POSTs the event once. 2xx is delivered; 5xx, 408, 409, 429 and no answer are
// worth a retry (429 with RetryAfter); other 4xx and 3xx (redirects are not followed) are
// Permanent. Every attempt of an event sends the same body (sent_at is when the event was
// queued: sentAtOf), also after a restart, with a fresh X-Vigil-Timestamp and signature: a receiver that
// keys its work by Idempotency-Key and compares the body with the key's first request's
// takes a retry for the same request. The error's MayHaveArrived says whether this attempt
// or an earlier one was sent whole without an answer that refused it. In dry run it sends
// nothing and returns a *DryRunError (errors.Is(err, ErrDryRun)).
func (w *Webhook) Deliver(ctx context.Context, ev *Event, st State) error {
	if err := checkEvent(w.name, ev); err != nil {
		return err
	}
	if w.action != "" && !w.Wants(ev.Name) {
		// The invariant that matters most: an inconclusive or errored verdict never rolls back.
		return permanentf(nil, w.name, "deliver", "a %s webhook fires only on %s, not on %s; nothing sent",
			w.action, w.firesOn(), ev.Name)
	}
	if st == nil {
		st = State{}
	}
	key := keyOf(ev)
	now := w.opts.Now()
	sentAt := sentAtOf(ev, st, key, now)
	body, err := w.payload(ev, sentAt)
	if err != nil {
		return permanentf(err, w.name, "deliver", "encoding the payload")
	}
	if w.dryRun || (w.action != "" && ev.DryRun) {
		what := ev.Name + " for " + describeSubject(ev)
		return w.dryRunError(ev, nil, http.MethodPost, w.shown, w.action, what)
	}

	ctx, cancel := w.attempt(ctx)
	defer cancel()
	op := "POST " + w.shown
	var sent atomic.Bool // the request went out whole: the receiver may act on it
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			sent.Store(true)
		}
	}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return permanentf(nil, w.name, op, "building the request failed")
	}
	for k, v := range w.headers {
		req.Header[k] = slices.Clone(v)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", w.opts.UserAgent)
	req.Header.Set(HeaderEvent, ev.Name)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.secret, ts, body))
	req.Header.Set(HeaderIdempotencyKey, key)
	if ev.OccurredAt.IsZero() {
		st[key+whSentAt] = strconv.FormatInt(sentAt.Unix(), 10)
	}

	resp, err := w.client.Do(req)
	if err != nil {
		e := transportError(ctx, w.name, op, err, w.timeout)
		if sent.Load() {
			st[key+whUnanswered] = "1"
		} else {
			e.msg += " (the request was not sent)"
		}
		e.MayHaveArrived = st[key+whUnanswered] != ""
		return e
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// The status is the receiver's word: its body is not read, so a receiver that
		// stalls after answering cannot hold the attempt.
		delete(st, key+whSentAt)
		delete(st, key+whUnanswered)
		return nil
	}
	answer, readErr := io.ReadAll(io.LimitReader(resp.Body, headSize))
	e := statusError(w.name, op, resp.StatusCode, resp.Header, answer, now)
	if readErr != nil {
		e.msg += " (answer cut short)"
	}
	if resp.StatusCode == http.StatusConflict {
		// What a receiver keyed by Idempotency-Key answers while it still works on an
		// earlier attempt of the key (one whose answer came after our timeout): the request
		// is in, its answer comes with a later attempt.
		e.Permanent = false
		e.msg += " (the receiver is still working on an earlier attempt with this Idempotency-Key; asking again later)"
		st[key+whUnanswered] = "1"
	}
	e.MayHaveArrived = st[key+whUnanswered] != ""
	return e
}

// sentAtOf is the body's sent_at, the same in every attempt of the event: when the event
// was queued (its OccurredAt, which the outbox stores with the entry), to the second. It does
// not depend on a State saved after an attempt: an agent killed while its first POST was in
// flight (OOM, a node drain) saves none, and its retry after the restart, or another agent's
// after the lease, must still be the same request to a receiver that compares bodies under
// one Idempotency-Key. A sent_at kept in st (an attempt by an earlier vigil, or an event
// without a time, from a caller other than the agent) is the first attempt's and wins.
func sentAtOf(ev *Event, st State, key string, now time.Time) time.Time {
	if first, err := strconv.ParseInt(st[key+whSentAt], 10, 64); err == nil {
		return time.Unix(first, 0)
	}
	if !ev.OccurredAt.IsZero() {
		return ev.OccurredAt.Truncate(time.Second)
	}
	return now
}

// Webhook State keys, after the event's idempotency key: the unix second of the event's
// first attempt (its sent_at; kept only for an event without OccurredAt), and that an
// attempt of it was sent and not answered.
const (
	whSentAt     = "/sent_at"
	whUnanswered = "/unanswered"
)

func (w *Webhook) firesOn() string {
	if w.action == ActionHalt {
		return configs.EventDeployHalted
	}
	return configs.EventDeployFailed
}

// webhookPayload is the body the README's "Webhooks" documents; the fields after sent_at are additions, which
// receivers may ignore.
type webhookPayload struct {
	Event        string         `json:"event"`
	Deploy       *webhookDeploy `json:"deploy"`
	FailedChecks []webhookCheck `json:"failed_checks"`
	Location     string         `json:"location"`
	SentAt       string         `json:"sent_at"`

	Action     string `json:"action,omitempty"`
	Halt       string `json:"halt,omitempty"`
	Summary    string `json:"summary,omitempty"`
	Service    string `json:"service,omitempty"`
	Check      string `json:"check,omitempty"`
	Incident   string `json:"incident,omitempty"`
	StatusURL  string `json:"status_url,omitempty"`
	OccurredAt string `json:"occurred_at,omitempty"`
	Reminder   int    `json:"reminder,omitempty"`
	Closed     string `json:"closed,omitempty"`

	DetectedAfter float64     `json:"detected_after_seconds,omitempty"`
	ReadyAfter    float64     `json:"ready_after_seconds,omitempty"`
	ReadyBefore   []float64   `json:"ready_after_seconds_before,omitempty"`
	ChecksPassed  int         `json:"checks_passed,omitempty"`
	ChecksTotal   int         `json:"checks_total,omitempty"`
	Owners        []string    `json:"owners,omitempty"`
	RunbookURL    string      `json:"runbook_url,omitempty"`
	LastDeploy    *LastDeploy `json:"last_deploy,omitempty"`
	// SupersededBy is, on a deploy_superseded, the newer deploy that superseded Deploy.
	SupersededBy *webhookDeploy `json:"superseded_by,omitempty"`
}

type webhookDeploy struct {
	ID          string `json:"id"`
	Service     string `json:"service"`
	Version     string `json:"version"`
	Environment string `json:"environment"`
	Commit      string `json:"commit,omitempty"`
	// PreviousVersion is what a rollback goes back to: what a rollback receiver deploys.
	PreviousVersion string `json:"previous_version,omitempty"`
	RollbackOf      string `json:"rollback_of,omitempty"`
	Links           []Link `json:"links,omitempty"`
}

func newWebhookDeploy(d *Deploy) *webhookDeploy {
	return &webhookDeploy{ID: d.ID, Service: d.Service, Version: d.Version, Environment: d.Environment, Commit: d.Commit,
		PreviousVersion: d.PreviousVersion, RollbackOf: d.RollbackOf, Links: d.Links}
}

type webhookCheck struct {
	Name       string   `json:"name"`
	Summary    string   `json:"summary"`
	RunURL     string   `json:"run_url"`
	Kind       string   `json:"kind,omitempty"`
	Outcome    string   `json:"outcome,omitempty"`
	TraceID    string   `json:"trace_id,omitempty"`
	TraceURL   string   `json:"trace_url,omitempty"`
	Baseline   string   `json:"baseline,omitempty"`
	Owners     []string `json:"owners,omitempty"`
	RunbookURL string   `json:"runbook_url,omitempty"`
}

func (w *Webhook) payload(ev *Event, now time.Time) ([]byte, error) {
	p := webhookPayload{
		Event:        ev.Name,
		FailedChecks: []webhookCheck{},
		Location:     ev.Location,
		SentAt:       now.UTC().Format(time.RFC3339),
		Action:       w.action,
		Halt:         ev.Halt,
		Summary:      ev.Summary,
		Service:      ev.Service,
		Check:        ev.Check,
		Incident:     ev.Incident,
		StatusURL:    ev.StatusURL,
		Reminder:     ev.Reminder,
		Closed:       ev.Closed,

		DetectedAfter: ev.DetectedAfter,
		ReadyAfter:    ev.ReadyAfter,
		ReadyBefore:   ev.ReadyBefore,
		ChecksPassed:  ev.ChecksPassed,
		ChecksTotal:   ev.ChecksTotal,
		Owners:        ev.Owners,
		RunbookURL:    ev.RunbookURL,
		LastDeploy:    ev.LastDeploy,
	}
	if !ev.OccurredAt.IsZero() {
		p.OccurredAt = ev.OccurredAt.UTC().Format(time.RFC3339Nano)
	}
	if d := ev.Deploy; d != nil {
		p.Deploy = newWebhookDeploy(d)
		if p.Service == "" {
			p.Service = d.Service
		}
	}
	if d := ev.SupersededBy; d != nil {
		p.SupersededBy = newWebhookDeploy(d)
	}
	for _, fc := range ev.FailedChecks {
		p.FailedChecks = append(p.FailedChecks, webhookCheck{Name: fc.Name, Summary: fc.Summary, RunURL: fc.RunURL,
			Kind: fc.Kind, Outcome: fc.Outcome, TraceID: fc.TraceID, TraceURL: fc.TraceURL,
			Baseline: fc.Baseline, Owners: fc.Owners, RunbookURL: fc.RunbookURL})
	}
	return json.Marshal(p)
}

// describeSubject names what an event is about, for one-line notes.
func describeSubject(ev *Event) string {
	switch {
	case ev.Deploy != nil:
		s := ev.Deploy.Service + " " + ev.Deploy.Version
		if ev.Deploy.Environment != "" {
			s += " (" + ev.Deploy.Environment + ")"
		}
		if ev.Deploy.ID != "" {
			s += " deploy " + ev.Deploy.ID
		}
		return s
	case ev.Check != "":
		return "check " + ev.Check
	case ev.Service != "":
		return "service " + ev.Service
	}
	return "incident " + ev.Incident
}
