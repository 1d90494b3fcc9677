package alerting

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/text"
)

// defaultOpsgenieTimeout bounds one attempt.
const defaultOpsgenieTimeout = 10 * time.Second

// Opsgenie's field limits (Alert API, create alert), kept inside.
const (
	maxOpsgenieMessage     = 130
	maxOpsgenieDescription = 15000
	maxOpsgenieDetail      = 1000
	maxOpsgenieDetails     = 8000 // characters in all of the details' keys and values
	maxOpsgenieTags        = 20
	maxOpsgenieTag         = 50
	maxOpsgenieChecks      = 10
)

// Opsgenie creates an alert per incident through the Alert API, with alias = the
// incident's dedup key (DedupKey), so a retry or a reminder adds to the same alert's count
// instead of opening another; check_recovered, and a deploy_passed that resolves an
// incident it opened, close the alert by alias; an action's result is added as a note.
// Opsgenie answers 202 and processes requests asynchronously: the 202 is the delivery.
type Opsgenie struct {
	base
	apiKey   string
	apiURL   string // without a trailing slash
	shown    string
	priority string
	tags     []string
	client   *http.Client
}

// Opsgenie State keys (stOpened holds the alias of the alert it created).
const ogClosed = "closed"

func newOpsgenie(cfg *configs.Notifier, opts Options) (*Opsgenie, error) {
	p := "notifiers." + cfg.Name
	if !cfg.APIKey.IsSet() {
		return nil, permanentf(nil, cfg.Name, "new", "%s.api_key: missing; set an API integration key, e.g. api_key: ${OPSGENIE_API_KEY}", p)
	}
	api := cfg.APIURL
	if api == "" {
		api = "https://api.opsgenie.com"
	}
	if err := checkURL(cfg, "api_url", api, "use https://api.opsgenie.com, or https://api.eu.opsgenie.com for an EU account"); err != nil {
		return nil, err
	}
	prio := cfg.Priority
	if prio == "" {
		prio = "P1"
	}
	if !slices.Contains(configs.OpsgeniePriorities, prio) {
		return nil, permanentf(nil, cfg.Name, "new", "%s.priority: %q is not an Opsgenie priority (P1 to P5)", p, prio)
	}
	api = strings.TrimSuffix(api, "/")
	return &Opsgenie{base: newBase(cfg, opts, defaultOpsgenieTimeout), apiKey: cfg.APIKey.Value(), apiURL: api,
		shown: configs.RedactURL(api), priority: prio, tags: slices.Clone(cfg.Tags), client: newHTTPClient(opts.Transport)}, nil
}

// Wants: by default the failures (deploy_failed, deploy_halted, deploy_inconclusive,
// check_failed) create an alert, check_recovered and deploy_passed close it, and
// action_result adds a note to it. With an `events` list, the listed events, plus the
// closing ones whenever a failure is listed (an alert it opened must be able to close).
// deploy_started is never sent: Opsgenie has no change events, and an alert per deploy
// would page for nothing.
func (o *Opsgenie) Wants(event string) bool {
	switch {
	case event == configs.EventDeployStarted || configs.ClosesStart(event):
		return false
	case event == EventActionResult:
		return true
	case len(o.events) == 0:
		return slices.Contains(configs.Events, event)
	case o.listed(event):
		return true
	case event == configs.EventCheckRecovered || event == configs.EventDeployPassed:
		return slices.ContainsFunc(o.events, func(e string) bool { return slices.Contains(incidentOpeners, e) })
	}
	return false
}

