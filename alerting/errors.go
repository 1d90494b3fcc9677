package alerting

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/backoff"
)

// Error is a failed delivery attempt: which notifier, which step, what the far end said,
// and whether a retry can help. It never holds a token, routing key or signing secret.
type Error struct {
	Notifier string
	// Op is the step that failed: "chat.postMessage", "files upload",
	// "POST https://ci.example/rollback", "new".
	Op string
	// StatusCode is the HTTP status the far end answered; 0 when there was no answer.
	StatusCode int
	// Permanent: retrying the same request cannot succeed (4xx other than 408 and 429, and
	// 409 for a webhook; invalid_auth, channel_not_found, bad configuration).
	Permanent bool
	// RetryAfter is how long a 429 or 503 asked us to wait; 0 when it did not say.
	RetryAfter time.Duration
	// MayHaveArrived (webhooks): this attempt, or an earlier one of the same event, was
	// sent whole and no answer refused it (it timed out, the connection died, or the
	// receiver said 409, still working on it): the receiver may have acted. False when
	// every attempt was refused by an answer or never left this machine (DNS, a refused
	// connection, a TLS handshake): then it did not.
	MayHaveArrived bool
	// refused is set when the receiver refused the message for its content (Slack's
	// invalid_blocks, a Discord or Teams 400): what it said, in short. The same event in
	// the minimal form the service always takes can still go through (see postOrMinimal).
	refused string
	msg     string
	err     error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Notifier != "" {
		fmt.Fprintf(&b, "notifier %s: ", e.Notifier)
	}
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(e.msg)
	if e.err != nil {
		if e.msg != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.err }

// RetryAfter reports how long the far end asked us to wait (a 429 or 503 with Retry-After).
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	return 0, false
}

// MayHaveArrived reports whether the receiver may have the request and act on it: see
// Error.MayHaveArrived.
func MayHaveArrived(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.MayHaveArrived
}

// Permanent reports whether retrying cannot help: a 4xx other than 408 and 429, Slack's
// invalid_auth or channel_not_found, a configuration error, a dry run, a skip. Everything else —
// 5xx, 429, network errors, timeouts, garbage answers — is worth retrying with backoff.
func Permanent(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Permanent
	}
	return errors.Is(err, ErrDryRun) || errors.Is(err, ErrSkipped)
}

// refusedContent is what the receiver said when it refused the message for its content
// ("" for any other error): see Error.refused.
func refusedContent(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.refused
	}
	return ""
}

// ErrDryRun is what Deliver returns, wrapped in a *DryRunError, when it did not call
// anything because the notifier (dry_run: true) or, for a rollback or halt webhook, the
// event (Event.DryRun) is in dry run. It is not a failure: record the DryRunError's
// message ("would have called POST https://…") and do not retry.
var ErrDryRun = errors.New("dry run: not sent")

// DryRunError says what a dry-run Deliver would have done. errors.Is(err, ErrDryRun).
type DryRunError struct {
	Notifier string
	Method   string // "POST"
	URL      string // query and credentials removed
	Action   string // rollback, halt, or ""
	// What is a one-line description for the log and the status page.
	What string
}

func (e *DryRunError) Error() string {
	s := fmt.Sprintf("notifier %s: dry run: would have called %s %s", e.Notifier, e.Method, e.URL)
	if e.Method == "" && e.URL == "" {
		s = fmt.Sprintf("notifier %s: dry run: would have sent it", e.Notifier)
	}
	if e.Action != "" {
		s += " (" + e.Action + ")"
	}
	if e.What != "" {
		s += ": " + e.What
	}
	return s
}

func (e *DryRunError) Is(target error) bool { return target == ErrDryRun }

// ErrSkipped is what Deliver returns, wrapped in a *SkippedError, when the event is not
// this notifier's to send: a follow-up of an incident it did not post (a deploy that passed
// with nothing failing before it, the all-clear of a failure whose message never reached
// the channel). Nothing was sent and nothing will be: it is not a delivery, and not a
// failure. Record the SkippedError's message (why) and do not retry.
var ErrSkipped = errors.New("skipped: not sent")

// SkippedError says why Deliver sent nothing. errors.Is(err, ErrSkipped).
type SkippedError struct {
	Notifier string
	Event    string
	// Why is what the event follows, or does not: "it follows no incident this notifier posted".
	Why string
}

func (e *SkippedError) Error() string {
	return fmt.Sprintf("notifier %s: %s not sent: %s", e.Notifier, e.Event, e.Why)
}

