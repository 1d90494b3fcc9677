package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/configs"
)

// jsonPost is one JSON request of the channel notifiers (Opsgenie, Teams, Discord,
// Alertmanager): where it goes, how it is shown in errors and dry-run notes (without
// credentials), and its body.
type jsonPost struct {
	url, shown string
	header     http.Header
	body       any
	// retryAfter reads how long a 429 without a Retry-After header asks to wait from the
	// answer's body (Discord's retry_after); nil when the channel has no such field.
	retryAfter func(answer []byte) time.Duration
	// refused says whether an answer that is not a success refuses the message for its
	// content, and how (Error.refused); nil when no answer does.
	refused func(status int, answer []byte) string
}

// post sends one request within the attempt's context and classifies the answer like the
// webhook does: 2xx is delivered (the body is not read beyond its head), 5xx, 408, 429 and
// no answer are retryable (429 with RetryAfter), other statuses Permanent with the answer
// quoted. hint, when the answer is a 401, 403 or 404 (a wrong key, a deleted webhook),
// says what to fix.
func (b *base) post(ctx context.Context, client *http.Client, p jsonPost, hint string) error {
	op := http.MethodPost + " " + p.shown
	body, err := json.Marshal(p.body)
	if err != nil {
		return permanentf(err, b.name, op, "encoding the payload")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return permanentf(nil, b.name, op, "building the request failed")
	}
	for k, v := range p.header {
		req.Header[k] = slices.Clone(v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", b.opts.UserAgent)
	resp, err := client.Do(req)
	if err != nil {
		return transportError(ctx, b.name, op, err, b.timeout)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// The status is the receiver's word: the body is not read, so a receiver that
		// stalls after answering cannot hold the attempt.
		return nil
	}
	answer, readErr := io.ReadAll(io.LimitReader(resp.Body, headSize))
	e := statusError(b.name, op, resp.StatusCode, resp.Header, answer, b.opts.Now())
	if readErr != nil {
		e.msg += " (answer cut short)"
	}
	if p.refused != nil {
		e.refused = p.refused(resp.StatusCode, answer)
	}
	if e.StatusCode == http.StatusTooManyRequests && e.RetryAfter == 0 && p.retryAfter != nil {
		e.RetryAfter = p.retryAfter(answer)
	}
	if hint != "" && slices.Contains([]int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound}, resp.StatusCode) {
		e.msg += " (" + hint + ")"
	}
	return e
}

// checkURL checks a channel notifier's http or https URL at key.
func checkURL(cfg *configs.Notifier, key, raw, fix string) error {
	if !validHTTPURL(raw) {
		return permanentf(nil, cfg.Name, "new", "notifiers.%s.%s: want an http or https URL; %s", cfg.Name, key, fix)
	}
	return nil
}

// State keys of the channel notifiers. stOpened says the channel heard of the incident: its
// failure was sent, or, that lost, the action's result; the follow-ups (recovery, resolving
// deploy, action's result) go out then, or when the notifier's events list names them.
// stAttempted names the failure that was meant for the channel and attempted: without
// stOpened, it never got through (refused, or out of attempts: the outbox sends an
// incident's follow-ups once its earlier entries are done).
const (
	stOpened    = "opened"
	stAttempted = "open_attempted"
	// stStarted says the channel was told the deploy started: its deploy_cancelled or
	// deploy_superseded follows.
	stStarted = "started"
)

// incidentOpeners are the events that open an incident in the channel notifiers.
var incidentOpeners = []string{configs.EventDeployFailed, configs.EventDeployHalted, configs.EventDeployInconclusive,
	configs.EventCheckFailed}

// screenshotOnRunPage replaces Slack's screenshot note where the channel does not get the
// screenshot itself: the run page shows it.
const screenshotOnRunPage = "screenshot on the run page"

// plainText is RenderText for channels other than Slack, which have no thread to hold the
// screenshot.
func plainText(ev *Event) string {
	return strings.ReplaceAll(RenderText(ev), screenshotNote, screenshotOnRunPage)
}

// wantsIncident is the default events filter of the channel notifiers that post a message
// per event (Teams, Discord, email): the failures open an incident; check_recovered,
// deploy_passed and action_result follow one, deploy_cancelled and deploy_superseded a
// deploy_started (Deliver skips them otherwise, see followUpSkipped). With an events
// list, the listed events and the follow-ups.
func (b *base) wantsIncident(event string) bool {
	if event == configs.EventCheckRecovered || event == configs.EventDeployPassed || event == EventActionResult ||
		configs.ClosesStart(event) {
		return true
	}
	if len(b.events) > 0 {
		return b.listed(event)
	}
	return slices.Contains(incidentOpeners, event)
}

// attempting notes, before a failure's request, that the incident's failure was meant for
// this channel, so its follow-ups know when it was lost.
func attempting(ev *Event, st State) {
	if slices.Contains(incidentOpeners, ev.Name) && st[stAttempted] == "" {
		st[stAttempted] = ev.Name
	}
}

// told records that ev, just sent, told the channel of its incident.
func told(ev *Event, st State) {
	if slices.Contains(incidentOpeners, ev.Name) || ev.Name == EventActionResult {
		st[stOpened] = "1"
	}
	if ev.Name == configs.EventDeployStarted {
		st[stStarted] = "1"
	}
}

// followUpSkipped is why a channel without threads sends nothing for ev (nil when it
// sends): ev follows an incident (a recovery, the resolving deploy, an action's result)
// the channel did not hear of, and its events list does not name it. The message of each
// event stands alone, so one that needs nothing from the failure's message is sent
// without it where that failure was meant for the channel and lost: an action's result (a
// rollback or halt changed production: news of its own, after which the incident's
// all-clear follows it). An all-clear of a failure nobody there saw is not sent: it tells
// them nothing to do.
func (b *base) followUpSkipped(ev *Event, st State) error {
	if slices.Contains(incidentOpeners, ev.Name) || ev.Name == configs.EventDeployStarted || st[stOpened] != "" || b.listed(ev.Name) ||
		(configs.ClosesStart(ev.Name) && st[stStarted] != "") {
		return nil
	}
	lost := st[stAttempted]
	switch {
	case lost != "" && ev.Name == EventActionResult:
		return nil
	case lost != "":
		return b.skipped(ev, "the incident's %s never reached the channel (it was dead-lettered), and an all-clear of a failure "+
			"nobody there saw is not sent", lost)
	case ev.Name == EventActionResult:
		return b.unopened(ev, st, "this notifier did not post the incident it reports on")
	}
	return b.unopened(ev, st, "this notifier did not post a failure of its incident; it is sent on its own only when events lists %s", ev.Name)
}

// tone is how an event reads at a glance: "bad" (a failure), "warn" (inconclusive),
// "good" (passed, recovered) or "info" (a deploy started, an action's result, an incident
// closed because its check left the config).
func tone(ev *Event) string {
	switch ev.Name {
	case configs.EventDeployFailed, configs.EventDeployHalted, configs.EventCheckFailed:
		return "bad"
	case configs.EventDeployInconclusive:
		return "warn"
	case configs.EventDeployPassed:
		return "good"
	case configs.EventCheckRecovered:
		if ev.Closed != "" {
			return "info"
		}
		return "good"
	}
	return "info"
}

// channelView is the event as a channel without threads shows it: a deploy_passed that
// follows a failure this notifier sent reads as its resolution.
func channelView(ev *Event, st State) view {
	return newView(ev, ev.Name == configs.EventDeployPassed && st[stOpened] != "")
}
