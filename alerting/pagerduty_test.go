package alerting_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

func pagerDutyConfig(url string) *configs.Notifier {
	return &configs.Notifier{Type: configs.NotifierPagerDuty, Name: "oncall", RoutingKey: loopback.PagerDutyRoutingKey,
		Severity: "error", URL: url}
}

func newPagerDuty(t *testing.T) (*loopback.PagerDuty, alerting.Notifier, *vigiltest.Buffer) {
	rx := loopback.NewPagerDuty(t)
	logs := &vigiltest.Buffer{}
	return rx, newNotifier(t, pagerDutyConfig(rx.URL()), logs), logs
}

func TestPagerDutyCheckTriggerAndResolveShareDedupKey(t *testing.T) {
	t.Parallel()
	rx, n, _ := newPagerDuty(t)
	st := alerting.State{}
	if err := n.Deliver(t.Context(), checkEvent(configs.EventCheckFailed, "3"), st); err != nil {
		t.Fatalf("trigger: %v", err)
	}
	// A retry of the same failure, as after a lost answer: PagerDuty folds it into the alert.
	if err := n.Deliver(t.Context(), checkEvent(configs.EventCheckFailed, "3"), st); err != nil {
		t.Fatalf("trigger again: %v", err)
	}
	if err := n.Deliver(t.Context(), checkEvent(configs.EventCheckRecovered, "3"), st); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	evs := rx.Events()
	if len(evs) != 3 || evs[0].Action != "trigger" || evs[2].Action != "resolve" {
		t.Fatalf("events %+v", evs)
	}
	key := alerting.DedupKey("check:home:3")
	for _, e := range evs {
		if e.DedupKey != key {
			t.Errorf("%s dedup_key %q, want %q", e.Action, e.DedupKey, key)
		}
	}
	p := evs[0].Payload
	if p.Severity != "error" || p.Class != configs.EventCheckFailed || p.Component != "home" ||
		!strings.Contains(p.Summary, "home") || !strings.Contains(p.Summary, "failing for 2 runs") {
		t.Errorf("trigger payload %+v", p)
	}
	if checks, _ := p.Details["failed_checks"].([]any); len(checks) != 1 {
		t.Errorf("custom_details %v", p.Details)
	}
	if rx.Open(key) {
		t.Errorf("alert %s still open after the recovery", key)
	}
	// The next incident of the same check is a new alert.
	if err := n.Deliver(t.Context(), checkEvent(configs.EventCheckFailed, "4"), alerting.State{}); err != nil {
		t.Fatal(err)
	}
	if !rx.Open(alerting.DedupKey("check:home:4")) {
		t.Errorf("a new incident did not open a new alert")
	}
}

