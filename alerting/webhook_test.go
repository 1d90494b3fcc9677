package alerting_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

func webhookConfig(url string) *configs.Notifier {
	return &configs.Notifier{Type: configs.NotifierWebhook, Name: "rollback-web", URL: url,
		Secret: loopback.WebhookSecret, Timeout: 2 * time.Second, MaxAttempts: 8}
}

func TestWebhookDeliversSignedPayload(t *testing.T) {
	t.Parallel()
	rx := loopback.NewWebhook(t)
	cfg := webhookConfig(rx.URL())
	cfg.Headers = map[string]string{"X-Team": "payments"}
	n := newNotifier(t, cfg, nil)
	ev := deployFailed()
	before := time.Now().Unix()
	if err := n.Deliver(t.Context(), ev, alerting.State{}); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	got := rx.Deliveries()
	if len(got) != 1 || !got[0].Accepted {
		t.Fatalf("receiver got %d deliveries (%+v), want 1 accepted", len(got), got)
	}
	d := got[0]
	// The receiver verified the signature with the shared secret, or it would have answered 401.
	if d.Key != "d-42:deploy_failed" || d.Event != "deploy_failed" {
		t.Errorf("Idempotency-Key %q, X-Vigil-Event %q", d.Key, d.Event)
	}
	if ts, _ := strconv.ParseInt(d.Timestamp, 10, 64); ts < before || ts > time.Now().Unix() {
		t.Errorf("X-Vigil-Timestamp %q is not now in unix seconds", d.Timestamp)
	}
	// The receiver checked the signature by the documented formula, not with alerting.Verify;
	// here it is once more, written out: the header carries exactly one value, this one.
	m := hmac.New(sha256.New, []byte(loopback.WebhookSecret))
	m.Write([]byte(d.Timestamp + "." + string(d.Body)))
	if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); d.Signature != want {
		t.Errorf("X-Vigil-Signature %q, want %q", d.Signature, want)
	}
	if ct := d.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if d.Header.Get("X-Team") != "payments" {
		t.Errorf("configured header missing: %v", d.Header)
	}
	p := d.Payload
	if p["event"] != "deploy_failed" || p["location"] != "local" {
		t.Errorf("payload %v", p)
	}
	dep, _ := p["deploy"].(map[string]any)
	for k, v := range map[string]string{"id": "d-42", "service": "web", "version": "v2.1.0", "environment": "prod"} {
		if dep[k] != v {
			t.Errorf("deploy.%s = %v, want %s", k, dep[k], v)
		}
	}
	checks, _ := p["failed_checks"].([]any)
	if len(checks) != 2 {
		t.Fatalf("failed_checks %v", p["failed_checks"])
	}
	first, _ := checks[0].(map[string]any)
	if first["name"] != "home" || !strings.Contains(first["summary"].(string), "app.min.js:1:2045") || first["run_url"] != "http://vigil.example/runs/981" {
		t.Errorf("failed_checks[0] = %v", first)
	}
	// sent_at is when the event was queued (the same in every attempt, also after a
	// restart); X-Vigil-Timestamp is when this attempt was signed.
	if p["sent_at"] != "2026-01-01T12:00:03Z" {
		t.Errorf("sent_at %v; want the event's time to the second, 2026-01-01T12:00:03Z", p["sent_at"])
	}
	if signed, err := strconv.ParseInt(d.Timestamp, 10, 64); err != nil || time.Since(time.Unix(signed, 0)).Abs() > time.Minute {
		t.Errorf("X-Vigil-Timestamp %s is not the time of signing", d.Timestamp)
	}
	if strings.Contains(string(d.Body), "screenshot") {
		t.Errorf("the webhook body carries the screenshot")
	}
}

