package alerting_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// png is a stand-in screenshot: the PNG signature and some bytes that must arrive intact.
var png = append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0, 1, 2, 253, 254, 255}, 5000)...)

func newNotifier(t *testing.T, cfg *configs.Notifier, logs *vigiltest.Buffer) alerting.Notifier {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = cfg.Type + "-test"
	}
	opts := alerting.Options{UserAgent: "vigil-test"}
	if logs != nil {
		opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	n, err := alerting.New(cfg, opts)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.Name, err)
	}
	return n
}

func deployFailed() *alerting.Event {
	return &alerting.Event{
		Name:       configs.EventDeployFailed,
		Key:        "d-42:deploy_failed",
		Incident:   "d-42",
		OccurredAt: time.Date(2026, 1, 1, 12, 0, 3, 0, time.UTC),
		Deploy: &alerting.Deploy{ID: "d-42", Service: "web", Version: "v2.1.0", Environment: "prod", Commit: "abc1234",
			PreviousVersion: "v2.0.9", Links: []alerting.Link{{Name: "CI run", URL: "https://ci.example/runs/7"}, {Name: "diff", URL: "https://git.example/web/compare/v2.0.9...v2.1.0"}}},
		Service: "web",
		Summary: "home: 1 failed run (failure_limit 0): TypeError: e.init is not a function at https://web.example/app.min.js:1:2045",
		FailedChecks: []alerting.FailedCheck{
			{Name: "home", Kind: "browser", Outcome: "fail", Summary: "TypeError: e.init is not a function at https://web.example/app.min.js:1:2045",
				RunURL: "http://vigil.example/runs/981", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Screenshot: png,
				Owners: []string{"U024BE7LH"}, RunbookURL: "https://wiki.example/runbooks/home"},
			{Name: "login", Kind: "http", Outcome: "fail", Summary: "status == 200 was false: status = 502",
				RunURL: "http://vigil.example/runs/982", Baseline: "duration 412 ms (180 ms before the deploy)"},
		},
		DetectedAfter: 1.4, ChecksPassed: 4, ChecksTotal: 6,
		Owners: []string{"S0614TZR7"}, RunbookURL: "https://wiki.example/runbooks/web",
		Location:  "local",
		StatusURL: "http://vigil.example/deploys/d-42",
		Actions:   []alerting.ActionNote{{Notifier: "rollback-web", Action: "rollback"}},
	}
}

func actionResult() *alerting.Event {
	return &alerting.Event{
		Name: alerting.EventActionResult, Key: "d-42:action_result:rollback-web", Incident: "d-42",
		OccurredAt: time.Date(2026, 1, 1, 12, 0, 4, 0, time.UTC),
		Deploy:     &alerting.Deploy{ID: "d-42", Service: "web", Version: "v2.1.0", Environment: "prod"},
		Service:    "web",
		Summary:    "rollback-web accepted the rollback of web v2.1.0: production goes back to v2.0.9",
		Actions:    []alerting.ActionNote{{Notifier: "rollback-web", Action: "rollback"}},
	}
}

// resolvedBy is the deploy_passed of a later deploy that closes incident d-42.
func resolvedBy() *alerting.Event {
	return &alerting.Event{
		Name: configs.EventDeployPassed, Key: "d-43:deploy_passed", Incident: "d-42",
		OccurredAt: time.Date(2026, 1, 1, 12, 5, 0, 0, time.UTC),
		Deploy:     &alerting.Deploy{ID: "d-43", Service: "web", Version: "v2.0.9", Environment: "prod"},
		Service:    "web", Summary: "6 of 6 checks passed", StatusURL: "http://vigil.example/deploys/d-43",
	}
}

func checkEvent(name string, seq string) *alerting.Event {
	ev := &alerting.Event{
		Name: name, Key: "check:home:" + seq + ":" + name, Incident: "check:home:" + seq,
		OccurredAt: time.Date(2026, 1, 1, 13, 0, 0, 0, time.UTC),
		Service:    "web", Check: "home", Location: "local", StatusURL: "http://vigil.example/checks/home",
	}
	if name == configs.EventCheckFailed {
		ev.Summary = "failing for 2 runs in a row"
		ev.LastDeploy = &alerting.LastDeploy{ID: "d-43", Service: "web", Version: "v2.1.0", Status: "passed",
			RegisteredAt: time.Date(2026, 1, 1, 12, 55, 48, 0, time.UTC), Before: 252}
		ev.FailedChecks = []alerting.FailedCheck{{Name: "home", Kind: "browser", Outcome: "fail",
			Summary: "#app[data-ready] never appeared", RunURL: "http://vigil.example/runs/1000"}}
	}
	return ev
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// assertNoSecret fails when any secret shows in the texts.
func assertNoSecret(t *testing.T, secrets []string, texts ...string) {
	t.Helper()
	for _, s := range secrets {
		for _, txt := range texts {
			if strings.Contains(txt, s) {
				t.Fatalf("secret %q leaked into %q", s, txt)
			}
		}
	}
}
