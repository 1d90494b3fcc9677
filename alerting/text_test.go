package alerting_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/configs"
)

func TestRenderTextDeployFailed(t *testing.T) {
	t.Parallel()
	want := `🔴 Deploy of web v2.1.0 in prod failed verification
Status: Failed
Service: web · Version: v2.1.0 · Environment: prod · Commit: abc1234 · Deploy: d-42 · Rollback target: v2.0.9 · Location: local
Failed 1.4 s after the deploy was registered; 4 of 6 checks passed.
Owners: S0614TZR7
  ✗ home · browser · fail
      TypeError: e.init is not a function at https://web.example/app.min.js:1:2045
      Owners: U024BE7LH
      Run: http://vigil.example/runs/981 · Runbook: https://wiki.example/runbooks/home · trace 4bf92f3577b34da6a3ce929d0e0e4736 · screenshot in the thread
  ✗ login · http · fail
      status == 200 was false: status = 502
      duration 412 ms (180 ms before the deploy)
      Run: http://vigil.example/runs/982
rollback-web: calling rollback
Runbook: https://wiki.example/runbooks/web
CI run: https://ci.example/runs/7
diff: https://git.example/web/compare/v2.0.9...v2.1.0
Status page: http://vigil.example/deploys/d-42
`
	if got := alerting.RenderText(deployFailed()); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}

	ev := deployFailed()
	ev.DryRun, ev.Halt = true, "version B crashes version A peers"
	got := alerting.RenderText(ev)
	for _, w := range []string{"🛑 Halt the rollout: version B crashes version A peers\n", "rollback-web: would call rollback (dry run)\n"} {
		if !strings.Contains(got, w) {
			t.Errorf("dry run with halt lacks %q:\n%s", w, got)
		}
	}
	if strings.Contains(got, "calling rollback") {
		t.Errorf("a dry run says it is calling:\n%s", got)
	}
	if alerting.RenderText(nil) != "" {
		t.Error("nil event")
	}
}

func TestRenderTextOtherEvents(t *testing.T) {
	t.Parallel()
	fresh := resolvedBy()
	fresh.Incident = "d-43"
	tests := []struct {
		name string
		ev   *alerting.Event
		want []string
		not  []string
	}{
		{"resolution by a later deploy", resolvedBy(), []string{"✅ Deploy of web v2.0.9 in prod passed verification\n",
			"Status: Resolved: Deploy of web v2.0.9 in prod passed verification\n", "6 of 6 checks passed\n"}, nil},
		{"a pass on its own", fresh, []string{"Status: Passed verification\n"}, []string{"Resolved"}},
		{"check failing", checkEvent(configs.EventCheckFailed, "1"), []string{"🔴 Check home (web) is failing\n", "Status: Failing\n",
			"Check: home · Service: web · Location: local · Last deploy: web v2.1.0, 4m12s before (passed verification)\n", "  ✗ home · browser · fail\n      #app[data-ready] never appeared\n"}, nil},
		{"check recovered", checkEvent(configs.EventCheckRecovered, "1"), []string{"✅ Check home (web) recovered\n", "Status: Recovered\n"}, []string{"✗"}},
		{"action result", actionResult(), []string{"↩️ rollback-web accepted the rollback of web v2.1.0: production goes back to v2.0.9\n"}, []string{"Status:"}},
	}
	for _, tt := range tests {
		got := alerting.RenderText(tt.ev)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: lacks %q:\n%s", tt.name, w, got)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(got, n) {
				t.Errorf("%s: has %q:\n%s", tt.name, n, got)
			}
		}
	}
}

// The text says what the Slack message says: its title, status and every failing check's
// reason, as the loopback Slack server received them.
func TestRenderTextMatchesSlack(t *testing.T) {
	t.Parallel()
	srv := loopback.NewSlack(t)
	n := newNotifier(t, slackConfig(srv.APIURL()), nil)
	for i, ev := range []*alerting.Event{deployFailed(), checkEvent(configs.EventCheckFailed, "1")} {
		if err := n.Deliver(t.Context(), ev, alerting.State{}); err != nil {
			t.Fatal(err)
		}
		slackText := srv.Roots()[i].BlocksText()
		text := alerting.RenderText(ev)
		lines := strings.Split(text, "\n")
		status, _ := strings.CutPrefix(lines[1], "Status: ")
		want := []string{strings.SplitN(lines[0], " ", 2)[1], "Status:* " + status}
		for _, fc := range ev.FailedChecks {
			want = append(want, fc.Summary)
			if !strings.Contains(text, fc.Summary) {
				t.Errorf("text lacks the reason %q:\n%s", fc.Summary, text)
			}
		}
		for _, w := range want {
			if !strings.Contains(slackText, w) {
				t.Errorf("Slack says something else than the text: %q not in\n%s", w, slackText)
			}
		}
	}
}

func TestRenderTextIsInert(t *testing.T) {
	t.Parallel()
	ev := deployFailed()
	ev.Summary = "boom\x1b[2J\x1b]0;pwned\x07"
	ev.FailedChecks[0].Summary = "line one\r\nline two \u202eevil\u202c"
	got := alerting.RenderText(ev)
	if strings.ContainsAny(got, "\x1b\x07\r\u202e\u202c") {
		t.Fatalf("control characters reached the terminal: %q", got)
	}
	for _, w := range []string{`boom\x1b[2J\x1b]0;pwned\x07`, "      line one\\x0d\n      line two \\u202eevil\\u202c\n"} {
		if !strings.Contains(got, w) {
			t.Errorf("lacks %q:\n%s", w, got)
		}
	}
}

func TestRenderTextManyChecks(t *testing.T) {
	t.Parallel()
	ev := deployFailed()
	ev.FailedChecks = nil
	for i := range 20 {
		ev.FailedChecks = append(ev.FailedChecks, alerting.FailedCheck{Name: fmt.Sprintf("c%02d", i), Summary: "down"})
	}
	got := alerting.RenderText(ev)
	if n := strings.Count(got, "✗ "); n != 15 {
		t.Errorf("%d checks shown, want 15", n)
	}
	if !strings.Contains(got, "  …and 5 more failing checks; see the status page.\n") {
		t.Errorf("no count of the rest:\n%s", got)
	}
}
