package alerting

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/PagerDuty/go-pagerduty"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/text"
)

// defaultPagerDutyTimeout bounds one attempt.
const defaultPagerDutyTimeout = 10 * time.Second

// maxPagerDutyAnswer caps how much of an Events API answer is read.
const maxPagerDutyAnswer = 1 << 20

// pagerDutyEvents is the Events v2 base URL; go-pagerduty appends /v2/enqueue and
// /v2/change/enqueue.
const pagerDutyEvents = "https://events.pagerduty.com"

// PagerDuty sends Events v2: a trigger per failure with a dedup_key derived from the
// incident (so the recovery resolves exactly what the failure opened), a resolve on
// check_recovered and on a deploy_passed that closes an incident this notifier triggered,
// and a change event on each deploy_started.
type PagerDuty struct {
	base
	routingKey string
	severity   string
	endpoint   string // base URL, without /v2/enqueue
	shown      string
	client     *http.Client
}

// PagerDuty State keys.
const (
	pdTriggered = "triggered" // the dedup_key this notifier triggered for the incident
	pdResolved  = "resolved"
)

func newPagerDuty(cfg *configs.Notifier, opts Options) (*PagerDuty, error) {
	p := "notifiers." + cfg.Name
	if !cfg.RoutingKey.IsSet() {
		return nil, permanentf(nil, cfg.Name, "new", "%s.routing_key: missing; set the Events v2 integration key", p)
	}
	sev := cfg.Severity
	if sev == "" {
		sev = "critical"
	}
	if !slices.Contains([]string{"critical", "error", "warning", "info"}, sev) {
		return nil, permanentf(nil, cfg.Name, "new", "%s.severity: %q is not a PagerDuty severity (critical, error, warning, info)", p, sev)
	}
	endpoint := pagerDutyEvents
	if cfg.URL != "" {
		base, ok := configs.PagerDutyEndpoint(cfg.URL)
		if !ok {
			return nil, permanentf(nil, cfg.Name, "new",
				"%s.url: want the full Events v2 enqueue URL, ending in /v2/enqueue (change events go to /v2/change/enqueue beside it)", p)
		}
		endpoint = base
	}
	return &PagerDuty{base: newBase(cfg, opts, defaultPagerDutyTimeout), routingKey: cfg.RoutingKey.Value(), severity: sev,
		endpoint: endpoint, shown: configs.RedactURL(endpoint), client: newHTTPClient(opts.Transport)}, nil
}

// pdTriggers are the events that trigger an alert.
var pdTriggers = []string{configs.EventDeployFailed, configs.EventDeployHalted, configs.EventDeployInconclusive,
	configs.EventCheckFailed}

// Wants: by default every event but action_result — the failures trigger, check_recovered
// and deploy_passed resolve, deploy_started sends a change event. With an `events` list,
// the listed events, plus check_recovered and deploy_passed whenever a trigger event is
// listed: an incident PagerDuty opened must be able to resolve.
func (p *PagerDuty) Wants(event string) bool {
	if configs.ClosesStart(event) {
		return false // nothing was paged for a deploy that only started
	}
	if len(p.events) == 0 {
		return slices.Contains(configs.Events, event)
	}
	if p.listed(event) {
		return true
	}
	if event == configs.EventCheckRecovered || event == configs.EventDeployPassed {
		return slices.ContainsFunc(p.events, func(e string) bool { return slices.Contains(pdTriggers, e) })
	}
	return false
}

// DedupKey is the dedup_key vigil sends for an incident: "vigil:" + the incident, hashed
// when it would pass PagerDuty's 255 characters.
func DedupKey(incident string) string {
	k := "vigil:" + incident
	if len(k) <= 255 {
		return k
	}
	sum := sha256.Sum256([]byte(incident))
	return "vigil:" + incident[:180] + ":" + hex.EncodeToString(sum[:16])
}

