package configs

import (
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Notifier types.
const (
	NotifierSlack     = "slack"
	NotifierPagerDuty = "pagerduty"
	NotifierWebhook   = "webhook"
	// The channels of notifier_channels.go.
	NotifierOpsgenie     = "opsgenie"
	NotifierTeams        = "teams"
	NotifierDiscord      = "discord"
	NotifierEmail        = "email"
	NotifierAlertmanager = "alertmanager"
)

// Notifier is a named destination for events.
type Notifier struct {
	Type   string   `koanf:"type"`
	Events []string `koanf:"events"`
	DryRun bool     `koanf:"dry_run"`

	// slack
	Token   Secret `koanf:"token"`
	Channel string `koanf:"channel"`
	APIURL  string `koanf:"api_url"`

	// pagerduty
	RoutingKey Secret `koanf:"routing_key"`
	Severity   string `koanf:"severity"`

	// webhook (url is also pagerduty's Events v2 endpoint override)
	URL         string            `koanf:"url"`
	Secret      Secret            `koanf:"secret"`
	Headers     map[string]string `koanf:"headers"`
	Action      string            `koanf:"action"` // rollback, halt, or "" (informational)
	Timeout     time.Duration     `koanf:"timeout"`
	MaxAttempts int               `koanf:"max_attempts"`

	// opsgenie (api_url is also Opsgenie's API base)
	APIKey   Secret   `koanf:"api_key"`
	Priority string   `koanf:"priority"`
	Tags     []string `koanf:"tags"`

	// email
	Host     string   `koanf:"host"`
	Port     int      `koanf:"port"`
	From     string   `koanf:"from"`
	To       []string `koanf:"to"`
	Username string   `koanf:"username"`
	Password Secret   `koanf:"password"`
	StartTLS *bool    `koanf:"starttls"`
	TLS      TLS      `koanf:"tls"`

	// alertmanager (also url, severity)
	AlertTTL time.Duration     `koanf:"alert_ttl"`
	Labels   map[string]string `koanf:"labels"`

	Name string `koanf:"-"`
}

// Events a notifier can receive.
const (
	EventDeployFailed       = "deploy_failed"
	EventDeployHalted       = "deploy_halted"
	EventDeployInconclusive = "deploy_inconclusive"
	EventDeployPassed       = "deploy_passed"
	EventDeployStarted      = "deploy_started"
	// EventDeployCancelled closes what a deploy_started opened when the deploy's rollout
	// is called off: no verdict, so nothing is paged and no action webhook is called.
	EventDeployCancelled = "deploy_cancelled"
	// EventDeploySuperseded closes it when a newer deploy of the service is registered
	// before the verdict: the same, and it names the newer deploy.
	EventDeploySuperseded = "deploy_superseded"
	EventCheckFailed      = "check_failed"
	EventCheckRecovered   = "check_recovered"
)

// Events lists every event name.
var Events = []string{EventDeployFailed, EventDeployHalted, EventDeployInconclusive, EventDeployPassed,
	EventDeployStarted, EventDeployCancelled, EventDeploySuperseded, EventCheckFailed, EventCheckRecovered}

// ClosesStart reports whether event ends a deploy without a verdict (deploy_cancelled,
// deploy_superseded): it closes what the deploy's deploy_started opened, pages nobody and
// calls no rollback or halt webhook.
func ClosesStart(event string) bool {
	return event == EventDeployCancelled || event == EventDeploySuperseded
}

// neverTaken are the events a notifier type never takes, whatever its events list says:
// PagerDuty, Opsgenie and Alertmanager paged or alerted nothing for a deploy that only
// started, so there is nothing of theirs for a cancel or a supersede to close.
var neverTaken = map[string][]string{
	NotifierPagerDuty:    {EventDeployCancelled, EventDeploySuperseded},
	NotifierOpsgenie:     {EventDeployCancelled, EventDeploySuperseded},
	NotifierAlertmanager: {EventDeployCancelled, EventDeploySuperseded},
}

// notifierKeys lists the keys each notifier type accepts, besides type, events and dry_run.
var notifierKeys = map[string][]string{
	NotifierSlack:        {"token", "channel", "api_url", "timeout", "max_attempts"},
	NotifierPagerDuty:    {"routing_key", "severity", "url", "timeout", "max_attempts"},
	NotifierWebhook:      {"url", "secret", "headers", "action", "timeout", "max_attempts"},
	NotifierOpsgenie:     {"api_key", "api_url", "priority", "tags", "timeout", "max_attempts"},
	NotifierTeams:        {"url", "timeout", "max_attempts"},
	NotifierDiscord:      {"url", "timeout", "max_attempts"},
	NotifierEmail:        {"host", "port", "from", "to", "username", "password", "starttls", "tls", "timeout", "max_attempts"},
	NotifierAlertmanager: {"url", "severity", "labels", "alert_ttl", "headers", "timeout", "max_attempts"},
}

// decodeRaw reads a notifier and rejects keys that belong to another notifier type.
func (n *Notifier) decodeRaw(d *decoder, path string, raw any) {
	m, ok := raw.(map[string]any)
	if !ok {
		d.errorf(path, "each notifier is a mapping with at least type", "expected a mapping, got %s", describe(raw))
		return
	}
	d.decodeStruct(path, m, reflect.ValueOf(n).Elem(), nil)
	allowed, ok := notifierKeys[n.Type]
	if !ok {
		return // validation reports the type
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if k == "type" || k == "events" || k == "dry_run" || slices.Contains(allowed, k) {
			continue
		}
		if _, known := structFields(reflect.TypeOf(*n))[k]; !known {
			continue // already reported as unknown
		}
		d.errorf(joinPath(path, k), fmt.Sprintf("%s notifiers take: type, events, dry_run, %s", n.Type, strings.Join(allowed, ", ")),
			"not a key of %s notifiers", n.Type)
	}
}

func (n *Notifier) applyDefaults(name string) {
	n.Name = name
	n.channelDefaults()
	setDur(&n.Timeout, 10*time.Second)
	setInt(&n.MaxAttempts, 8)
	if n.Type == NotifierPagerDuty {
		setStr(&n.Severity, "critical")
	}
}

func (v *validator) notifiers() {
	types := slices.Sorted(maps.Keys(notifierKeys))
	for _, name := range slices.Sorted(maps.Keys(v.c.Notifiers)) {
		n := v.c.Notifiers[name]
		p := "notifiers." + name
		if !nameRE.MatchString(name) {
			v.errf(p, nameFix, "%q is not a valid notifier name", name)
		}
		if _, ok := notifierKeys[n.Type]; !ok {
			if n.Type == "" {
				v.errf(p+".type", "set type to one of: "+strings.Join(types, ", "), "missing")
			} else {
				v.errf(p+".type", DidYouMean(n.Type, types), "unknown notifier type %q", n.Type)
			}
			continue
		}
		for i, ev := range n.Events {
			switch {
			case !slices.Contains(Events, ev):
				v.errf(indexPath(p+".events", i), DidYouMean(ev, Events), "unknown event %q", ev)
			case slices.Contains(neverTaken[n.Type], ev):
				v.errf(indexPath(p+".events", i), "remove it: a "+strings.TrimPrefix(ev, "deploy_")+" deploy had nothing paged or alerted to close",
					"%s notifiers never take %s", n.Type, ev)
			}
		}
		switch n.Type {
		case NotifierSlack:
			v.slack(p, n)
		case NotifierPagerDuty:
			v.pagerDuty(p, n)
		case NotifierWebhook:
			v.webhook(p, n)
		default:
			v.channel(p, n)
		}
		if n.Timeout < 0 || n.Timeout > 5*time.Minute {
			v.errf(p+".timeout", "use a positive duration up to 5m for one attempt, e.g. 10s", "%s is out of range", n.Timeout)
		}
		if n.MaxAttempts < 1 || n.MaxAttempts > 50 {
			v.errf(p+".max_attempts", "use 1 to 50", "%d is out of range", n.MaxAttempts)
		}
	}
}

func (v *validator) slack(p string, n *Notifier) {
	if !n.Token.IsSet() {
		v.errf(p+".token", "set a bot token, e.g. token: ${SLACK_TOKEN}", "missing")
	}
	if n.Channel == "" {
		v.errf(p+".channel", `set the channel to post in, e.g. "#deploys"`, "missing")
	}
	if n.APIURL != "" {
		v.url(p+".api_url", n.APIURL)
	}
}

func (v *validator) pagerDuty(p string, n *Notifier) {
	if !n.RoutingKey.IsSet() {
		v.errf(p+".routing_key", "set the Events v2 integration key, e.g. routing_key: ${PD_ROUTING_KEY}", "missing")
	}
	if !slices.Contains([]string{"critical", "error", "warning", "info"}, n.Severity) {
		v.errf(p+".severity", "use critical, error, warning or info", "%q is not a PagerDuty severity", n.Severity)
	}
	if n.URL != "" {
		if _, ok := PagerDutyEndpoint(n.URL); !ok {
			v.errf(p+".url", "give the full Events v2 enqueue URL, e.g. https://events.pagerduty.com/v2/enqueue (change events go to /v2/change/enqueue beside it)",
				"%q does not end in /v2/enqueue", n.URL)
		}
	}
}

func (v *validator) webhook(p string, n *Notifier) {
	if n.URL == "" {
		v.errf(p+".url", "set the URL to POST to", "missing")
	} else {
		v.url(p+".url", n.URL)
	}
	if !n.Secret.IsSet() {
		v.errf(p+".secret", "set a signing secret, e.g. secret: ${ROLLBACK_SECRET}; receivers verify X-Vigil-Signature with it", "missing")
	}
	if !slices.Contains([]string{"", "rollback", "halt"}, n.Action) {
		v.errf(p+".action", `use "rollback", "halt", or leave it out for a plain notification`, "unknown action %q", n.Action)
	}
	for _, h := range slices.Sorted(maps.Keys(n.Headers)) {
		if ReservedWebhookHeader(h) {
			v.errf(p+".headers."+h, "remove it: vigil sets it on every delivery (the body is JSON, the signature covers it)", "vigil sets this header itself")
		}
	}
}

// notifier checks that a reference at p names a configured notifier.
func (v *validator) notifier(p, name string) {
	if _, ok := v.c.Notifiers[name]; !ok {
		v.errf(p, DidYouMean(name, slices.Sorted(maps.Keys(v.c.Notifiers))), "unknown notifier %q", name)
	}
}

// webhookHeaders are the headers vigil sets on every webhook delivery; a configured header
// may not replace them.
var webhookHeaders = []string{"Content-Type", "Content-Length", "Host", "Transfer-Encoding", "User-Agent",
	"X-Vigil-Event", "X-Vigil-Timestamp", "X-Vigil-Signature", "Idempotency-Key"}

// ReservedWebhookHeader reports whether vigil sets header name itself on webhook deliveries.
func ReservedWebhookHeader(name string) bool {
	return slices.ContainsFunc(webhookHeaders, func(h string) bool { return strings.EqualFold(h, name) })
}

// ReservedPostHeader reports whether vigil sets header name itself on the JSON posts of
// the channels that take headers (alertmanager): the body's and the connection's.
func ReservedPostHeader(name string) bool {
	return slices.ContainsFunc(webhookHeaders[:5], func(h string) bool { return strings.EqualFold(h, name) })
}

// PagerDutyEndpoint checks a PagerDuty notifier's url, the full Events v2 enqueue URL, and
// returns the API's base (the URL without /v2/enqueue), which change events share.
func PagerDutyEndpoint(raw string) (base string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return "", false
	}
	trimmed := strings.TrimSuffix(raw, "/")
	base = strings.TrimSuffix(trimmed, "/v2/enqueue")
	return base, base != trimmed
}
