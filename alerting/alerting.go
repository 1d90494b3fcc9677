// Package alerting delivers vigil's events to people and machines: Slack (a Block Kit
// message with the evidence, the failure screenshot in its thread, the same thread updated
// as the incident moves on), PagerDuty (Events v2 trigger and resolve with a stable
// dedup_key, a change event per deploy) and signed webhooks (the README's "Webhooks": rollback, halt,
// or any event). The channels a team may live in instead share one shape (post.go): Opsgenie
// (alerts by alias), Microsoft Teams (Adaptive Cards), Discord (embeds), email (SMTP) and
// Alertmanager (its v2 API, so the team's routing and silences apply).
//
// A Notifier makes ONE attempt to deliver ONE event. Everything around that attempt —
// routing, thresholds, silences, the durable outbox, backoff and dead-lettering — belongs
// to the caller, which learns from the returned error whether to retry (Permanent,
// RetryAfter) and persists the notifier's State between attempts so a retry after a
// partial success never posts twice. The package imports only configs; alerting/loopback
// holds the loopback receivers the demo and the tests deliver to.
package alerting

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/configs"
)

// EventActionResult reports what a rollback or halt webhook did (or would have done, in
// dry run): Summary says what happened, Actions names the webhook. Slack replies with it in
// the incident's thread and shows it on the root message. It is not a configs.Events name:
// it follows the incident, whatever a notifier's `events` list says.
const EventActionResult = "action_result"

// Event is one thing that happened, as the agent writes it into the outbox. Field names
// are stable: the outbox stores events as JSON and replays them after a restart.
type Event struct {
	// Name is a configs.Event* name or EventActionResult.
	Name string `json:"name"`
	// Key is the idempotency key, stable across retries and restarts: "<deploy id>:<event>"
	// for deploy events. Webhooks send it as Idempotency-Key.
	Key string `json:"key"`
	// Incident groups the events of one incident: the deploy id, or "check:<name>:<seq>".
	// The Slack thread and the PagerDuty dedup_key derive from it, so a recovery resolves
	// what the failure opened. To resolve a failed deploy when a later deploy of the same
	// service passes, send that deploy_passed with the failed deploy's Incident.
	Incident   string    `json:"incident"`
	OccurredAt time.Time `json:"occurred_at"`
	// Deploy is the deploy the event is about; nil for check events.
	Deploy *Deploy `json:"deploy,omitempty"`
	// SupersededBy is, on a deploy_superseded, the newer deploy of the service registered
	// while Deploy was verifying.
	SupersededBy *Deploy `json:"superseded_by,omitempty"`
	Service      string  `json:"service,omitempty"`
	// Check names the check of check_* events.
	Check string `json:"check,omitempty"`
	// Summary is one line: why (the verdict's reason), or what an action did.
	Summary      string        `json:"summary,omitempty"`
	FailedChecks []FailedCheck `json:"failed_checks,omitempty"`
	Location     string        `json:"location,omitempty"`
	// StatusURL links to the agent's status page for this deploy or check.
	StatusURL string `json:"status_url,omitempty"`
	// Halt is non-empty, with the reason, when the failure should stop a rollout.
	Halt string `json:"halt,omitempty"`
	// Actions are the rollback and halt webhooks this verdict triggers.
	Actions []ActionNote `json:"actions,omitempty"`
	// DryRun: the service is in dry run, so webhooks with an action announce, never call.
	DryRun bool `json:"dry_run,omitempty"`
	// Reminder numbers a check_failed re-sent for an incident still open (repeat_interval);
	// 0 for the event that opened it.
	Reminder int `json:"reminder,omitempty"`
	// Closed says why a check_recovered closes an incident without the check passing: the
	// check left the config (removed or renamed).
	Closed string `json:"closed,omitempty"`
	// DetectedAfter is how long after the deploy was registered the verdict came, in
	// seconds; 0 for events that are not a deploy verdict.
	DetectedAfter float64 `json:"detected_after_seconds,omitempty"`
	// ReadyAfter is how long after the deploy was registered every check had passed once
	// (the new version's startup, verify.ready_within's measure), in seconds; 0 when one
	// never passed or the event is not a deploy verdict.
	ReadyAfter float64 `json:"ready_after_seconds,omitempty"`
	// ReadyBefore are the same figure for the service's last deploys that passed before
	// this one, newest first (at most five): a startup far slower than usual shows.
	ReadyBefore []float64 `json:"ready_after_seconds_before,omitempty"`
	// ChecksPassed of ChecksTotal checks passed the deploy's verification.
	ChecksPassed int `json:"checks_passed,omitempty"`
	ChecksTotal  int `json:"checks_total,omitempty"`
	// Owners (Slack member or group IDs, @here, @channel) and RunbookURL are the service's
	// or the check's: who the failure is for and what to read first.
	Owners     []string `json:"owners,omitempty"`
	RunbookURL string   `json:"runbook_url,omitempty"`
	// LastDeploy is, on the check_failed that opens an incident, the newest deploy of the
	// check's services then: the first question is whether it broke production.
	LastDeploy *LastDeploy `json:"last_deploy,omitempty"`
	// Interrupted is set by the outbox, never stored: an earlier attempt at this event was
	// cut off without a result (the agent was killed or stopped mid-send, or lost its
	// lease), so the receiver may have it. Slack looks for the message before posting it.
	Interrupted bool `json:"-"`
}