// Deliver sends the event's one Events v2 request: trigger, resolve or change.
func (p *PagerDuty) Deliver(ctx context.Context, ev *Event, st State) error {
	if err := checkEvent(p.name, ev); err != nil {
		return err
	}
	if st == nil {
		st = State{}
	}
	dedup := DedupKey(incidentOf(ev))
	var send func(ctx context.Context, c *pagerduty.Client) error
	var rec *recorder // the attempt's exchange, for accepted
	path := "/v2/enqueue"
	switch {
	case slices.Contains(pdTriggers, ev.Name):
		e := p.trigger(ev, dedup)
		send = func(ctx context.Context, c *pagerduty.Client) error {
			_, err := c.ManageEventWithContext(ctx, e)
			if accepted(rec, err) {
				st[pdTriggered], st[pdResolved] = dedup, ""
				return nil
			}
			return err
		}
	case ev.Name == configs.EventCheckRecovered || ev.Name == configs.EventDeployPassed:
		if ev.Name == configs.EventDeployPassed && st[pdTriggered] == "" {
			return p.unopened(ev, st, "no alert of this notifier's to resolve: none was triggered for its incident")
		}
		if st[pdResolved] != "" {
			return nil // resolved by an earlier attempt of this event, whose answer was not recorded
		}
		e := &pagerduty.V2Event{RoutingKey: p.routingKey, Action: "resolve", DedupKey: dedup, Client: "vigil", ClientURL: ev.StatusURL}
		send = func(ctx context.Context, c *pagerduty.Client) error {
			_, err := c.ManageEventWithContext(ctx, e)
			if accepted(rec, err) {
				st[pdResolved] = "1"
				return nil
			}
			return err
		}
	case ev.Name == configs.EventDeployStarted:
		path = "/v2/change/enqueue"
		e := p.change(ev)
		send = func(ctx context.Context, c *pagerduty.Client) error {
			_, err := c.CreateChangeEventWithContext(ctx, e)
			if accepted(rec, err) {
				return nil
			}
			return err
		}
	default:
		return p.skipped(ev, "PagerDuty takes no action results") // see Wants
	}
	op := "POST " + p.shown + path
	if p.dryRun {
		return p.dryRunError(ev, st, http.MethodPost, p.shown+path, "", ev.Name+" for "+describeSubject(ev))
	}

	ctx, cancel := p.attempt(ctx)
	defer cancel()
	rec = newRecorder(p.client, p.opts.UserAgent, maxPagerDutyAnswer)
	c := pagerduty.NewClient("", pagerduty.WithV2EventsAPIEndpoint(p.endpoint))
	c.HTTPClient = rec
	err := send(ctx, c)
	if err == nil {
		return nil
	}
	now := p.opts.Now()
	switch {
	case rec.status == 0:
		return transportError(ctx, p.name, op, rec.cause(err), p.timeout)
	case rec.status < 200 || rec.status > 299:
		e := statusError(p.name, op, rec.status, rec.header, rec.head, now)
		if e.StatusCode == http.StatusBadRequest {
			e.msg += " (PagerDuty rejected the event; check routing_key)"
		}
		return e
	case errors.Is(err, errTooLarge):
		return retryablef(nil, p.name, op, "answered %d with over %d KiB; is url an Events v2 endpoint?", rec.status, maxPagerDutyAnswer>>10)
	case ctx.Err() != nil:
		return transportError(ctx, p.name, op, rec.cause(err), p.timeout)
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syn) || errors.As(err, &typ) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return retryablef(nil, p.name, op, "answered %d with something that is not an Events API answer: %s; is url an Events v2 endpoint?",
			rec.status, orEmpty(quoteBody(rec.head)))
	}
	return retryablef(err, p.name, op, "")
}

// accepted says whether an Events API request went through: no error, a 2xx with an
// empty body (a proxy in front of PagerDuty that keeps the answer), or a 2xx whose answer
// the connection cut short. The event was taken; counting it as failed dead-lettered the
// trigger and so skipped its resolve, leaving the incident open for good. A 2xx with a
// whole body that is not the API's (an HTML page) is still an error: the url is likely
// not an Events v2 endpoint.
func accepted(rec *recorder, err error) bool {
	if err == nil {
		return true
	}
	if rec == nil || rec.status < 200 || rec.status > 299 {
		return false
	}
	var syn *json.SyntaxError // what decoding nothing says
	return rec.cut || (len(bytes.TrimSpace(rec.head)) == 0 &&
		(errors.As(err, &syn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)))
}

// pdSeverities are PagerDuty's severities, most severe first.
var pdSeverities = []string{"critical", "error", "warning", "info"}

// severityOf is the severity an event triggers with: the notifier's, except that an
// inconclusive verdict is at most a warning. vigil could not tell whether the deploy is
// bad; that reaches a person, but not as an outage.
func severityOf(ev *Event, configured string) string {
	if ev.Name == configs.EventDeployInconclusive && slices.Index(pdSeverities, configured) < slices.Index(pdSeverities, "warning") {
		return "warning"
	}
	return configured
}

