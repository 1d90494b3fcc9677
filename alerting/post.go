package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/vigil-monitor/vigil/configs"
)

// jsonPost is one JSON request of the channel notifiers (Opsgenie, Teams, Discord,
// Alertmanager): where it goes, how it is shown in errors and dry-run notes (without
// credentials), and its body.
type jsonPost struct {
	url, shown string
	header     http.Header
	body       any
}

// post sends one request within the attempt's context and classifies the answer like the
// webhook does: 2xx is delivered (the body is not read beyond its head), 5xx, 408, 429 and
// no answer are retryable (429 with RetryAfter), other statuses Permanent with the answer
// quoted. hint, when the answer is a 401 or 403, says what to fix.
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
	if hint != "" && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
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

// opened reports whether a failure was sent for the incident; the follow-ups of an
// incident (recovery, a passing deploy, an action's result) go out only then, unless the
// notifier's events list names them.
const stOpened = "opened"

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