func TestWebhookWrongSecretIsRejectedAndPermanent(t *testing.T) {
	t.Parallel()
	rx := loopback.NewWebhook(t)
	cfg := webhookConfig(rx.URL())
	cfg.Secret = "not-the-shared-secret"
	n := newNotifier(t, cfg, nil)
	err := n.Deliver(t.Context(), deployFailed(), alerting.State{})
	if err == nil || !alerting.Permanent(err) {
		t.Fatalf("Deliver = %v, want a permanent error (401)", err)
	}
	if len(rx.Rejected()) != 1 || !strings.Contains(rx.Rejected()[0].Reason, "does not match") {
		t.Errorf("rejections %+v", rx.Rejected())
	}
	if rx.Count("d-42:deploy_failed") != 0 {
		t.Errorf("a badly signed delivery was counted")
	}
	assertNoSecret(t, []string{"not-the-shared-secret", loopback.WebhookSecret}, err.Error())
}

func TestWebhookAnswers(t *testing.T) {
	t.Parallel()
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		fault      loopback.Fault
		permanent  bool
		retryAfter time.Duration // -1: none
	}{
		{"500", loopback.Fault{Status: 500, Body: []byte("db down")}, false, -1},
		{"503", loopback.Fault{Status: 503}, false, -1},
		{"503 with Retry-After", loopback.Fault{Status: 503, RetryAfter: "7"}, false, 7 * time.Second},
		{"408", loopback.Fault{Status: 408}, false, -1},
		{"429 seconds", loopback.Fault{Status: 429, RetryAfter: "7"}, false, 7 * time.Second},
		{"429 http-date", loopback.Fault{Status: 429, RetryAfter: date}, false, 90 * time.Second},
		{"429 without Retry-After", loopback.Fault{Status: 429}, false, -1},
		{"400", loopback.Fault{Status: 400, Body: []byte(`{"error":"unknown deploy"}`)}, true, -1},
		{"404", loopback.Fault{Status: 404}, true, -1},
		{"302 is not followed", loopback.Fault{Status: 302}, true, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rx := loopback.NewWebhook(t)
			n := newNotifier(t, webhookConfig(rx.URL()), nil)
			rx.Fail(tt.fault)
			err := n.Deliver(t.Context(), deployFailed(), alerting.State{})
			if err == nil {
				t.Fatal("Deliver succeeded against a failing receiver")
			}
			if alerting.Permanent(err) != tt.permanent {
				t.Errorf("Permanent(%v) = %v, want %v", err, !tt.permanent, tt.permanent)
			}
			d, ok := alerting.RetryAfter(err)
			switch {
			case tt.retryAfter < 0 && ok:
				t.Errorf("RetryAfter = %v, want none", d)
			case tt.retryAfter >= 0 && (!ok || d < tt.retryAfter-2*time.Second || d > tt.retryAfter):
				t.Errorf("RetryAfter = %v %v, want %v", d, ok, tt.retryAfter)
			}
			if !strings.Contains(err.Error(), strconv.Itoa(tt.fault.Status)) {
				t.Errorf("error %q does not say the status", err)
			}
			if len(tt.fault.Body) > 0 && !strings.Contains(err.Error(), string(tt.fault.Body[:5])) {
				t.Errorf("error %q does not quote the answer", err)
			}
			if rx.Attempts("d-42:deploy_failed") != 1 {
				t.Errorf("receiver saw %d attempts, want 1 (one attempt per Deliver)", rx.Attempts("d-42:deploy_failed"))
			}
			// The next attempt, once the receiver is well, delivers with the same key.
			if err := n.Deliver(t.Context(), deployFailed(), alerting.State{}); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if rx.Count("d-42:deploy_failed") != 1 || rx.Attempts("d-42:deploy_failed") != 2 {
				t.Errorf("accepted %d, attempts %d; want 1 and 2", rx.Count("d-42:deploy_failed"), rx.Attempts("d-42:deploy_failed"))
			}
		})
	}
}

