package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/vigil-monitor/vigil/configs"
)

// defaultSlackTimeout bounds one attempt: a message, a root update and the screenshots.
const defaultSlackTimeout = 30 * time.Second

// maxSlackAnswer caps how much of one Web API answer is read.
const maxSlackAnswer = 4 << 20

// Slack posts one Block Kit message per deploy verdict or incident, uploads the failure
// screenshots into its thread (files v2 upload flow), and on later events of the incident
// replies in that thread and updates the root message's status. Its State holds the thread
// (channel id and ts), the root's content, and a flag per finished step of each event, so a
// retry after a partial success picks up where the last attempt stopped.
type Slack struct {
	base
	token   string
	channel string
	apiURL  string
	client  *http.Client

	mu        sync.Mutex
	channelID string // the channel's id, as Slack answered a root post (slackadopt.go)
}

// Slack State keys; per-event step flags are "<event key>/<step>".
const (
	slackChannel = "channel" // channel id, as chat.postMessage answered it
	slackTS      = "ts"      // the root message: the incident's thread
	slackTitle   = "title"   // the root's title, from the event that opened it
	slackBody    = "body"    // the root's evidence blocks, JSON
	slackEmoji   = "emoji"   // the incident's current status emoji
	slackStatus  = "status"  // and status line
	slackHistory = "history" // one line per event, shown on the root
	slackFailed  = "failed"  // a failure was posted in this incident
	slackActions = "actions" // what each action webhook did: "notifier\twhat" lines
	slackLinks   = "links"   // the root's context links, mrkdwn, one a line
	slackLine    = "line"    // the root's event in one line (its notification text)
	slackURL     = "url"     // the root's status page
	// slackPlain is the error Slack refused the root's blocks with (invalid_blocks,
	// msg_too_long, …): the root is text alone from then on, its updates too.
	slackPlain = "plain"
)

func newSlack(cfg *configs.Notifier, opts Options) (*Slack, error) {
	p := "notifiers." + cfg.Name
	if !cfg.Token.IsSet() {
		return nil, permanentf(nil, cfg.Name, "new", "%s.token: missing; set a bot token, e.g. token: ${SLACK_TOKEN}", p)
	}
	if cfg.Channel == "" {
		return nil, permanentf(nil, cfg.Name, "new", "%s.channel: missing", p)
	}
	api := cfg.APIURL
	if api == "" {
		api = slack.APIURL
	}
	u, err := url.Parse(api)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, permanentf(nil, cfg.Name, "new", "%s.api_url: want an http or https URL such as https://slack.com/api/", p)
	}
	if !strings.HasSuffix(api, "/") {
		api += "/"
	}
	return &Slack{base: newBase(cfg, opts, defaultSlackTimeout), token: cfg.Token.Value(), channel: cfg.Channel,
		apiURL: api, client: newHTTPClient(opts.Transport)}, nil
}

// slackOpens are the events a Slack notifier opens a thread for when `events` is empty.
var slackOpens = []string{configs.EventDeployFailed, configs.EventDeployHalted, configs.EventDeployInconclusive,
	configs.EventCheckFailed}

// followUp reports whether an event continues an incident rather than opening one.
func followUp(event string) bool {
	return event == configs.EventCheckRecovered || event == configs.EventDeployPassed || event == EventActionResult ||
		configs.ClosesStart(event)
}

// Wants: the events in `events` (default: deploy_failed, deploy_halted,
// deploy_inconclusive, check_failed) open a thread; check_recovered, deploy_passed,
// deploy_cancelled, deploy_superseded and action_result are always wanted, because they
// update the thread of an incident this notifier opened (a deploy_cancelled or
// deploy_superseded, the thread its deploy_started opened). Without such a thread, Deliver posts them only when `events` lists them
// (action_result always: a machine acted on production).
func (s *Slack) Wants(event string) bool {
	if followUp(event) {
		return true
	}
	if len(s.events) > 0 {
		return s.listed(event)
	}
	return slices.Contains(slackOpens, event)
}