// LastDeploy is a check's service's newest deploy when the check's incident opened.
type LastDeploy struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	Version string `json:"version"`
	// Status is its verdict, or verifying.
	Status       string    `json:"status"`
	RegisteredAt time.Time `json:"registered_at"`
	// Before is how long before the incident opened it was registered, in seconds.
	Before float64 `json:"before_seconds"`
}

// String is the deploy as a message shows it: "web v2.1.0, 4m12s before (passed
// verification)".
func (l *LastDeploy) String() string {
	ago := (time.Duration(l.Before * float64(time.Second))).Round(time.Second)
	verdict := l.Status + " verification"
	if l.Status == "verifying" || l.Status == "superseded" {
		verdict = l.Status
	}
	return fmt.Sprintf("%s %s, %s before (%s)", l.Service, l.Version, ago, verdict)
}

// Deploy identifies a deploy.
type Deploy struct {
	ID          string `json:"id"`
	Service     string `json:"service"`
	Version     string `json:"version"`
	Environment string `json:"environment,omitempty"`
	Commit      string `json:"commit,omitempty"`
	// PreviousVersion is the service's newest version that passed before this deploy: what
	// a rollback goes back to; "" when none did.
	PreviousVersion string `json:"previous_version,omitempty"`
	// Links are what the pipeline passed with the deploy (vigil gate --link): the CI run,
	// the diff.
	Links []Link `json:"links,omitempty"`
	// RollbackOf is the failed deploy this one rolled back; "" when it is not a rollback.
	RollbackOf string `json:"rollback_of,omitempty"`
}

// String names the deploy as messages do: "web v2.2.0 (deploy d-43)".
func (d *Deploy) String() string {
	return strings.TrimSpace(d.Service+" "+d.Version) + " (deploy " + d.ID + ")"
}

// Link is a named URL passed with a deploy.
type Link struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// FailedCheck is the evidence of one failing check.
type FailedCheck struct {
	Name    string `json:"name"`
	Kind    string `json:"kind,omitempty"`
	Outcome string `json:"outcome,omitempty"`
	// Summary is the first reason; for a browser check, the first JS exception with file:line.
	Summary string `json:"summary,omitempty"`
	RunURL  string `json:"run_url,omitempty"`
	TraceID string `json:"trace_id,omitempty"`
	// TraceURL opens the trace where traces are viewed (tracing.trace_url); "" without it.
	TraceURL string `json:"trace_url,omitempty"`
	// Baseline compares the run with the passing runs before the deploy, e.g. "p95 412 ms
	// (180 ms before the deploy)": the run's value, then the baseline's; "" without a baseline.
	Baseline string `json:"baseline,omitempty"`
	// Owners and RunbookURL are the check's own, when they differ from the event's.
	Owners     []string `json:"owners,omitempty"`
	RunbookURL string   `json:"runbook_url,omitempty"`
	// Screenshot is a PNG taken at the failure; nil when there is none.
	Screenshot []byte `json:"screenshot,omitempty"`
}

// ActionNote is a rollback or halt webhook a verdict triggers.
type ActionNote struct {
	Notifier string `json:"notifier"`
	Action   string `json:"action"`
	DryRun   bool   `json:"dry_run,omitempty"`
	// Withheld says why the webhook is not called for this verdict (a rollback that failed
	// too is not rolled back); "" when it is.
	Withheld string `json:"withheld,omitempty"`
}

// Notifier delivers events to one configured destination.
type Notifier interface {
	Name() string
	Type() string
	// Wants reports whether the notifier takes the event: its `events` filter, or a
	// default per type when the list is empty (see the README, "Which notifier gets what").
	Wants(event string) bool
	// Deliver makes ONE attempt, bounded by ctx and the notifier's per-attempt timeout.
	// st is the notifier's state for ev.Incident: load it before, save it after, even when
	// Deliver fails. A nil error means delivered (by this attempt, or by an earlier one st
	// remembers); a Deliver that sends nothing returns ErrSkipped, never nil. Otherwise see
	// Permanent, RetryAfter and ErrDryRun.
	Deliver(ctx context.Context, ev *Event, st State) error
}

// State is what a notifier remembers about one incident between attempts and restarts:
// the Slack thread, which steps of which event already succeeded, whether PagerDuty was
// triggered. The caller stores it per (notifier, incident) — saving it after every
// Deliver, failed or not — and delivers one incident's events to one notifier one at a
// time, in order: two concurrent Delivers for a new incident would open two threads.
// Keys and values are plain strings (JSON-friendly); a Slack state holds a few KiB.
type State map[string]string