func (e *SkippedError) Is(target error) bool { return target == ErrSkipped }

// unopened is what Deliver returns for a follow-up of an incident the notifier has nothing
// of to follow (no thread, no alert): skipped, why with fmt's arguments; but in a dry run
// that announced the incident's failure, a follow-up is announced as it would be sent.
func (b *base) unopened(ev *Event, st State, why string, args ...any) error {
	if b.dryRun && st[stDryRun] != "" {
		return b.dryRunError(ev, st, "", "", "", ev.Name+" for "+describeSubject(ev)+", after the failure this dry run announced")
	}
	return b.skipped(ev, why, args...)
}

// skipped is the SkippedError of ev: why, with fmt's arguments.
func (b *base) skipped(ev *Event, why string, args ...any) error {
	return &SkippedError{Notifier: b.name, Event: ev.Name, Why: fmt.Sprintf(why, args...)}
}

func permanentf(err error, notifier, op, format string, args ...any) *Error {
	return &Error{Notifier: notifier, Op: op, Permanent: true, msg: fmt.Sprintf(format, args...), err: err}
}

func retryablef(err error, notifier, op, format string, args ...any) *Error {
	return &Error{Notifier: notifier, Op: op, msg: fmt.Sprintf(format, args...), err: err}
}

// statusError classifies an HTTP answer that was not a success.
func statusError(notifier, op string, status int, header http.Header, body []byte, now time.Time) *Error {
	e := &Error{Notifier: notifier, Op: op, StatusCode: status}
	e.msg = fmt.Sprintf("answered %d %s", status, http.StatusText(status))
	if q := quoteBody(body); q != "" {
		e.msg += ": " + q
	}
	switch {
	case status == http.StatusTooManyRequests, status == http.StatusServiceUnavailable:
		// A 503's Retry-After is how long the receiver expects to be down (RFC 9110).
		e.RetryAfter, _ = parseRetryAfter(header.Get("Retry-After"), now)
	case status == http.StatusRequestTimeout, status >= 500:
	case status >= 300 && status < 400:
		e.Permanent = true
		if loc := header.Get("Location"); loc != "" {
			e.msg += fmt.Sprintf(" (redirect to %s: redirects are not followed, configure the final URL)", configs.RedactURL(loc))
		}
	default:
		e.Permanent = true
	}
	return e
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP-date, a date at
// least a second away (a receiver's clock a little behind ours still asked for a wait).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	d, ok := backoff.RetryAfter(v, now)
	if ok && !isSeconds(v) {
		d = max(d, time.Second).Round(time.Second)
	}
	return d, ok
}

// isSeconds says whether a Retry-After value is delay seconds, not a date.
func isSeconds(v string) bool {
	_, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return err == nil
}

// maxQuote is how much of an answer's body an error quotes.
const maxQuote = 200

// quoteBody quotes the start of a response body for an error message: control characters
// and runs of white space become one space, invalid UTF-8 is replaced, at most maxQuote
// bytes, marked when cut.
func quoteBody(b []byte) string {
	if len(b) > 4*maxQuote {
		b = b[:4*maxQuote]
	}
	s := strings.Join(strings.FieldsFunc(strings.ToValidUTF8(string(b), "\uFFFD"), func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r)
	}), " ")
	if s == "" {
		return ""
	}
	if len(s) > maxQuote {
		cut := maxQuote
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return "«" + s + "»"
}

// transportError describes a request that got no answer, without the URL's query
// (url.Error prints the whole URL).
func transportError(ctx context.Context, notifier, op string, err error, timeout time.Duration) *Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, errTooLarge) {
		return retryablef(err, notifier, op, "answer too large")
	}
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	if errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) {
		// The receiver answered; this machine does not trust it, and asking again will not
		// change that (it was called no answer and retried to max_attempts).
		return permanentf(err, notifier, op, "the receiver's certificate is not trusted here (add its CA to the system's trust store, or point SSL_CERT_FILE at a bundle with it)")
	}
	var rh tls.RecordHeaderError
	if errors.Is(err, http.ErrSchemeMismatch) || errors.As(err, &rh) {
		// An https URL on a port that speaks plain HTTP (or something else): a
		// configuration error, which every retry meets again.
		return permanentf(err, notifier, op, "the receiver does not speak TLS on this port (is the URL meant to be http://?)")
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return retryablef(err, notifier, op, "no answer within the %s per-attempt timeout (or the caller's deadline)", timeout)
	}
	return retryablef(err, notifier, op, "no answer")
}
