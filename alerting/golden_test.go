package alerting_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/golden"
)

// incidents are event sequences, each delivered in order to one notifier, the way the
// outbox delivers an incident's events.
func incidents() map[string][]*alerting.Event {
	inconclusive := deployFailed()
	inconclusive.Name, inconclusive.Key, inconclusive.Actions = configs.EventDeployInconclusive, "d-42:deploy_inconclusive", nil
	inconclusive.Summary = "home: no run gave an answer in 6 rounds (6 inconclusive, 0 errors): query returned no series"
	halted := deployFailed()
	halted.Name, halted.Key = configs.EventDeployHalted, "d-42:deploy_halted"
	halted.Halt = "fleet: 2 old-version instances failing since v2 appeared"
	halted.Actions = []alerting.ActionNote{{Notifier: "halt-web", Action: "halt"}}
	dryRun := actionResult()
	dryRun.DryRun, dryRun.Summary = true, "would call rollback-web: POST https://ci.example/rollback (dry run)"
	reminder := checkEvent(configs.EventCheckFailed, "3")
	reminder.Key, reminder.Reminder, reminder.LastDeploy = reminder.Key+":reminder:1", 1, nil // as the agent sends it
	reminder.Summary = "still failing, since 2026-01-01T13:00:00Z: #app[data-ready] never appeared"
	closed := checkEvent(configs.EventCheckRecovered, "3")
	closed.Closed, closed.Summary = "the check left the config", "home is no longer in the config (removed or renamed)"
	started := &alerting.Event{Name: configs.EventDeployStarted, Key: "d-42:deploy_started", Incident: "d-42",
		OccurredAt: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), Service: "web", Summary: "deploy of web v2.1.0 registered; verifying",
		Deploy: &alerting.Deploy{ID: "d-42", Service: "web", Version: "v2.1.0", Environment: "prod"}, StatusURL: "http://vigil.example/deploys/d-42"}
	cancelled := &alerting.Event{Name: configs.EventDeployCancelled, Key: "d-42:deploy_cancelled", Incident: "d-42",
		OccurredAt: time.Date(2026, 1, 1, 12, 0, 40, 0, time.UTC), Service: "web", Summary: "cancelled: Argo Rollouts aborted web",
		Deploy: started.Deploy, StatusURL: started.StatusURL, Location: "eu-west"}
	superseded := &alerting.Event{Name: configs.EventDeploySuperseded, Key: "d-42:deploy_superseded", Incident: "d-42",
		OccurredAt: time.Date(2026, 1, 1, 12, 0, 30, 0, time.UTC), Service: "web", Summary: "superseded by web v2.1.1 (deploy d-43)",
		Deploy: started.Deploy, StatusURL: started.StatusURL, Location: "eu-west",
		SupersededBy: &alerting.Deploy{ID: "d-43", Service: "web", Version: "v2.1.1", Environment: "prod"}}
	passed := resolvedBy()
	passed.Incident, passed.DetectedAfter, passed.ChecksPassed, passed.ChecksTotal, passed.ReadyAfter = "d-43", 61.2, 6, 6, 46.5
	passed.ReadyBefore = []float64{4.1, 6, 5.2} // seed 002: far slower to start than the last three
	rollbackFailed := actionResult()
	rollbackFailed.Summary = "rollback-web FAILED after 5 attempts: POST https://ci.example/rollback answered 503; web v2.1.0 is still deployed"
	haltResult := actionResult()
	haltResult.Key, haltResult.Actions = "d-42:action_result:halt-web", []alerting.ActionNote{{Notifier: "halt-web", Action: "halt"}}
	haltResult.Summary = "halt-web accepted the halt of the web v2.1.0 rollout"
	return map[string][]*alerting.Event{
		"deploy-passed":                      {passed},
		"deploy-failed-rollback-failed":      {deployFailed(), rollbackFailed},
		"deploy-halted-halt-accepted":        {halted, haltResult},
		"deploy-failed-rolled-back-resolved": {deployFailed(), actionResult(), resolvedBy()},
		"deploy-started-then-failed":         {started, deployFailed()},
		"deploy-started-then-cancelled":      {started, cancelled},
		"deploy-started-then-superseded":     {started, superseded},
		"deploy-halted":                      {halted},
		"deploy-inconclusive":                {inconclusive},
		"deploy-failed-dry-run":              {deployFailed(), dryRun},
		"check-failed-reminded-recovered":    {checkEvent(configs.EventCheckFailed, "3"), reminder, checkEvent(configs.EventCheckRecovered, "3")},
		"check-failed-closed":                {checkEvent(configs.EventCheckFailed, "3"), closed},
	}
}

// The Slack messages of every event, as the Web API receives them (the blocks of each
// postMessage and update, in order), pinned by golden files.
func TestSlackMessagesGolden(t *testing.T) {
	t.Parallel()
	for name, evs := range incidents() {
		t.Run(name, func(t *testing.T) {
			rx := loopback.NewSlack(t)
			cfg := &configs.Notifier{Type: configs.NotifierSlack, Name: "ops", Token: loopback.SlackToken, Channel: "#deploys",
				APIURL: rx.APIURL(), Events: configs.Events}
			n, err := alerting.New(cfg, alerting.Options{UserAgent: "vigil-test", Now: func() time.Time { return time.Date(2026, 1, 1, 12, 0, 5, 0, time.UTC) }})
			if err != nil {
				t.Fatal(err)
			}
			st := alerting.State{}
			for _, ev := range evs {
				if err := n.Deliver(t.Context(), ev, st); err != nil {
					t.Fatalf("%s: %v", ev.Name, err)
				}
			}
			var out bytes.Buffer
			for _, c := range rx.Calls() {
				if c.Method != "chat.postMessage" && c.Method != "chat.update" {
					continue
				}
				kind := "reply"
				if c.Args.Get("thread_ts") == "" {
					kind = "root"
				}
				if c.Method == "chat.update" {
					kind = "update of the root"
				}
				fmt.Fprintf(&out, "== %s (%s)\ntext: %s\n", c.Method, kind, c.Args.Get("text"))
				var v any
				if err := json.Unmarshal(c.Blocks, &v); err != nil {
					t.Fatalf("blocks are not JSON: %v", err)
				}
				out.Write(indentJSON(v))
			}
			golden.Assert(t, "slack/"+name+".txt", out.Bytes())
		})
	}
}

// The webhook bodies of every event, pinned by golden files (sent_at is the event's time).
func TestWebhookPayloadsGolden(t *testing.T) {
	t.Parallel()
	for name, evs := range incidents() {
		t.Run(name, func(t *testing.T) {
			rx := loopback.NewWebhook(t)
			cfg := &configs.Notifier{Type: configs.NotifierWebhook, Name: "hook", URL: rx.URL(), Secret: loopback.WebhookSecret}
			n, err := alerting.New(cfg, alerting.Options{UserAgent: "vigil-test", Now: func() time.Time { return time.Now() }})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			for _, ev := range evs {
				if !n.Wants(ev.Name) {
					continue
				}
				if err := n.Deliver(t.Context(), ev, alerting.State{}); err != nil {
					t.Fatalf("%s: %v", ev.Name, err)
				}
			}
			for _, d := range rx.Deliveries() {
				fmt.Fprintf(&out, "== %s (Idempotency-Key %s)\n%s", d.Event, d.Key, indentJSON(d.Payload))
			}
			golden.Assert(t, "webhook/"+name+".txt", out.Bytes())
		})
	}
}

// indentJSON prints v as indented JSON, with <, > and & as they are (readable diffs).
func indentJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
	return b.Bytes()
}