func TestPagerDutyDeployIncident(t *testing.T) {
	t.Parallel()
	rx, n, _ := newPagerDuty(t)
	st := alerting.State{}
	if err := n.Deliver(t.Context(), deployFailed(), st); err != nil {
		t.Fatal(err)
	}
	key := alerting.DedupKey("d-42")
	if !rx.Open(key) {
		t.Fatalf("deploy_failed did not open alert %s: %+v", key, rx.Events())
	}
	trig := rx.Events()[0]
	if trig.Payload.Group != "prod" || !strings.HasPrefix(trig.Payload.Source, "web") || trig.ClientURL != "http://vigil.example/deploys/d-42" ||
		!strings.Contains(trig.Payload.Summary, "v2.1.0") || len(trig.Links) != 6 {
		t.Errorf("trigger %+v payload %+v", trig, trig.Payload)
	}
	// Status page, runbook, the pipeline's two links, then the runs: what the responder opens.
	d := trig.Payload.Details
	if d["runbook_url"] != "https://wiki.example/runbooks/web" || d["checks_passed"] != "4 of 6" || d["detected_after_seconds"] != 1.4 {
		t.Errorf("custom_details lack the triage: %v", d)
	}
	// action_result is none of PagerDuty's business: skipped.
	if err := n.Deliver(t.Context(), actionResult(), st); !errors.Is(err, alerting.ErrSkipped) {
		t.Fatalf("action_result: %v; want it skipped", err)
	}
	// A later deploy of the service passes, carrying the incident: resolve.
	if err := n.Deliver(t.Context(), resolvedBy(), st); err != nil {
		t.Fatal(err)
	}
	if rx.Open(key) || len(rx.Events()) != 2 || rx.Events()[1].DedupKey != key {
		t.Fatalf("resolve: %+v", rx.Events())
	}
	// A deploy that passes with no alert of ours sends nothing, and says it skipped it.
	fresh := resolvedBy()
	fresh.Incident = "d-43"
	if err := n.Deliver(t.Context(), fresh, alerting.State{}); !errors.Is(err, alerting.ErrSkipped) {
		t.Fatalf("a pass with no alert of ours: %v; want it skipped", err)
	}
	// And a resolution already sent is not sent again: the same event once more is an
	// attempt whose answer was not recorded, and it was delivered.
	if err := n.Deliver(t.Context(), resolvedBy(), st); err != nil {
		t.Fatal(err)
	}
	if len(rx.Events()) != 2 {
		t.Errorf("%d events, want 2", len(rx.Events()))
	}
}

func TestPagerDutyChangeEventOnDeployStarted(t *testing.T) {
	t.Parallel()
	rx, n, _ := newPagerDuty(t)
	ev := &alerting.Event{Name: configs.EventDeployStarted, Key: "d-42:deploy_started", Incident: "d-42",
		OccurredAt: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC),
		Deploy:     &alerting.Deploy{ID: "d-42", Service: "web", Version: "v2.1.0", Environment: "prod", Commit: "abc1234"},
		Service:    "web", StatusURL: "http://vigil.example/deploys/d-42"}
	if err := n.Deliver(t.Context(), ev, alerting.State{}); err != nil {
		t.Fatal(err)
	}
	ch := rx.Changes()
	if len(ch) != 1 || len(rx.Events()) != 0 {
		t.Fatalf("changes %d, events %d", len(ch), len(rx.Events()))
	}
	c := ch[0]
	if c.Payload.Summary != "Deploy of web v2.1.0 to prod" || c.Payload.Timestamp != "2026-01-01T12:00:00Z" ||
		c.Payload.Details["deploy_id"] != "d-42" || c.Payload.Details["commit"] != "abc1234" ||
		len(c.Links) != 1 || c.Links[0].Href != "http://vigil.example/deploys/d-42" {
		t.Errorf("change event %+v", c)
	}
}

func TestPagerDutyWants(t *testing.T) {
	t.Parallel()
	n := newNotifier(t, pagerDutyConfig(""), nil)
	for _, ev := range configs.Events {
		if n.Wants(ev) != !configs.ClosesStart(ev) {
			t.Errorf("default Wants(%s) = %v; want every event but deploy_cancelled and deploy_superseded (nothing was paged)", ev, n.Wants(ev))
		}
	}
	if n.Wants(alerting.EventActionResult) {
		t.Errorf("PagerDuty wants action_result")
	}
	cfg := pagerDutyConfig("")
	cfg.Events = []string{configs.EventCheckFailed}
	n = newNotifier(t, cfg, nil)
	if !n.Wants(configs.EventCheckRecovered) || !n.Wants(configs.EventDeployPassed) || n.Wants(configs.EventDeployStarted) || n.Wants(configs.EventDeployFailed) {
		t.Errorf("events [check_failed]: a trigger event must bring its resolution, and nothing else")
	}
	cfg.Events = []string{configs.EventDeployStarted}
	n = newNotifier(t, cfg, nil)
	if n.Wants(configs.EventCheckRecovered) || n.Wants(configs.EventDeployCancelled) || n.Wants(configs.EventDeploySuperseded) {
		t.Errorf("events [deploy_started] wants resolutions, a cancel or a supersede")
	}
}

func TestPagerDutyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		fault      loopback.Fault
		permanent  bool
		retryAfter time.Duration
		want       string
		deadline   time.Duration
	}{
		{"429", loopback.Fault{Status: 429, RetryAfter: "5"}, false, 5 * time.Second, "429", 2 * time.Second},
		{"500", loopback.Fault{Status: 500, Body: []byte(`{"status":"error"}`)}, false, 0, `{"status":"error"}`, 2 * time.Second},
		{"403", loopback.Fault{Status: 403}, true, 0, "403", 2 * time.Second},
		{"garbage 202", loopback.Fault{Status: 202, Body: []byte("<html>hello</html>")}, false, 0, "not an Events API answer", 2 * time.Second},
		{"huge 202", loopback.Fault{Status: 202, Body: []byte(`{"status":"`), BodySize: 32 << 20}, false, 0, "over 1024 KiB", 20 * time.Second},
		{"huge 503", loopback.Fault{Status: 503, BodySize: 32 << 20}, false, 0, "503", 20 * time.Second},
		{"hang", loopback.Fault{Hang: true}, false, 0, "timeout", 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rx, n, logs := newPagerDuty(t)
			rx.Fail("/v2/enqueue", tt.fault)
			start := time.Now()
			err := n.Deliver(ctxTimeout(t, tt.deadline), deployFailed(), alerting.State{})
			if err == nil || alerting.Permanent(err) != tt.permanent {
				t.Fatalf("Deliver = %v, want permanent=%v", err, tt.permanent)
			}
			if d, _ := alerting.RetryAfter(err); d != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", d, tt.retryAfter)
			}
			if !strings.Contains(err.Error(), tt.want) || len(err.Error()) > 600 {
				t.Errorf("error %.400q does not say %q", err, tt.want)
			}
			// Not a speed: the deadline ended the attempt; the margin is for -race under load.
			if took := time.Since(start); took > tt.deadline+10*time.Second {
				t.Errorf("took %v, past its %v deadline", took, tt.deadline)
			}
			assertNoSecret(t, []string{loopback.PagerDutyRoutingKey}, err.Error(), logs.String())
			if len(rx.Events()) != 0 {
				t.Errorf("the receiver accepted an event it failed")
			}
		})
	}
	// An empty 202 (a proxy that keeps PagerDuty's answer) took the event: the trigger is
	// delivered and recorded, so the resolve goes out later (it was an error, dead-lettered,
	// and the resolve skipped: the incident stayed open for good).
	for _, st := range []alerting.State{{}, nil} {
		rx, n, _ := newPagerDuty(t)
		rx.Fail("/v2/enqueue", loopback.Fault{Status: 202, Body: []byte(" ")})
		if st == nil {
			st = alerting.State{}
		}
		if err := n.Deliver(t.Context(), deployFailed(), st); err != nil {
			t.Fatalf("an empty 202: %v", err)
		}
		if len(st) == 0 {
			t.Errorf("an empty 202: the trigger was not recorded in the alert state: %v", st)
		}
	}
	// A 202 whose answer the connection cut short (a proxy or PagerDuty's edge dying
	// mid-answer) took the event: the 202 is PagerDuty's word. It was retried as "not an
	// Events API answer", and a cut that kept happening dead-lettered a trigger PagerDuty
	// had, and so skipped its resolve.
	for _, ev := range []*alerting.Event{deployFailed(), {Name: configs.EventDeployStarted, Key: "d-42:deploy_started", Incident: "d-42",
		Deploy: &alerting.Deploy{ID: "d-42", Service: "web", Version: "v2"}}} {
		rx, n, _ := newPagerDuty(t)
		path := "/v2/enqueue"
		if ev.Name == configs.EventDeployStarted {
			path = "/v2/change/enqueue"
		}
		rx.Fail(path, loopback.Fault{Status: 202, Cut: true, Body: []byte(`{"status":"success","mess`)})
		st := alerting.State{}
		if err := n.Deliver(t.Context(), ev, st); err != nil {
			t.Fatalf("%s: a 202 cut short: %v", ev.Name, err)
		}
		if ev.Name == configs.EventDeployFailed && len(st) == 0 {
			t.Errorf("a 202 cut short: the trigger was not recorded in the alert state: %v", st)
		}
		if c := rx.Calls(); len(c) != 1 || c[0].Status != 202 {
			t.Errorf("%s: %d calls; want the one cut short", ev.Name, len(c))
		}
	}
	// A wrong routing key: PagerDuty says 400, nothing to retry, and the key is not quoted.
	rx := loopback.NewPagerDuty(t)
	cfg := pagerDutyConfig(rx.URL())
	cfg.RoutingKey = "RWRONGKEYWRONGKEYWRONGKEY0000000"
	err := newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{})
	if !alerting.Permanent(err) || !strings.Contains(err.Error(), "400") {
		t.Fatalf("wrong key: %v", err)
	}
	assertNoSecret(t, []string{"RWRONGKEYWRONGKEYWRONGKEY0000000"}, err.Error())
	// The receiver being down is worth a retry.
	rx.Down()
	err = newNotifier(t, pagerDutyConfig(rx.URL()), nil).Deliver(t.Context(), deployFailed(), alerting.State{})
	if err == nil || alerting.Permanent(err) {
		t.Fatalf("receiver down: %v", err)
	}
}