func TestWebhookAttemptIsBoundedByTimeout(t *testing.T) {
	t.Parallel()
	for _, f := range []loopback.Fault{{Hang: true}, {Status: 500, Stall: true}} {
		rx := loopback.NewWebhook(t)
		cfg := webhookConfig(rx.URL())
		cfg.Timeout = 300 * time.Millisecond
		n := newNotifier(t, cfg, nil)
		rx.Fail(f)
		start := time.Now()
		err := n.Deliver(t.Context(), deployFailed(), alerting.State{})
		took := time.Since(start)
		if err == nil || alerting.Permanent(err) {
			t.Fatalf("%+v: Deliver = %v, want a retryable error", f, err)
		}
		if took > 10*time.Second { // not a speed: the timeout ended it (margin for -race under load)
			t.Fatalf("%+v: Deliver took %v with a 300ms timeout", f, took)
		}
		if f.Hang && !strings.Contains(err.Error(), "timeout") {
			t.Errorf("error %q does not say it timed out", err)
		}
	}
	// A receiver that answers 200 and then stalls the body has answered: delivered at once.
	rx := loopback.NewWebhook(t)
	cfg := webhookConfig(rx.URL())
	cfg.Timeout = time.Minute // far from the stalled body's answer: waiting for it would show
	n := newNotifier(t, cfg, nil)
	rx.Fail(loopback.Fault{Status: 200, Stall: true})
	start := time.Now()
	if err := n.Deliver(t.Context(), deployFailed(), alerting.State{}); err != nil {
		t.Fatalf("200 then a stalled body: %v", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("Deliver waited %v for a body it does not need", took)
	}
}

func TestWebhookCallerDeadline(t *testing.T) {
	t.Parallel()
	rx := loopback.NewWebhook(t)
	n := newNotifier(t, webhookConfig(rx.URL()), nil) // 2s per attempt
	rx.Fail(loopback.Fault{Hang: true})
	start := time.Now()
	err := n.Deliver(ctxTimeout(t, 200*time.Millisecond), deployFailed(), alerting.State{})
	if err == nil || time.Since(start) > time.Second {
		t.Fatalf("Deliver = %v after %v; the caller's 200ms deadline must bound it", err, time.Since(start))
	}
}

func TestWebhookHugeAnswer(t *testing.T) {
	t.Parallel()
	rx := loopback.NewWebhook(t)
	n := newNotifier(t, webhookConfig(rx.URL()), nil)
	rx.Fail(loopback.Fault{Status: 502, Body: []byte("<html>bad gateway"), BodySize: 200 << 20})
	start := time.Now()
	err := n.Deliver(t.Context(), deployFailed(), alerting.State{})
	if err == nil || alerting.Permanent(err) {
		t.Fatalf("Deliver = %v, want retryable", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("reading a 200 MiB answer took %v: the read is not capped", time.Since(start))
	}
	if len(err.Error()) > 500 || !strings.Contains(err.Error(), "bad gateway") {
		t.Errorf("error is %d bytes: %.300q", len(err.Error()), err)
	}
}

func TestWebhookReceiverDownThenUp(t *testing.T) {
	t.Parallel()
	rx := loopback.NewWebhook(t)
	n := newNotifier(t, webhookConfig(rx.URL()), nil)
	rx.Down()
	err := n.Deliver(t.Context(), deployFailed(), alerting.State{})
	if err == nil || alerting.Permanent(err) {
		t.Fatalf("receiver down: Deliver = %v, want retryable", err)
	}
	if err := rx.Up(); err != nil {
		t.Fatal(err)
	}
	if err := n.Deliver(t.Context(), deployFailed(), alerting.State{}); err != nil {
		t.Fatalf("receiver up again: %v", err)
	}
	if rx.Count("d-42:deploy_failed") != 1 {
		t.Errorf("count %d, want 1", rx.Count("d-42:deploy_failed"))
	}
}

func TestActionWebhooksFireOnlyOnTheirVerdict(t *testing.T) {
	t.Parallel()
	rx := loopback.NewWebhook(t)
	for _, tt := range []struct {
		action string
		fires  string
	}{{"rollback", configs.EventDeployFailed}, {"halt", configs.EventDeployHalted}} {
		cfg := webhookConfig(rx.URL())
		cfg.Name, cfg.Action = tt.action+"-web", tt.action
		cfg.Events = slices.Clone(configs.Events) // a list that asks for everything changes nothing
		n := newNotifier(t, cfg, nil)
		for _, ev := range append(slices.Clone(configs.Events), alerting.EventActionResult) {
			if got := n.Wants(ev); got != (ev == tt.fires) {
				t.Errorf("%s webhook: Wants(%s) = %v", tt.action, ev, got)
			}
		}
		for _, name := range []string{configs.EventDeployInconclusive, configs.EventDeployPassed, configs.EventCheckFailed} {
			ev := deployFailed()
			ev.Name, ev.Key = name, "d-42:"+name
			err := n.Deliver(t.Context(), ev, alerting.State{})
			if err == nil || !alerting.Permanent(err) {
				t.Errorf("%s webhook, Deliver(%s) = %v, want a permanent refusal", tt.action, name, err)
			}
		}
		ev := deployFailed()
		ev.Name, ev.Key = tt.fires, "d-42:"+tt.fires
		if err := n.Deliver(t.Context(), ev, alerting.State{}); err != nil {
			t.Fatalf("%s webhook, Deliver(%s): %v", tt.action, tt.fires, err)
		}
		if d := rx.Deliveries(); d[len(d)-1].Payload["action"] != tt.action {
			t.Errorf("payload action = %v", d[len(d)-1].Payload["action"])
		}
	}
	if got := len(rx.Deliveries()); got != 2 {
		t.Errorf("receiver got %d deliveries, want 2 (one rollback, one halt)", got)
	}

	// A plain webhook takes its events list, or every event.
	plain := newNotifier(t, webhookConfig(rx.URL()), nil)
	listed := webhookConfig(rx.URL())
	listed.Events = []string{configs.EventDeployFailed}
	only := newNotifier(t, listed, nil)
	for _, ev := range configs.Events {
		if !plain.Wants(ev) {
			t.Errorf("plain webhook does not want %s", ev)
		}
		if only.Wants(ev) != (ev == configs.EventDeployFailed) {
			t.Errorf("events [deploy_failed]: Wants(%s) = %v", ev, only.Wants(ev))
		}
	}
	if plain.Wants(alerting.EventActionResult) {
		t.Errorf("a webhook wants action_result by default")
	}
}

func TestWebhookDryRunCallsNothing(t *testing.T) {
	t.Parallel()
	rx := loopback.NewWebhook(t)
	url := rx.URL() + "?token=query-secret"

	notifierDry := webhookConfig(url)
	notifierDry.DryRun = true
	rollbackEventDry := webhookConfig(url)
	rollbackEventDry.Action = "rollback"
	for name, tc := range map[string]struct {
		cfg *configs.Notifier
		ev  func() *alerting.Event
	}{
		"notifier dry_run": {notifierDry, deployFailed},
		"service dry run, rollback webhook": {rollbackEventDry, func() *alerting.Event {
			ev := deployFailed()
			ev.DryRun = true
			return ev
		}},
	} {
		n := newNotifier(t, tc.cfg, nil)
		err := n.Deliver(t.Context(), tc.ev(), alerting.State{})
		if !errors.Is(err, alerting.ErrDryRun) {
			t.Fatalf("%s: Deliver = %v, want ErrDryRun", name, err)
		}
		var dr *alerting.DryRunError
		if !errors.As(err, &dr) || dr.Method != "POST" || !strings.HasPrefix(dr.URL, "http://"+rx.Addr()+"/hook") {
			t.Errorf("%s: DryRunError %+v", name, dr)
		}
		if !strings.Contains(err.Error(), "would have called POST http://"+rx.Addr()) {
			t.Errorf("%s: %q", name, err)
		}
		if !alerting.Permanent(err) {
			t.Errorf("%s: a dry run is retried", name)
		}
		assertNoSecret(t, []string{"query-secret", loopback.WebhookSecret}, err.Error())
	}
	if n := len(rx.Deliveries()) + len(rx.Rejected()); n != 0 {
		t.Fatalf("dry run reached the receiver %d times", n)
	}

	// A service in dry run does not stop plain (informational) webhooks.
	plain := newNotifier(t, webhookConfig(rx.URL()), nil)
	ev := deployFailed()
	ev.DryRun = true
	if err := plain.Deliver(t.Context(), ev, alerting.State{}); err != nil {
		t.Fatalf("plain webhook, service in dry run: %v", err)
	}
}

func TestWebhookErrorsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	rx := loopback.NewWebhook(t)
	secrets := []string{"query-secret", "header-secret", loopback.WebhookSecret}
	logs := &vigiltest.Buffer{}
	cfg := webhookConfig("http://user:pass-secret@" + rx.Addr() + "/hook?token=query-secret")
	cfg.Headers = map[string]string{"Authorization": "Bearer header-secret"}
	secrets = append(secrets, "pass-secret")
	n := newNotifier(t, cfg, logs)
	var texts []string
	rx.Fail(loopback.Fault{Status: 500})
	rx.Fail(loopback.Fault{Status: 400})
	for range 2 {
		if err := n.Deliver(t.Context(), deployFailed(), alerting.State{}); err != nil {
			texts = append(texts, err.Error())
		}
	}
	rx.Down()
	if err := n.Deliver(t.Context(), deployFailed(), alerting.State{}); err != nil {
		texts = append(texts, err.Error())
	}
	if len(texts) != 3 {
		t.Fatalf("got %d errors, want 3: %q", len(texts), texts)
	}
	assertNoSecret(t, secrets, append(texts, logs.String())...)
}

func TestWebhookConfigErrors(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]*configs.Notifier{
		"no secret":       {Type: "webhook", Name: "w", URL: "https://ci.example/hook"},
		"not http":        {Type: "webhook", Name: "w", URL: "ftp://ci.example/hook", Secret: "s"},
		"no host":         {Type: "webhook", Name: "w", URL: "https:///hook", Secret: "s"},
		"reserved header": {Type: "webhook", Name: "w", URL: "https://ci.example/hook", Secret: "s", Headers: map[string]string{"x-vigil-signature": "x"}},
		"unknown action":  {Type: "webhook", Name: "w", URL: "https://ci.example/hook", Secret: "s", Action: "restart"},
		"unknown event":   {Type: "webhook", Name: "w", URL: "https://ci.example/hook", Secret: "s", Events: []string{"deploy_fail"}},
	} {
		_, err := alerting.New(cfg, alerting.Options{})
		if err == nil || !alerting.Permanent(err) || !strings.Contains(err.Error(), "notifiers.w") {
			t.Errorf("%s: New = %v, want a permanent error naming notifiers.w", name, err)
		}
	}
}