// Options are what every notifier shares, built in main.
type Options struct {
	// Transport sends the requests; nil builds a private one. Redirects are never followed:
	// a signed POST that turned into a GET must not count as delivered.
	Transport http.RoundTripper
	// Now is the clock (sent_at, X-Vigil-Timestamp); nil is time.Now.
	Now func() time.Time
	// Logger receives what a notifier notices but does not fail on; nil discards.
	Logger *slog.Logger
	// UserAgent is sent with every request; "" is "vigil".
	UserAgent string
}

// New builds the notifier cfg describes. Its errors are configuration errors (Permanent).
func New(cfg *configs.Notifier, opts Options) (Notifier, error) {
	if cfg == nil {
		return nil, permanentf(nil, "", "new", "no notifier configuration")
	}
	opts = opts.withDefaults()
	for i, ev := range cfg.Events {
		if !slices.Contains(configs.Events, ev) {
			return nil, permanentf(nil, cfg.Name, "new", "notifiers.%s.events[%d]: unknown event %q", cfg.Name, i, ev)
		}
	}
	switch cfg.Type {
	case configs.NotifierSlack:
		return newSlack(cfg, opts)
	case configs.NotifierPagerDuty:
		return newPagerDuty(cfg, opts)
	case configs.NotifierWebhook:
		return newWebhook(cfg, opts)
	case configs.NotifierOpsgenie:
		return newOpsgenie(cfg, opts)
	case configs.NotifierTeams:
		return newTeams(cfg, opts)
	case configs.NotifierDiscord:
		return newDiscord(cfg, opts)
	case configs.NotifierEmail:
		return newEmail(cfg, opts)
	case configs.NotifierAlertmanager:
		return newAlertmanager(cfg, opts)
	}
	return nil, permanentf(nil, cfg.Name, "new", "notifiers.%s.type: unknown notifier type %q", cfg.Name, cfg.Type)
}

func (o Options) withDefaults() Options {
	if o.Transport == nil {
		o.Transport = defaultTransport()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.UserAgent == "" {
		o.UserAgent = "vigil"
	}
	return o
}

// base holds what every notifier type has.
type base struct {
	name, typ string
	events    []string // as configured; empty means the type's default
	dryRun    bool
	timeout   time.Duration
	opts      Options
	log       *slog.Logger
}

func newBase(cfg *configs.Notifier, opts Options, defaultTimeout time.Duration) base {
	t := cfg.Timeout
	if t <= 0 {
		t = defaultTimeout
	}
	return base{
		name: cfg.Name, typ: cfg.Type, events: slices.Clone(cfg.Events), dryRun: cfg.DryRun, timeout: t,
		opts: opts, log: opts.Logger.With("notifier", cfg.Name, "type", cfg.Type),
	}
}

func (b *base) Name() string { return b.name }
func (b *base) Type() string { return b.typ }

// DryRun reports whether the notifier announces instead of sending.
func (b *base) DryRun() bool { return b.dryRun }

// listed reports whether the configured events list names the event.
func (b *base) listed(event string) bool { return slices.Contains(b.events, event) }

// attempt bounds one attempt by the notifier's per-attempt timeout.
func (b *base) attempt(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.timeout)
}

// dryRunError is what Deliver returns instead of sending ev when the notifier is in dry
// run. An incident's failure announced so is noted in st (stDryRun): its follow-ups are
// announced too (unopened), as they would be sent after the failure that would have been.
func (b *base) dryRunError(ev *Event, st State, method, target, action, what string) error {
	if st != nil && slices.Contains(incidentOpeners, ev.Name) {
		st[stDryRun] = "1"
	}
	return &DryRunError{Notifier: b.name, Method: method, URL: target, Action: action, What: what}
}

// stDryRun notes that a notifier in dry run announced a failure of the incident.
const stDryRun = "dry_run_opened"

// keyOf is the event's idempotency key; the outbox always sets Key, the rest is a fallback
// that keeps the "<deploy id>:<event>" shape.
func keyOf(ev *Event) string {
	switch {
	case ev.Key != "":
		return ev.Key
	case ev.Deploy != nil && ev.Deploy.ID != "":
		return ev.Deploy.ID + ":" + ev.Name
	default:
		return incidentOf(ev) + ":" + ev.Name
	}
}

// incidentOf is the event's incident, derived when the caller left it empty.
func incidentOf(ev *Event) string {
	switch {
	case ev.Incident != "":
		return ev.Incident
	case ev.Deploy != nil && ev.Deploy.ID != "":
		return ev.Deploy.ID
	default:
		return "check:" + ev.Service + ":" + ev.Check
	}
}

func checkEvent(name string, ev *Event) error {
	if ev == nil {
		return permanentf(nil, name, "deliver", "no event")
	}
	if ev.Name == "" {
		return permanentf(nil, name, "deliver", "event has no name")
	}
	if ev.Name != EventActionResult && !slices.Contains(configs.Events, ev.Name) {
		return permanentf(nil, name, "deliver", "unknown event %q", ev.Name)
	}
	return nil
}
