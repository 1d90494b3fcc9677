package alerting_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/configs"
)

func opsgenieConfig(rx *loopback.Opsgenie) *configs.Notifier {
	return &configs.Notifier{Type: configs.NotifierOpsgenie, Name: "genie", APIKey: loopback.OpsgenieAPIKey,
		APIURL: rx.URL(), Tags: []string{"team-web"}}
}

// A failed deploy creates one alert with the evidence, under the incident's alias; a retry
// of the same event adds to that alert's count; the rollback's result is a note on it; the
// next passing deploy closes it.
func TestOpsgenieCreateNoteClose(t *testing.T) {
	t.Parallel()
	rx := loopback.NewOpsgenie(t)
	n := newNotifier(t, opsgenieConfig(rx), nil)
	st := alerting.State{}
	for _, ev := range []*alerting.Event{deployFailed(), deployFailed(), actionResult(), resolvedBy()} {
		if !n.Wants(ev.Name) {
			t.Fatalf("Wants(%s) = false", ev.Name)
		}
		if err := n.Deliver(t.Context(), ev, st); err != nil {
			t.Fatalf("%s: %v", ev.Name, err)
		}
	}
	if got := rx.Aliases(); len(got) != 1 || got[0] != "vigil:d-42" {
		t.Fatalf("aliases %v, want [vigil:d-42]", got)
	}
	a := rx.Alert("vigil:d-42")
	if a.Open || a.Closes != 1 || a.Count != 2 || len(a.Notes) != 1 {
		t.Errorf("alert %+v: want closed once, counted twice, one note", a)
	}
	if !strings.Contains(a.Notes[0], "rollback-web accepted the rollback") {
		t.Errorf("the note should be the rollback's result: %q", a.Notes[0])
	}
	c := a.Create
	if c["priority"] != "P1" || c["entity"] != "web" || c["source"] != "vigil@local" {
		t.Errorf("priority, entity, source: %v %v %v", c["priority"], c["entity"], c["source"])
	}
	body, _ := json.Marshal(c)
	for _, want := range []string{"Deploy of web v2.1.0 in prod failed verification", "TypeError: e.init is not a function",
		"http://vigil.example/runs/981", "4bf92f3577b34da6a3ce929d0e0e4736", "abc1234", "status == 200 was false",
		"http://vigil.example/deploys/d-42", `"team-web"`, `"deploy_failed"`, "rollback-web", "https://wiki.example/runbooks/web",
		"https://ci.example/runs/7", "4 of 6 checks passed", "duration 412 ms (180 ms before the deploy)"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the alert lacks %q: %s", want, body)
		}
	}
	for _, call := range rx.Calls() {
		if call.Auth != "GenieKey "+loopback.OpsgenieAPIKey {
			t.Errorf("%s sent Authorization %q", call.Path, call.Auth)
		}
	}
}

// A check incident: the failure and its reminder are one alert; the recovery closes it.
func TestOpsgenieCheckIncident(t *testing.T) {
	t.Parallel()
	rx := loopback.NewOpsgenie(t)
	n := newNotifier(t, opsgenieConfig(rx), nil)
	reminder := checkEvent(configs.EventCheckFailed, "3")
	reminder.Key, reminder.Reminder = reminder.Key+":reminder:1", 1
	st := alerting.State{}
	for _, ev := range []*alerting.Event{checkEvent(configs.EventCheckFailed, "3"), reminder, checkEvent(configs.EventCheckRecovered, "3")} {
		if err := n.Deliver(t.Context(), ev, st); err != nil {
			t.Fatalf("%s: %v", ev.Name, err)
		}
	}
	if a := rx.Alert("vigil:check:home:3"); a == nil || a.Open || a.Count != 2 || a.Closes != 1 {
		t.Fatalf("alert %+v: want one alert counted twice, closed", a)
	}
	// Closed is remembered: a repeated recovery sends nothing.
	before := len(rx.Calls())
	if err := n.Deliver(t.Context(), checkEvent(configs.EventCheckRecovered, "3"), st); err != nil || len(rx.Calls()) != before {
		t.Errorf("a second recovery: %v, %d calls", err, len(rx.Calls())-before)
	}
}

