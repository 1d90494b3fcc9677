package alerting_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/configs"
)

func teamsConfig(rx *loopback.Chat) *configs.Notifier {
	return &configs.Notifier{Type: configs.NotifierTeams, Name: "teams", URL: rx.URL()}
}

// card returns the Adaptive Card of a Teams post.
func card(t *testing.T, p loopback.ChatPost) map[string]any {
	t.Helper()
	atts, _ := p.Payload["attachments"].([]any)
	if len(atts) != 1 {
		t.Fatalf("want one attachment: %s", p.Body)
	}
	c, _ := atts[0].(map[string]any)["content"].(map[string]any)
	return c
}

// A failed deploy is a card with the evidence and buttons; the rollback's result and the
// resolving deploy follow it as cards of their own.
func TestTeamsCards(t *testing.T) {
	t.Parallel()
	rx := loopback.NewTeams(t)
	n := newNotifier(t, teamsConfig(rx), nil)
	st := alerting.State{}
	for _, ev := range []*alerting.Event{deployFailed(), actionResult(), resolvedBy()} {
		if !n.Wants(ev.Name) {
			t.Fatalf("Wants(%s) = false", ev.Name)
		}
		if err := n.Deliver(t.Context(), ev, st); err != nil {
			t.Fatalf("%s: %v", ev.Name, err)
		}
	}
	posts := rx.Accepted()
	if len(posts) != 3 {
		t.Fatalf("%d cards accepted, want 3", len(posts))
	}
	c := card(t, posts[0])
	if c["version"] != "1.4" || c["type"] != "AdaptiveCard" {
		t.Errorf("card type %v version %v", c["type"], c["version"])
	}
	body := string(posts[0].Body)
	for _, want := range []string{"Deploy of web v2.1.0 in prod failed verification", `"title":"Version","value":"v2.1.0"`,
		`"title":"Environment","value":"prod"`, "TypeError: e.init is not a function", "status == 200 was false: status = 502",
		"4 of 6 checks passed", "https://wiki.example/runbooks/home", "https://ci.example/runs/7", "180 ms before the deploy", "rollback-web: ", "calling rollback", "4bf92f3577b34da6a3ce929d0e0e4736", "screenshot on the run page"} {
		if !strings.Contains(body, want) {
			t.Errorf("the card lacks %q:\n%s", want, body)
		}
	}
	actions, _ := c["actions"].([]any)
	var urls []string
	for _, a := range actions {
		am := a.(map[string]any)
		if am["type"] != "Action.OpenUrl" {
			t.Errorf("action %v", am)
		}
		urls = append(urls, am["url"].(string))
	}
	if strings.Join(urls, " ") != "http://vigil.example/deploys/d-42 https://wiki.example/runbooks/web https://ci.example/runs/7 "+
		"https://git.example/web/compare/v2.0.9...v2.1.0 http://vigil.example/runs/981 http://vigil.example/runs/982" {
		t.Errorf("buttons %v", urls)
	}
	if !strings.Contains(string(posts[2].Body), "Resolved: Deploy of web v2.0.9 in prod passed verification") {
		t.Errorf("the passing deploy should read as the resolution: %s", posts[2].Body)
	}
}