// Deliver posts the event (a new root message, or a reply in the incident's thread plus an
// update of the root), then uploads the screenshots into the thread. Each step that
// succeeds is recorded in st, so a retry does not repeat it. A message whose blocks Slack
// refuses for their content is sent as text alone (richOrPlain), and a root so sent stays
// text. A message an earlier attempt sent whole without an answer, or whose attempt was
// cut off, is looked for in the channel or thread before it is sent again (findRoot,
// findReply).
func (s *Slack) Deliver(ctx context.Context, ev *Event, st State) error {
	if err := checkEvent(s.name, ev); err != nil {
		return err
	}
	if st == nil {
		st = State{}
	}
	key := keyOf(ev)
	thread := st[slackTS] != ""
	if !thread && followUp(ev.Name) && ev.Name != EventActionResult && !s.listed(ev.Name) {
		// Nothing to update, and not asked for on its own.
		if st[slackFailed] != "" {
			return s.skipped(ev, "the incident's failure never reached the channel (it was dead-lettered), and an all-clear "+
				"of a failure nobody there saw is not sent")
		}
		return s.unopened(ev, st, "no thread of this notifier's to update: it did not post a failure of its incident; it is sent on its own only when events lists %s", ev.Name)
	}
	if s.dryRun {
		return s.dryRunError(ev, st, http.MethodPost, configs.RedactURL(s.apiURL+"chat.postMessage"), "", ev.Name+" for "+describeSubject(ev))
	}

	ctx, cancel := s.attempt(ctx)
	defer cancel()
	rec := newRecorder(s.client, s.opts.UserAgent, maxSlackAnswer)
	api := slack.New(s.token, slack.OptionAPIURL(s.apiURL), slack.OptionHTTPClient(rec))
	now := s.opts.Now()
	r := render(ev, st[slackFailed] != "")
	failure := slices.Contains(slackOpens, ev.Name)
	// The root shows the latest verdict: a failure's evidence, also when deploy_started
	// opened the thread, and a pass, a cancel or a supersede when nothing failed before it
	// (the root no longer says "Verifying"). A recovery or an action keeps the failure's
	// evidence on the root and only changes its status.
	verdict := failure || ((ev.Name == configs.EventDeployPassed || configs.ClosesStart(ev.Name)) && st[slackFailed] == "")

	if st[key+"/posted"] == "" {
		if !thread {
			if err := setRoot(st, r); err != nil {
				return permanentf(err, s.name, "chat.postMessage", "encoding blocks")
			}
			if failure {
				st[slackFailed] = "1"
			}
			st[slackEmoji], st[slackStatus] = r.emoji, r.status
			st[slackHistory] = historyLine(ev, r, now)
			st[key+"/history"] = "1"
			var ch, ts string
			if mayBePosted(ev, st, key+slackRootSent) {
				ch, ts = s.findRoot(ctx, api, rec, ev, key, st, now) // an earlier attempt may have posted it
			}
			if ts == "" {
				err := s.richOrPlain(ctx, ev, "chat.postMessage", st, slackPlain, func(rich bool) (err error) {
					opts := []slack.MsgOption{slack.MsgOptionBlocks(rootBlocks(st)...), slack.MsgOptionText(r.fallback, false)}
					if !rich {
						opts = []slack.MsgOption{slack.MsgOptionText(plainRoot(st, mentions(ev.Owners)), false)}
					}
					ch, ts, err = api.PostMessageContext(ctx, s.channel, append(opts, s.metadata(ev, key),
						slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())...)
					return err
				})
				if err != nil {
					unanswered(st, key+slackRootSent, rec, err, now)
					return s.classify(ctx, err, rec, asText("chat.postMessage", st[slackPlain]), now)
				}
				s.learn(ch)
			}
			delete(st, key+slackRootSent)
			st[slackChannel], st[slackTS] = ch, ts
			st[key+"/posted"], st[key+"/updated"] = ts, "root"
		} else {
			var ts string
			if mayBePosted(ev, st, key+slackReplySent) {
				ts = s.findReply(ctx, api, rec, ev, key, st, now) // an earlier attempt may have posted it
			}
			if ts == "" {
				err := s.richOrPlain(ctx, ev, "chat.postMessage (thread reply)", st, key+"/plain", func(rich bool) (err error) {
					opts := []slack.MsgOption{slack.MsgOptionBlocks(r.reply...), slack.MsgOptionText(r.fallback, false)}
					if !rich {
						opts = []slack.MsgOption{slack.MsgOptionText(slackPlainText([]string{r.fallback}, "", r.statusURL, st[key+"/plain"]), false)}
					}
					_, ts, err = api.PostMessageContext(ctx, st[slackChannel], append(opts, slack.MsgOptionTS(st[slackTS]), s.metadata(ev, key),
						slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())...)
					return err
				})
				if err != nil {
					unanswered(st, key+slackReplySent, rec, err, now)
					return s.classify(ctx, err, rec, asText("chat.postMessage (thread reply)", st[key+"/plain"]), now)
				}
			}
			delete(st, key+slackReplySent)
			st[key+"/posted"] = ts
		}
	}

	if st[key+"/updated"] == "" {
		if st[key+"/history"] == "" {
			st[slackHistory] = appendHistory(st[slackHistory], historyLine(ev, r, now))
			st[slackEmoji], st[slackStatus] = r.emoji, r.status
			if ev.Name == EventActionResult && len(ev.Actions) > 0 {
				n := ev.Actions[0].Notifier
				setAction(st, n, strings.TrimPrefix(ev.Summary, n+" "))
			}
			if verdict {
				if err := setRoot(st, r); err != nil {
					return permanentf(err, s.name, "chat.update", "encoding blocks")
				}
			}
			if failure {
				st[slackFailed] = "1"
			}
			st[key+"/history"] = "1"
		}
		err := s.richOrPlain(ctx, ev, "chat.update", st, slackPlain, func(rich bool) (err error) {
			// No blocks ([]) takes the root's blocks away: a root Slack refused stays text.
			blocks, txt := rootBlocks(st), rootFallback(st)
			if !rich {
				blocks, txt = []slack.Block{}, plainRoot(st, "")
			}
			_, _, _, err = api.UpdateMessageContext(ctx, st[slackChannel], st[slackTS], slack.MsgOptionBlocks(blocks...),
				slack.MsgOptionText(txt, false))
			return err
		})
		var se slack.SlackErrorResponse
		switch {
		case errors.As(err, &se) && slices.Contains([]string{"message_not_found", "cant_update_message", "edit_window_closed"}, se.Err):
			// Someone deleted or froze the root; the reply in the thread carries the news.
			s.log.WarnContext(ctx, "slack: root message not updated", "incident", ev.Incident, "error", se.Err)
		case err != nil:
			return s.classify(ctx, err, rec, asText("chat.update", st[slackPlain]), now)
		}
		st[key+"/updated"] = "1"
	}

	return s.screenshots(ctx, api, rec, ev, key, st, now)
}

