package configs

import (
	"fmt"
	"maps"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// OpsgeniePriorities are Opsgenie's alert priorities, most urgent first.
var OpsgeniePriorities = []string{"P1", "P2", "P3", "P4", "P5"}

// maxOpsgenieTags leaves room, within Opsgenie's 20 tags, for the ones vigil adds (vigil,
// the event, the service, the environment).
const maxOpsgenieTags = 16

// channelDefaults fills the defaults of the channel notifier types (opsgenie, teams,
// discord, email, alertmanager).
func (n *Notifier) channelDefaults() {
	switch n.Type {
	case NotifierSlack:
		setDur(&n.Timeout, 30*time.Second) // a message, the root's update and the screenshots' uploads
	case NotifierOpsgenie:
		setStr(&n.APIURL, "https://api.opsgenie.com")
		setStr(&n.Priority, "P1")
	case NotifierAlertmanager:
		setStr(&n.Severity, "critical")
		setDur(&n.AlertTTL, DefaultAlertTTL)
	case NotifierEmail:
		setInt(&n.Port, 587)
		setDur(&n.Timeout, 30*time.Second) // the whole SMTP conversation, TLS handshake included
		if n.StartTLS == nil {
			n.StartTLS = ptr(true)
		}
	}
}

// channel validates the keys of the channel notifier types.
func (v *validator) channel(p string, n *Notifier) {
	switch n.Type {
	case NotifierOpsgenie:
		if !n.APIKey.IsSet() {
			v.errf(p+".api_key", "set an Opsgenie API integration key, e.g. api_key: ${OPSGENIE_API_KEY}", "missing")
		}
		if n.APIURL != "" {
			v.url(p+".api_url", n.APIURL)
		}
		if !slices.Contains(OpsgeniePriorities, n.Priority) {
			v.errf(p+".priority", "use P1 (most urgent) to P5", "%q is not an Opsgenie priority", n.Priority)
		}
		if len(n.Tags) > maxOpsgenieTags {
			v.errf(p+".tags", fmt.Sprintf("keep at most %d (Opsgenie takes 20; vigil adds vigil, the event, the service and the environment)", maxOpsgenieTags),
				"%d tags", len(n.Tags))
		}
		for i, t := range n.Tags {
			if t == "" || utf8.RuneCountInString(t) > 50 || strings.ContainsAny(t, ", ") { // characters, as Opsgenie counts
				v.errf(indexPath(p+".tags", i), "a tag is 1 to 50 characters without spaces or commas", "%q is not a valid Opsgenie tag", t)
			}
		}
	case NotifierTeams:
		if n.URL == "" {
			v.errf(p+".url", "set the Workflows webhook URL (Teams: the channel's Workflows, \"Post to a channel when a webhook request is received\")", "missing")
		} else {
			v.url(p+".url", n.URL)
		}
	case NotifierEmail:
		v.email(p, n)
	case NotifierAlertmanager:
		v.alertmanager(p, n)
	case NotifierDiscord:
		if n.URL == "" {
			v.errf(p+".url", "set the channel's webhook URL (Discord: channel settings, Integrations, Webhooks), e.g. url: ${DISCORD_WEBHOOK_URL}", "missing")
		} else {
			v.url(p+".url", n.URL)
		}
	}
}

// SMTPSPort is the port of SMTP over implicit TLS (RFC 8314): no STARTTLS there.
const SMTPSPort = 465

func (v *validator) email(p string, n *Notifier) {
	if n.Host == "" {
		v.errf(p+".host", "set the SMTP server's host name, e.g. host: smtp.example.com", "missing")
	}
	if n.Port < 1 || n.Port > 65535 {
		v.errf(p+".port", "use 587 (submission with STARTTLS, the default), 465 (implicit TLS) or 25", "%d is not a port", n.Port)
	}
	if n.From == "" {
		v.errf(p+".from", `set the sender, e.g. from: "vigil <vigil@example.com>"`, "missing")
	} else if _, err := mail.ParseAddress(n.From); err != nil {
		v.errf(p+".from", `write one address, e.g. "vigil <vigil@example.com>"`, "%q is not a mail address", n.From)
	}
	if len(n.To) == 0 {
		v.errf(p+".to", "list the recipients, e.g. to: [oncall@example.com]", "missing")
	}
	for i, to := range n.To {
		if _, err := mail.ParseAddress(to); err != nil {
			v.errf(indexPath(p+".to", i), "write one address per entry, e.g. oncall@example.com", "%q is not a mail address", to)
		}
	}
	if (n.Username == "") != !n.Password.IsSet() {
		v.errf(p+".password", "set both username and password, or neither", "username and password go together")
	}
	tlsOn := n.Port == SMTPSPort || n.StartTLS == nil || *n.StartTLS
	if n.Username != "" && !tlsOn {
		v.errf(p+".starttls", "keep starttls: true (or use port 465): the password must not cross the network in clear", "false with a username")
	}
	if n.TLS.CAFile != "" {
		if !filepath.IsAbs(n.TLS.CAFile) {
			n.TLS.CAFile = filepath.Join(v.c.Dir, n.TLS.CAFile)
		}
		if _, err := os.Stat(n.TLS.CAFile); err != nil {
			v.errf(p+".tls.ca_file", "point it at a PEM file of CA certificates", "cannot read %s", n.TLS.CAFile)
		}
	}
}

// DefaultAlertTTL is how long an alert sent to Alertmanager stays firing without being sent
// again (its endsAt).
const DefaultAlertTTL = time.Hour

// alertmanagerLabels are the labels vigil sets itself on every alert.
var alertmanagerLabels = []string{"alertname", "service", "environment", "check", "severity", "vigil_incident"}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func (v *validator) alertmanager(p string, n *Notifier) {
	if n.URL == "" {
		v.errf(p+".url", "set Alertmanager's base URL, e.g. url: http://alertmanager:9093 (vigil posts to /api/v2/alerts)", "missing")
	} else {
		v.url(p+".url", n.URL)
	}
	if !slices.Contains([]string{"critical", "error", "warning", "info"}, n.Severity) {
		v.errf(p+".severity", "use critical, error, warning or info (the severity label)", "%q is not a severity", n.Severity)
	}
	if n.AlertTTL < time.Minute || n.AlertTTL > 7*24*time.Hour {
		v.errf(p+".alert_ttl", "use 1m to 168h; it must outlast the time between two sends of an open incident (repeat_interval)", "%s is out of range", n.AlertTTL)
	}
	for _, k := range slices.Sorted(maps.Keys(n.Labels)) {
		switch {
		case !labelNameRE.MatchString(k):
			v.errf(p+".labels."+k, "a label name is letters, digits and _, not starting with a digit", "%q is not a label name", k)
		case slices.Contains(alertmanagerLabels, k):
			v.errf(p+".labels."+k, "remove it: vigil sets "+strings.Join(alertmanagerLabels, ", ")+" itself", "vigil sets this label")
		case n.Labels[k] == "":
			v.errf(p+".labels."+k, "give it a value, or remove it", "empty")
		}
	}
	for _, h := range slices.Sorted(maps.Keys(n.Headers)) {
		if ReservedPostHeader(h) {
			v.errf(p+".headers."+h, "remove it: vigil sets it on every post (the body is JSON)", "vigil sets this header itself")
		}
	}
}
