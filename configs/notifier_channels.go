package configs

import (
	"fmt"
	"slices"
	"strings"
)

// OpsgeniePriorities are Opsgenie's alert priorities, most urgent first.
var OpsgeniePriorities = []string{"P1", "P2", "P3", "P4", "P5"}

// maxOpsgenieTags leaves room, within Opsgenie's 20 tags, for the ones vigil adds (vigil,
// the event, the service, the environment).
const maxOpsgenieTags = 16

// channelDefaults fills the defaults of the channel notifier types (opsgenie, teams,
// discord, email, alertmanager).
func (n *Notifier) channelDefaults() {
	if n.Type == NotifierOpsgenie {
		setStr(&n.APIURL, "https://api.opsgenie.com")
		setStr(&n.Priority, "P1")
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
			if t == "" || len(t) > 50 || strings.ContainsAny(t, ", ") {
				v.errf(indexPath(p+".tags", i), "a tag is 1 to 50 characters without spaces or commas", "%q is not a valid Opsgenie tag", t)
			}
		}
	case NotifierTeams:
		if n.URL == "" {
			v.errf(p+".url", "set the Workflows webhook URL (Teams: the channel's Workflows, \"Post to a channel when a webhook request is received\")", "missing")
		} else {
			v.url(p+".url", n.URL)
		}
	case NotifierDiscord:
		if n.URL == "" {
			v.errf(p+".url", "set the channel's webhook URL (Discord: channel settings, Integrations, Webhooks), e.g. url: ${DISCORD_WEBHOOK_URL}", "missing")
		} else {
			v.url(p+".url", n.URL)
		}
	}
}