func TestPagerDutyConfig(t *testing.T) {
	t.Parallel()
	for name, url := range map[string]string{
		"not enqueue": "https://events.example/v2/other",
		"query":       "https://events.example/v2/enqueue?x=1",
		"not http":    "ftp://events.example/v2/enqueue",
	} {
		cfg := pagerDutyConfig(url)
		if _, err := alerting.New(cfg, alerting.Options{}); err == nil || !alerting.Permanent(err) || !strings.Contains(err.Error(), "notifiers.oncall.url") {
			t.Errorf("%s: New = %v", name, err)
		}
	}
	cfg := pagerDutyConfig("")
	cfg.Severity = "sev1"
	if _, err := alerting.New(cfg, alerting.Options{}); err == nil {
		t.Errorf("severity sev1 accepted")
	}
	cfg = pagerDutyConfig("")
	cfg.RoutingKey = ""
	if _, err := alerting.New(cfg, alerting.Options{}); err == nil {
		t.Errorf("no routing key accepted")
	}
	// The change URL sits beside the configured enqueue URL, also behind a proxy prefix.
	rx := loopback.NewPagerDuty(t)
	cfg = pagerDutyConfig(rx.URL() + "/")
	cfg.DryRun = true
	err := newNotifier(t, cfg, nil).Deliver(t.Context(), &alerting.Event{Name: configs.EventDeployStarted, Key: "k", Incident: "d-1",
		Deploy: &alerting.Deploy{ID: "d-1", Service: "web", Version: "v1"}}, alerting.State{})
	var dr *alerting.DryRunError
	if !errors.As(err, &dr) || dr.URL != "http://"+rx.Addr()+"/v2/change/enqueue" {
		t.Fatalf("dry run: %v (%+v)", err, dr)
	}
	if len(rx.Calls()) != 0 {
		t.Errorf("dry run called PagerDuty")
	}
}

func TestDedupKey(t *testing.T) {
	t.Parallel()
	if got := alerting.DedupKey("d-42"); got != "vigil:d-42" {
		t.Errorf("DedupKey(d-42) = %q", got)
	}
	long := strings.Repeat("x", 400)
	a, b := alerting.DedupKey(long), alerting.DedupKey(long+"y")
	if len(a) > 255 || a == b || a != alerting.DedupKey(long) {
		t.Errorf("long incidents: %d bytes, distinct %v, stable %v", len(a), a != b, a == alerting.DedupKey(long))
	}
}