// Text from a check is plain text on the card: no link or markup in facts or reasons.
func TestTeamsTextIsInert(t *testing.T) {
	t.Parallel()
	rx := loopback.NewTeams(t)
	ev := deployFailed()
	ev.Deploy.Version = "[click](http://evil.example)"
	ev.FailedChecks[0].Summary = "**bold** [x](http://evil.example)"
	if err := newNotifier(t, teamsConfig(rx), nil).Deliver(t.Context(), ev, alerting.State{}); err != nil {
		t.Fatal(err)
	}
	p := rx.Accepted()[0]
	var found bool
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["type"] == "TextBlock" {
				t.Errorf("a TextBlock (Markdown) on the card: %v", x)
			}
			if x["title"] == "Version" {
				found = true
				if x["value"] != `\[click\]\(http://evil.example\)` {
					t.Errorf("the fact is not escaped: %q", x["value"])
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(card(t, p))
	if !found {
		t.Fatal("no Version fact")
	}
}

// A recovery of an incident it never posted is not sent, unless listed: Deliver says it
// skipped it, so the outbox records it as not sent.
func TestTeamsFollowUps(t *testing.T) {
	t.Parallel()
	rx := loopback.NewTeams(t)
	n := newNotifier(t, teamsConfig(rx), nil)
	if err := n.Deliver(t.Context(), checkEvent(configs.EventCheckRecovered, "3"), alerting.State{}); !errors.Is(err, alerting.ErrSkipped) || len(rx.Posts()) != 0 {
		t.Fatalf("an unopened recovery: %v, %d posts", err, len(rx.Posts()))
	}
	if n.Wants(configs.EventDeployStarted) {
		t.Error("deploy_started is wanted by default")
	}
	cfg := teamsConfig(rx)
	cfg.Events = []string{configs.EventCheckRecovered, configs.EventDeployStarted}
	listed := newNotifier(t, cfg, nil)
	if listed.Wants(configs.EventDeployFailed) || !listed.Wants(configs.EventDeployStarted) {
		t.Error("Wants does not follow the events list")
	}
	if err := listed.Deliver(t.Context(), checkEvent(configs.EventCheckRecovered, "3"), alerting.State{}); err != nil || len(rx.Accepted()) != 1 {
		t.Fatalf("a listed recovery: %v, %d posts", err, len(rx.Accepted()))
	}
}

func TestTeamsHostileReceiver(t *testing.T) {
	t.Parallel()
	rx := loopback.NewTeams(t)
	testHostileReceiver(t, receiver{fail: rx.Fail, secrets: []string{loopback.TeamsSig}, plain: true,
		build: func(t *testing.T, timeout time.Duration) alerting.Notifier {
			cfg := teamsConfig(rx)
			cfg.Timeout = timeout
			return newNotifier(t, cfg, nil)
		}})
}

func TestTeamsDryRunAndConfig(t *testing.T) {
	t.Parallel()
	rx := loopback.NewTeams(t)
	cfg := teamsConfig(rx)
	cfg.DryRun = true
	err := newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{})
	if !errors.Is(err, alerting.ErrDryRun) || len(rx.Posts()) != 0 || strings.Contains(err.Error(), loopback.TeamsSig) {
		t.Fatalf("dry run: %v, %d posts", err, len(rx.Posts()))
	}
	_, err = alerting.New(&configs.Notifier{Type: configs.NotifierTeams, Name: "t", URL: "teams.example"}, alerting.Options{})
	if err == nil || !strings.Contains(err.Error(), "notifiers.t.url: want an http or https URL") {
		t.Errorf("New with a bad url: %v", err)
	}
}

// The card is full width, and its title sits on a band coloured by the verdict: red for a
// failure, yellow for inconclusive, green for a pass or a recovery.
func TestTeamsCardBandAndWidth(t *testing.T) {
	t.Parallel()
	inconclusive := deployFailed()
	inconclusive.Name, inconclusive.Key = configs.EventDeployInconclusive, "d-42:deploy_inconclusive"
	recovered := checkEvent(configs.EventCheckRecovered, "3")
	for _, tt := range []struct {
		name  string
		evs   []*alerting.Event // the last one's card is judged
		style string
	}{
		{"failure", []*alerting.Event{deployFailed()}, "attention"},
		{"check failure", []*alerting.Event{checkEvent(configs.EventCheckFailed, "3")}, "attention"},
		{"inconclusive", []*alerting.Event{inconclusive}, "warning"},
		{"resolving pass", []*alerting.Event{deployFailed(), resolvedBy()}, "good"},
		{"recovery", []*alerting.Event{checkEvent(configs.EventCheckFailed, "3"), recovered}, "good"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rx := loopback.NewTeams(t)
			n := newNotifier(t, teamsConfig(rx), nil)
			st := alerting.State{}
			for _, ev := range tt.evs {
				if err := n.Deliver(t.Context(), ev, st); err != nil {
					t.Fatalf("%s: %v", ev.Name, err)
				}
			}
			posts := rx.Accepted()
			c := card(t, posts[len(posts)-1])
			if ms, _ := c["msteams"].(map[string]any); ms["width"] != "Full" {
				t.Errorf("msteams %v; want width Full", c["msteams"])
			}
			body, _ := c["body"].([]any)
			band, _ := body[0].(map[string]any)
			if band["type"] != "Container" || band["style"] != tt.style || band["bleed"] != true {
				t.Errorf("the first element %v; want a bleeding Container of style %s", band, tt.style)
			}
		})
	}
}