// Deliver sends the event's one Alert API request: create, close or add a note.
func (o *Opsgenie) Deliver(ctx context.Context, ev *Event, st State) error {
	if err := checkEvent(o.name, ev); err != nil {
		return err
	}
	if st == nil {
		st = State{}
	}
	alias := DedupKey(incidentOf(ev))
	byAlias := o.apiURL + "/v2/alerts/" + url.PathEscape(alias)
	var req jsonPost
	var done func()
	switch {
	case slices.Contains(incidentOpeners, ev.Name):
		req = jsonPost{url: o.apiURL + "/v2/alerts", shown: o.shown + "/v2/alerts", body: o.alert(ev, alias)}
		done = func() { st[stOpened], st[ogClosed] = alias, "" }
	case ev.Name == configs.EventCheckRecovered || ev.Name == configs.EventDeployPassed:
		switch {
		case st[stOpened] == "":
			return o.unopened(ev, st, "no alert of this notifier's to close: it closes only what it opened")
		case st[ogClosed] != "":
			return nil // closed by an earlier attempt of this event, whose answer was not recorded
		}
		req = jsonPost{url: byAlias + "/close?identifierType=alias", shown: o.shown + "/v2/alerts/{alias}/close",
			body: ogAction{Source: "vigil", User: "vigil", Note: text.Ellipsis(title(ev)+noteSuffix(ev), 25000)}}
		done = func() { st[ogClosed] = "1" }
	case ev.Name == EventActionResult:
		if st[stOpened] == "" {
			return o.unopened(ev, st, "no alert of this notifier's to add it to as a note")
		}
		req = jsonPost{url: byAlias + "/notes?identifierType=alias", shown: o.shown + "/v2/alerts/{alias}/notes",
			body: ogAction{Source: "vigil", User: "vigil", Note: text.Ellipsis(plainText(ev), 25000)}}
		done = func() {}
	default:
		return o.skipped(ev, "Opsgenie has no change events") // deploy_started: see Wants
	}
	if o.dryRun {
		return o.dryRunError(ev, st, http.MethodPost, req.shown, "", ev.Name+" for "+describeSubject(ev))
	}
	req.header = http.Header{"Authorization": {"GenieKey " + o.apiKey}}
	ctx, cancel := o.attempt(ctx)
	defer cancel()
	if err := o.post(ctx, o.client, req,
		"check api_key (an API integration's key with create and close access) and api_url (the account's region: api.opsgenie.com or api.eu.opsgenie.com)"); err != nil {
		return err
	}
	done()
	return nil
}

func noteSuffix(ev *Event) string {
	if ev.Summary == "" {
		return ""
	}
	return ": " + ev.Summary
}

// ogAction is the body of a close or a note.
type ogAction struct {
	Source string `json:"source"`
	User   string `json:"user"`
	Note   string `json:"note,omitempty"`
}