func (p *PagerDuty) trigger(ev *Event, dedup string) *pagerduty.V2Event {
	summary := title(ev)
	if ev.Summary != "" {
		summary += ": " + ev.Summary
	} else if len(ev.FailedChecks) > 0 {
		summary += ": " + ev.FailedChecks[0].Name + ": " + ev.FailedChecks[0].Summary
	}
	details := map[string]any{"event": ev.Name, "incident": ev.Incident}
	if ev.Deploy != nil {
		details["deploy"] = ev.Deploy
	}
	if ev.Check != "" {
		details["check"] = ev.Check
	}
	if ev.LastDeploy != nil {
		details["last_deploy"] = ev.LastDeploy
	}
	if ev.Location != "" {
		details["location"] = ev.Location
	}
	if ev.Halt != "" {
		details["halt"] = ev.Halt
	}
	if len(ev.Actions) > 0 {
		details["actions"] = ev.Actions
	}
	if ev.DetectedAfter > 0 {
		details["detected_after_seconds"] = ev.DetectedAfter
	}
	if ev.ChecksTotal > 0 {
		details["checks_passed"] = fmt.Sprintf("%d of %d", ev.ChecksPassed, ev.ChecksTotal)
	}
	if len(ev.Owners) > 0 {
		details["owners"] = ev.Owners
	}
	var links []any
	if ev.StatusURL != "" {
		links = append(links, map[string]string{"href": ev.StatusURL, "text": "vigil status page"})
	}
	if ev.RunbookURL != "" {
		details["runbook_url"] = ev.RunbookURL
		links = append(links, map[string]string{"href": ev.RunbookURL, "text": "runbook"})
	}
	if ev.Deploy != nil {
		for _, l := range ev.Deploy.Links {
			if len(links) < 5 {
				links = append(links, map[string]string{"href": l.URL, "text": l.Name})
			}
		}
	}
	var checks []map[string]string
	for _, fc := range ev.FailedChecks {
		c := map[string]string{"name": fc.Name, "kind": fc.Kind, "outcome": fc.Outcome,
			"summary": text.Ellipsis(fc.Summary, 1000), "run_url": fc.RunURL, "trace_id": fc.TraceID, "trace_url": fc.TraceURL}
		if fc.Baseline != "" {
			c["baseline"] = fc.Baseline
		}
		if fc.RunbookURL != "" {
			c["runbook_url"] = fc.RunbookURL
		}
		checks = append(checks, c)
		if fc.TraceURL != "" && len(links) < 10 {
			links = append(links, map[string]string{"href": fc.TraceURL, "text": "trace of " + fc.Name})
		}
		if fc.RunURL != "" && len(links) < 10 {
			links = append(links, map[string]string{"href": fc.RunURL, "text": "run of " + fc.Name})
		}
	}
	if len(checks) > 0 {
		details["failed_checks"] = checks
	}
	source, group := ev.Service, ""
	if ev.Deploy != nil {
		source, group = ev.Deploy.Service, ev.Deploy.Environment
	}
	if source == "" {
		source = "vigil"
	}
	if ev.Location != "" {
		source += "@" + ev.Location
	}
	payload := &pagerduty.V2Payload{
		Summary:   text.Ellipsis(summary, 1024),
		Source:    source,
		Severity:  severityOf(ev, p.severity),
		Component: ev.Check,
		Group:     group,
		Class:     ev.Name,
		Details:   details,
	}
	if !ev.OccurredAt.IsZero() {
		payload.Timestamp = ev.OccurredAt.UTC().Format(time.RFC3339)
	}
	return &pagerduty.V2Event{RoutingKey: p.routingKey, Action: "trigger", DedupKey: dedup, Client: "vigil",
		ClientURL: ev.StatusURL, Links: links, Payload: payload}
}

func (p *PagerDuty) change(ev *Event) pagerduty.ChangeEvent {
	summary := title(ev)
	details := map[string]any{"event": ev.Name}
	source := ev.Service
	if d := ev.Deploy; d != nil {
		summary = "Deploy of " + strings.TrimSpace(d.Service+" "+d.Version)
		if d.Environment != "" {
			summary += " to " + d.Environment
		}
		details["deploy_id"], details["service"], details["version"] = d.ID, d.Service, d.Version
		if d.Environment != "" {
			details["environment"] = d.Environment
		}
		if d.Commit != "" {
			details["commit"] = d.Commit
		}
		source = d.Service
	}
	if source == "" {
		source = "vigil"
	}
	ce := pagerduty.ChangeEvent{RoutingKey: p.routingKey, Payload: pagerduty.ChangeEventPayload{
		Summary: text.Ellipsis(summary, 1024), Source: source, CustomDetails: details}}
	if !ev.OccurredAt.IsZero() {
		ce.Payload.Timestamp = ev.OccurredAt.UTC().Format(time.RFC3339)
	}
	if ev.StatusURL != "" {
		ce.Links = []pagerduty.ChangeEventLink{{Href: ev.StatusURL, Text: "vigil status page"}}
	}
	return ce
}