// A receiver whose certificate this machine does not trust answered: asking again will not
// change that, so the error is permanent and says what to do (it was "no answer", retried
// to max_attempts).
func TestWebhookUntrustedCertificateIsPermanent(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	err := newNotifier(t, webhookConfig(srv.URL+"/hook"), nil).Deliver(t.Context(), deployFailed(), alerting.State{})
	if err == nil || !alerting.Permanent(err) || !strings.Contains(err.Error(), "SSL_CERT_FILE") {
		t.Errorf("Deliver to an untrusted certificate: %v (permanent %v)", err, alerting.Permanent(err))
	}
}

// A receiver that answers and then dies mid-answer has answered: a 2xx cut short is
// delivered (the status is its word), a 5xx cut short is retried with what came quoted.
func TestWebhookAnswerCutShort(t *testing.T) {
	t.Parallel()
	rx := loopback.NewWebhook(t)
	n := newNotifier(t, webhookConfig(rx.URL()), nil)
	rx.Fail(loopback.Fault{Status: 200, Cut: true, Body: []byte(`{"rollback":"sta`)})
	if err := n.Deliver(t.Context(), deployFailed(), alerting.State{}); err != nil {
		t.Fatalf("200 cut short: %v", err)
	}
	rx.Fail(loopback.Fault{Status: 502, Cut: true, Body: []byte(`bad gate`)})
	err := n.Deliver(t.Context(), deployFailed(), alerting.State{})
	if err == nil || alerting.Permanent(err) || !strings.Contains(err.Error(), "502") || !strings.Contains(err.Error(), "cut short") {
		t.Fatalf("502 cut short: %v; want a retryable error quoting it", err)
	}
}