// Inconclusive is at most P3; a configured lower priority stays.
func TestOpsgeniePriority(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ configured, event, want string }{
		{"P1", configs.EventDeployInconclusive, "P3"},
		{"P2", configs.EventDeployInconclusive, "P3"},
		{"P4", configs.EventDeployInconclusive, "P4"},
		{"P2", configs.EventDeployFailed, "P2"},
		{"", configs.EventDeployHalted, "P1"},
	} {
		rx := loopback.NewOpsgenie(t)
		cfg := opsgenieConfig(rx)
		cfg.Priority = tt.configured
		ev := deployFailed()
		ev.Name = tt.event
		if err := newNotifier(t, cfg, nil).Deliver(t.Context(), ev, alerting.State{}); err != nil {
			t.Fatal(err)
		}
		if got := rx.Alert("vigil:d-42").Create["priority"]; got != tt.want {
			t.Errorf("priority %s, %s: got %v, want %s", tt.configured, tt.event, got, tt.want)
		}
	}
}

func TestOpsgenieWants(t *testing.T) {
	t.Parallel()
	rx := loopback.NewOpsgenie(t)
	all := newNotifier(t, opsgenieConfig(rx), nil)
	cfg := opsgenieConfig(rx)
	cfg.Events = []string{configs.EventCheckFailed}
	listed := newNotifier(t, cfg, nil)
	for _, tt := range []struct {
		event       string
		all, listed bool
	}{
		{configs.EventDeployFailed, true, false},
		{configs.EventDeployInconclusive, true, false},
		{configs.EventCheckFailed, true, true},
		{configs.EventCheckRecovered, true, true},
		{configs.EventDeployPassed, true, true},
		{configs.EventDeployStarted, false, false},
		{alerting.EventActionResult, true, true},
	} {
		if all.Wants(tt.event) != tt.all || listed.Wants(tt.event) != tt.listed {
			t.Errorf("Wants(%s) = %v, %v; want %v, %v", tt.event, all.Wants(tt.event), listed.Wants(tt.event), tt.all, tt.listed)
		}
	}
	// A passing deploy or a recovery with no alert of ours sends nothing.
	for _, ev := range []*alerting.Event{resolvedBy(), checkEvent(configs.EventCheckRecovered, "3")} {
		if err := all.Deliver(t.Context(), ev, alerting.State{}); !errors.Is(err, alerting.ErrSkipped) || len(rx.Calls()) != 0 {
			t.Errorf("%s without an alert: %v, %d calls", ev.Name, err, len(rx.Calls()))
		}
	}
}

func TestOpsgenieHostileReceiver(t *testing.T) {
	t.Parallel()
	rx := loopback.NewOpsgenie(t)
	testHostileReceiver(t, receiver{fail: rx.Fail, secrets: []string{loopback.OpsgenieAPIKey},
		build: func(t *testing.T, timeout time.Duration) alerting.Notifier {
			cfg := opsgenieConfig(rx)
			cfg.Timeout = timeout
			return newNotifier(t, cfg, nil)
		}})
}

// A wrong key is Opsgenie's own 401: permanent, with what to fix, and no key in the error.
func TestOpsgenieWrongKey(t *testing.T) {
	t.Parallel()
	rx := loopback.NewOpsgenie(t)
	cfg := opsgenieConfig(rx)
	cfg.APIKey = "wrong-key-1234567890"
	err := newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{})
	if err == nil || !alerting.Permanent(err) || !strings.Contains(err.Error(), "api_key") {
		t.Fatalf("Deliver = %v, want a permanent error about api_key", err)
	}
	assertNoSecret(t, []string{"wrong-key-1234567890", loopback.OpsgenieAPIKey}, err.Error())
}

