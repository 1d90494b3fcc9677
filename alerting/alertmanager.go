package alerting

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/text"
)

// defaultAlertmanagerTimeout bounds one attempt.
const defaultAlertmanagerTimeout = 10 * time.Second

// Alertmanager posts an alert per incident to Alertmanager's v2 API, so the team's own
// routing, grouping, inhibition and silences apply: labels alertname, service,
// environment, check, severity and vigil_incident (plus the configured ones), the
// evidence as annotations. Alertmanager resolves an alert that is not sent again before
// its endsAt, so vigil sends endsAt = now + alert_ttl; the recovery, or the passing deploy
// that resolves the incident, sends the same labels with endsAt = now. The labels are kept
// in State so the resolution matches the alert exactly, also after a restart.
type Alertmanager struct {
	base
	url      string // .../api/v2/alerts
	shown    string
	severity string
	labels   map[string]string
	ttl      time.Duration
	header   http.Header // the configured headers: a tenant, a token for the proxy in front
	client   *http.Client
}

// Alertmanager State keys (stOpened is set when an alert fired).
const (
	amLabels   = "labels"    // the alert's labels, JSON
	amStarts   = "starts_at" // its startsAt
	amResolved = "resolved"
)

func newAlertmanager(cfg *configs.Notifier, opts Options) (*Alertmanager, error) {
	if err := checkURL(cfg, "url", cfg.URL, "give Alertmanager's base URL, e.g. http://alertmanager:9093"); err != nil {
		return nil, err
	}
	sev := cfg.Severity
	if sev == "" {
		sev = "critical"
	}
	if !slices.Contains(pdSeverities, sev) {
		return nil, permanentf(nil, cfg.Name, "new", "notifiers.%s.severity: %q is not a severity (critical, error, warning, info)", cfg.Name, sev)
	}
	ttl := cfg.AlertTTL
	if ttl <= 0 {
		ttl = configs.DefaultAlertTTL
	}
	header := http.Header{}
	for k, v := range cfg.Headers {
		if configs.ReservedPostHeader(k) {
			return nil, permanentf(nil, cfg.Name, "new", "notifiers.%s.headers.%s: vigil sets this header itself", cfg.Name, k)
		}
		header.Set(k, v)
	}
	u := strings.TrimSuffix(cfg.URL, "/") + "/api/v2/alerts"
	return &Alertmanager{base: newBase(cfg, opts, defaultAlertmanagerTimeout), url: u, shown: configs.RedactURL(u),
		severity: sev, labels: maps.Clone(cfg.Labels), ttl: ttl, header: header, client: newHTTPClient(opts.Transport)}, nil
}

// Wants: as PagerDuty, without deploy_started (no change events in Alertmanager) and
// action_result: the failures fire, check_recovered and deploy_passed resolve; with an
// `events` list, the resolving events come along whenever a failure is listed.
func (a *Alertmanager) Wants(event string) bool {
	switch {
	case event == configs.EventDeployStarted || configs.ClosesStart(event) || event == EventActionResult:
		return false
	case len(a.events) == 0:
		return slices.Contains(configs.Events, event)
	case a.listed(event):
		return true
	case event == configs.EventCheckRecovered || event == configs.EventDeployPassed:
		return slices.ContainsFunc(a.events, func(e string) bool { return slices.Contains(incidentOpeners, e) })
	}
	return false
}