// slackPace is how long a lane waits after Slack said ratelimited without a Retry-After:
// Slack takes about one message a second per channel.
const slackPace = time.Second

// slackRetryable are Web API error codes worth retrying; other codes (invalid_auth,
// channel_not_found, not_in_channel, missing_scope, invalid_blocks, ...) are Permanent.
// (Deliver meets a content refusal such as invalid_blocks by sending the text alone first:
// slackContentErrors.)
var slackRetryable = []string{"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
	"request_timeout", "team_added_to_org", "upload_failed"}

// slackHints say what to do about the common permanent errors.
var slackHints = map[string]string{
	"invalid_auth":      "the token is wrong or revoked; set a valid bot token",
	"not_authed":        "no token reached Slack; set token",
	"token_revoked":     "the token was revoked; set a new bot token",
	"token_expired":     "the token expired; set a new bot token",
	"account_inactive":  "the bot's account is deactivated",
	"channel_not_found": "the channel does not exist or the bot cannot see it; check channel and invite the bot",
	"not_in_channel":    "invite the bot to the channel",
	"is_archived":       "the channel is archived",
	"missing_scope":     "the bot token lacks a scope (chat:write, files:write)",
}

func (s *Slack) classify(ctx context.Context, err error, rec *recorder, op string, now time.Time) error {
	var rl *slack.RateLimitedError
	if rec.status == http.StatusTooManyRequests || errors.As(err, &rl) {
		// Retry-After read as for every receiver: slack-go's RateLimitedError overflows on a
		// huge value and fails on an HTTP-date.
		e := statusError(s.name, op, http.StatusTooManyRequests, rec.header, rec.head, now)
		e.msg = "rate limited by Slack: " + e.msg
		return e
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		return statusError(s.name, op, sc.Code, rec.header, rec.head, now)
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		e := &Error{Notifier: s.name, Op: op, StatusCode: rec.status, Permanent: !slices.Contains(slackRetryable, se.Err),
			msg: fmt.Sprintf("Slack said %q", se.Err)}
		if h := slackHints[se.Err]; h != "" {
			e.msg += ": " + h
		}
		if m := se.ResponseMetadata.Messages; len(m) > 0 {
			// What Slack found wrong, where: "[ERROR] must be less than 3001 characters
			// [json-pointer:/blocks/3/text/text]".
			e.msg += " " + quoteBody([]byte(strings.Join(m, "; ")))
		}
		if se.Err == "ratelimited" || se.Err == "rate_limited" {
			// Posting too fast can be answered 200 {"ok":false}, with the wait in Retry-After
			// or (too many messages to the channel) without one: the lane pauses either way,
			// or a burst of pages spends its attempts on Slack's limit.
			e.RetryAfter, _ = parseRetryAfter(rec.header.Get("Retry-After"), now)
			if e.RetryAfter <= 0 {
				e.RetryAfter = slackPace
			}
			e.msg = "rate limited by Slack: " + e.msg
		}
		return e
	}
	if errors.Is(err, errTooLarge) {
		return retryablef(nil, s.name, op, "Slack's answer is over %d MiB; is api_url a Slack Web API?", maxSlackAnswer>>20)
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return transportError(ctx, s.name, op, rec.cause(err), s.timeout)
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if rec.status != 0 && (errors.As(err, &syn) || errors.As(err, &typ) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return retryablef(nil, s.name, op, "answered %d with something that is not a Web API answer: %s",
			rec.status, orEmpty(quoteBody(rec.head)))
	}
	if rec.status == 0 {
		return transportError(ctx, s.name, op, rec.cause(err), s.timeout)
	}
	return retryablef(err, s.name, op, "")
}

func orEmpty(q string) string {
	if q == "" {
		return "(empty)"
	}
	return q
}

// fileName keeps a check name safe as a file name.
func fileName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "check"
	}
	return b.String()
}