func TestOpsgenieDryRun(t *testing.T) {
	t.Parallel()
	rx := loopback.NewOpsgenie(t)
	cfg := opsgenieConfig(rx)
	cfg.DryRun = true
	err := newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{})
	if !errors.Is(err, alerting.ErrDryRun) || !strings.Contains(err.Error(), "/v2/alerts") || len(rx.Calls()) != 0 {
		t.Fatalf("dry run: %v, %d calls", err, len(rx.Calls()))
	}
}

func TestOpsgenieConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cfg  configs.Notifier
		want string
	}{
		{configs.Notifier{}, "notifiers.g.api_key: missing"},
		{configs.Notifier{APIKey: "k", APIURL: "api.opsgenie.com"}, "notifiers.g.api_url: want an http or https URL"},
		{configs.Notifier{APIKey: "k", Priority: "high"}, `notifiers.g.priority: "high" is not an Opsgenie priority`},
	} {
		tt.cfg.Type, tt.cfg.Name = configs.NotifierOpsgenie, "g"
		_, err := alerting.New(&tt.cfg, alerting.Options{})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !alerting.Permanent(err) {
			t.Errorf("New(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

// Opsgenie's limits, as its Alert API enforces them (the receiver refuses what Opsgenie
// would): a config may name up to 16 tags, and vigil's own four make 20; the details of a
// deploy with many long reasons stay within 8000 characters in all, the first checks'
// reasons kept and the rest counted, so the alert is created rather than refused.
func TestOpsgenieLimits(t *testing.T) {
	t.Parallel()
	rx := loopback.NewOpsgenie(t)
	cfg := opsgenieConfig(rx)
	cfg.Tags = nil
	for i := range 16 {
		cfg.Tags = append(cfg.Tags, fmt.Sprintf("team-%02d", i))
	}
	cfg.Tags[15] = strings.Repeat("é", 50) // 50 characters, 100 bytes
	ev := deployFailed()
	for i := range 12 {
		ev.FailedChecks = append(ev.FailedChecks, alerting.FailedCheck{Name: fmt.Sprintf("api-%02d", i), Kind: "http", Outcome: "fail",
			Summary: fmt.Sprintf("reason %02d: ", i) + strings.Repeat("upstream connect error or disconnect/reset before headers ", 30),
			RunURL:  fmt.Sprintf("http://vigil.example/runs/%d", 2000+i), RunbookURL: "https://wiki.example/runbooks/api",
			TraceURL: "http://tempo.example/trace/" + strings.Repeat("f", 32), Baseline: "duration 2.1 s (180 ms before the deploy)"})
	}
	if err := newNotifier(t, cfg, nil).Deliver(t.Context(), ev, alerting.State{}); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	c := rx.Alert("vigil:d-42").Create
	tags, _ := c["tags"].([]any)
	if len(tags) != 20 || tags[15] != strings.Repeat("é", 50) || tags[16] != "vigil" || tags[17] != "deploy_failed" || tags[18] != "web" || tags[19] != "prod" {
		t.Errorf("tags %v: want the 16 configured, then vigil, the event, the service, the environment", tags)
	}
	details, _ := c["details"].(map[string]any)
	total := 0
	for k, v := range details {
		total += len([]rune(k)) + len([]rune(v.(string)))
	}
	if total > 8000 {
		t.Errorf("details are %d characters", total)
	}
	for _, k := range []string{"failing: home", "run: home", "failing: login", "action: rollback-web", "version", "status_url"} {
		if details[k] == nil {
			t.Errorf("details lack %q: %v", k, details)
		}
	}
	if more, _ := details["more failing checks"].(string); !strings.Contains(more, "more failing checks") {
		t.Errorf("the checks left out are not counted: %v", details)
	}
	if !strings.Contains(fmt.Sprint(details["failing: api-00"]), "reason 00") {
		t.Errorf("the third failing check's reason is missing: %v", details["failing: api-00"])
	}
}