// amAlert is one alert of the v2 API's postableAlerts.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     string            `json:"startsAt,omitempty"`
	EndsAt       string            `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Deliver posts the event's alert once: firing, or resolved.
func (a *Alertmanager) Deliver(ctx context.Context, ev *Event, st State) error {
	if err := checkEvent(a.name, ev); err != nil {
		return err
	}
	if st == nil {
		st = State{}
	}
	now := a.opts.Now().UTC()
	var alert amAlert
	var done func()
	switch {
	case slices.Contains(incidentOpeners, ev.Name):
		alert = a.firing(ev, st, now)
		done = func() {
			b, _ := json.Marshal(alert.Labels)
			st[amLabels], st[amStarts], st[stOpened], st[amResolved] = string(b), alert.StartsAt, "1", ""
		}
	case ev.Name == configs.EventCheckRecovered || ev.Name == configs.EventDeployPassed:
		var labels map[string]string
		switch {
		case st[stOpened] == "":
			return a.unopened(ev, st, "no alert of this notifier's is firing for its incident")
		case st[amResolved] != "":
			return nil // resolved by an earlier attempt of this event, whose answer was not recorded
		case json.Unmarshal([]byte(st[amLabels]), &labels) != nil:
			return permanentf(nil, a.name, "deliver", "the firing alert's labels, kept in the alert state, are unreadable: %.80q", st[amLabels])
		}
		alert = amAlert{Labels: labels, StartsAt: st[amStarts], EndsAt: now.Format(time.RFC3339Nano),
			Annotations: map[string]string{"summary": text.Ellipsis(title(ev)+noteSuffix(ev), 1000)}, GeneratorURL: httpOnly(ev.StatusURL)}
		done = func() { st[amResolved] = "1" }
	default:
		return a.skipped(ev, "Alertmanager has no alert for it") // see Wants
	}
	if starts, err := time.Parse(time.RFC3339Nano, alert.StartsAt); err == nil {
		if ends, err := time.Parse(time.RFC3339Nano, alert.EndsAt); err == nil && ends.Before(starts) {
			// Alertmanager refuses an alert that ends before it starts (a clock behind the
			// event's): it starts when it ends.
			alert.StartsAt = alert.EndsAt
		}
	}
	if a.dryRun {
		return a.dryRunError(ev, st, http.MethodPost, a.shown, "", ev.Name+" for "+describeSubject(ev))
	}
	ctx, cancel := a.attempt(ctx)
	defer cancel()
	if err := a.post(ctx, a.client, jsonPost{url: a.url, shown: a.shown, header: a.header, body: []amAlert{alert}},
		"check url, and the proxy in front of Alertmanager"); err != nil {
		return err
	}
	done()
	return nil
}

// firing is the alert of a failure. A reminder or a later failure of the same incident
// keeps the labels and startsAt of the alert already firing, so it refreshes that alert.
func (a *Alertmanager) firing(ev *Event, st State, now time.Time) amAlert {
	labels := maps.Clone(a.labels)
	if labels == nil {
		labels = map[string]string{}
	}
	name := "VigilCheckFailed"
	switch ev.Name {
	case configs.EventDeployFailed:
		name = "VigilDeployFailed"
	case configs.EventDeployHalted:
		name = "VigilDeployHalted"
	case configs.EventDeployInconclusive:
		name = "VigilDeployInconclusive"
	}
	service, env := ev.Service, ""
	if d := ev.Deploy; d != nil {
		service, env = d.Service, d.Environment
	}
	set := func(k, v string) {
		if v != "" {
			labels[k] = v
		}
	}
	set("alertname", name)
	set("service", service)
	set("environment", env)
	set("check", ev.Check)
	set("severity", severityOf(ev, a.severity))
	set("vigil_incident", incidentOf(ev))
	starts := ev.OccurredAt
	if starts.IsZero() {
		starts = now
	}
	startsAt := starts.UTC().Format(time.RFC3339Nano)
	if st[stOpened] != "" && st[amResolved] == "" && st[amLabels] != "" {
		var kept map[string]string
		if json.Unmarshal([]byte(st[amLabels]), &kept) == nil {
			labels, startsAt = kept, st[amStarts]
			labels["severity"] = severityOf(ev, a.severity)
		}
	}
	ann := map[string]string{"summary": text.Ellipsis(title(ev)+noteSuffix(ev), 1000), "description": text.Ellipsis(plainText(ev), 8000)}
	aset := func(k, v string) {
		if v != "" {
			ann[k] = text.Ellipsis(v, 2000)
		}
	}
	if d := ev.Deploy; d != nil {
		aset("version", d.Version)
		aset("commit", d.Commit)
		aset("deploy", d.ID)
	}
	if ev.LastDeploy != nil {
		aset("last_deploy", ev.LastDeploy.String())
	}
	aset("status_url", ev.StatusURL)
	aset("runbook_url", ev.RunbookURL)
	aset("halt", ev.Halt)
	var names []string
	for _, fc := range ev.FailedChecks {
		names = append(names, fc.Name)
		if len(names) == 1 {
			aset("run_url", fc.RunURL)
			aset("trace_url", fc.TraceURL)
			aset("trace_id", fc.TraceID)
			aset("reason", fc.Summary)
			aset("baseline", fc.Baseline)
			if ev.RunbookURL == "" {
				aset("runbook_url", fc.RunbookURL)
			}
		}
	}
	aset("failed_checks", strings.Join(names, ", "))
	return amAlert{Labels: labels, Annotations: ann, StartsAt: startsAt, EndsAt: now.Add(a.ttl).Format(time.RFC3339Nano),
		GeneratorURL: httpOnly(ev.StatusURL)}
}

// httpOnly keeps an http(s) URL; Alertmanager refuses other generatorURLs.
func httpOnly(u string) string {
	if validHTTPURL(u) {
		return u
	}
	return ""
}