// ogAlert is the body of a create.
type ogAlert struct {
	Message     string            `json:"message"`
	Alias       string            `json:"alias"`
	Description string            `json:"description,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Details     map[string]string `json:"details,omitempty"`
	Entity      string            `json:"entity,omitempty"`
	Source      string            `json:"source"`
	Priority    string            `json:"priority"`
}

// priorityOf is the priority an event creates its alert with: the configured one, except
// that an inconclusive verdict is at most P3 (vigil could not tell whether the deploy is
// bad; a person looks, but not as an outage).
func (o *Opsgenie) priorityOf(ev *Event) string {
	if ev.Name == configs.EventDeployInconclusive && slices.Index(configs.OpsgeniePriorities, o.priority) < 2 {
		return "P3"
	}
	return o.priority
}

// alert is the evidence Slack shows, as Opsgenie holds it: the title as the message, the
// text rendering (RenderText) as the description, and the facts, the failing checks'
// reasons, runs and traces as details, which Opsgenie shows as a table and can route on.
func (o *Opsgenie) alert(ev *Event, alias string) ogAlert {
	// Opsgenie takes 8000 characters of details in all: the facts go first, then the
	// actions, then the failing checks while they fit (a long reason cut shorter), the
	// rest counted in room kept for it.
	const countRoom = 120
	d := &ogDetails{m: map[string]string{}}
	set := func(k, v string) { d.put(k, v, countRoom) }
	set("event", ev.Name)
	set("incident", incidentOf(ev))
	service, env := ev.Service, ""
	if dep := ev.Deploy; dep != nil {
		service, env = dep.Service, dep.Environment
		set("service", dep.Service)
		set("version", dep.Version)
		set("environment", dep.Environment)
		set("commit", dep.Commit)
		set("deploy", dep.ID)
	} else {
		set("service", ev.Service)
	}
	set("check", ev.Check)
	if ev.LastDeploy != nil {
		set("last deploy", ev.LastDeploy.String())
	}
	set("location", ev.Location)
	set("summary", ev.Summary)
	set("halt", ev.Halt)
	set("status_url", ev.StatusURL)
	set("runbook", ev.RunbookURL)
	set("headline", headline(ev))
	if dep := ev.Deploy; dep != nil {
		set("rollback target", dep.PreviousVersion)
		for _, l := range dep.Links {
			set("link: "+l.Name, l.URL)
		}
	}
	for _, a := range ev.Actions {
		what := a.Action
		if a.Withheld != "" {
			what = "not called: " + a.Withheld
		}
		set("action: "+a.Notifier, what)
	}
	for i, fc := range ev.FailedChecks {
		if i == maxOpsgenieChecks || !d.check(fc, countRoom) {
			d.put("more failing checks", moreChecks(len(ev.FailedChecks)-i), 0)
			break
		}
	}
	tags := slices.Clone(o.tags)
	for _, t := range []string{"vigil", ev.Name, service, env} {
		if t != "" && utf8.RuneCountInString(t) <= maxOpsgenieTag && !slices.Contains(tags, t) && len(tags) < maxOpsgenieTags {
			tags = append(tags, t)
		}
	}
	source := "vigil"
	if ev.Location != "" {
		source += "@" + ev.Location
	}
	return ogAlert{
		Message:     text.Ellipsis(title(ev), maxOpsgenieMessage),
		Alias:       alias,
		Description: text.Ellipsis(plainText(ev), maxOpsgenieDescription),
		Tags:        tags,
		Details:     d.m,
		Entity:      service,
		Source:      source,
		Priority:    o.priorityOf(ev),
	}
}

// ogDetails are an alert's details, kept within Opsgenie's limit.
type ogDetails struct {
	m    map[string]string
	used int // characters, keys and values
}

func detailSize(k, v string) int {
	if v == "" {
		return 0
	}
	return utf8.RuneCountInString(k) + utf8.RuneCountInString(text.Ellipsis(v, maxOpsgenieDetail))
}

// put sets k to v, cut to Opsgenie's 1000 characters, when that leaves room characters of
// the limit free.
func (d *ogDetails) put(k, v string, room int) bool {
	n := detailSize(k, v)
	if n == 0 || d.used+n > maxOpsgenieDetails-room {
		return n == 0
	}
	d.m[k], d.used = text.Ellipsis(v, maxOpsgenieDetail), d.used+n
	return true
}

// check puts a failing check's details, its reason cut shorter when the whole does not
// fit; it reports false, putting nothing, when even that does not.
func (d *ogDetails) check(fc FailedCheck, room int) bool {
	trace, shot := fc.TraceURL, ""
	if trace == "" {
		trace = fc.TraceID
	}
	if len(fc.Screenshot) > 0 {
		shot = fc.RunURL
	}
	for _, cut := range []int{maxOpsgenieDetail, 200} {
		reason := strings.Join(checkTags(fc), " · ")
		if fc.Summary != "" {
			reason = strings.TrimPrefix(reason+": "+text.Ellipsis(fc.Summary, cut), ": ")
		}
		kv := [][2]string{{"failing: " + fc.Name, reason}, {"run: " + fc.Name, fc.RunURL}, {"baseline: " + fc.Name, fc.Baseline},
			{"runbook: " + fc.Name, fc.RunbookURL}, {"trace: " + fc.Name, trace}, {"screenshot: " + fc.Name, shot}}
		n := 0
		for _, e := range kv {
			n += detailSize(e[0], e[1])
		}
		if d.used+n > maxOpsgenieDetails-room {
			continue
		}
		for _, e := range kv {
			d.put(e[0], e[1], 0)
		}
		return true
	}
	return false
}

// validHTTPURL reports whether raw is an absolute http or https URL.
func validHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
