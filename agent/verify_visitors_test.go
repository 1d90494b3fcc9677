package agent

import (
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
)

// TestRoundResult: the run that stands for a round of visitors. A failure among passes is
// the round's (a broken pod among good ones is not averaged away); a visitor that got no
// answer outranks the passes (the error rules read it); a pass that came on a retry after
// no answer outranks a clean one (the rule on a service that keeps going away reads it); a
// pass outranks a visitor that reached nothing to judge (an old pod, by served_version).
func TestRoundResult(t *testing.T) {
	pass := &checks.Result{Outcome: checks.Pass, Transcript: []string{"pass"}}
	retried := &checks.Result{Outcome: checks.Pass, RetriedSilence: "connection refused", Transcript: []string{"retried"}}
	fail := &checks.Result{Outcome: checks.Fail, Reasons: []string{"status == 200 is false: status = 500"}, Transcript: []string{"fail"}}
	fail2 := &checks.Result{Outcome: checks.Fail, Reasons: []string{"other"}, Transcript: []string{"fail2"}}
	silent := &checks.Result{Outcome: checks.Error, NoAnswer: true, Transcript: []string{"silent"}}
	old := &checks.Result{Outcome: checks.Inconclusive, NotServed: true, Transcript: []string{"old"}}
	for _, tc := range []struct {
		name   string
		runs   []*checks.Result
		want   string
		header string
	}{
		{"a failure among passes", []*checks.Result{pass, pass, fail, pass}, "fail", "1 pass, 2 pass, 3 fail, 4 pass; visitor 3's"},
		{"the first failure", []*checks.Result{fail, fail2}, "fail", "visitor 1's"},
		{"a failure beats no answer", []*checks.Result{silent, fail2}, "fail2", "visitor 2's"},
		{"no answer beats passes", []*checks.Result{pass, silent, pass}, "silent", "visitor 2's"},
		{"a pass after a silence", []*checks.Result{pass, retried}, "retried", "visitor 2's"},
		{"a pass beats an old pod", []*checks.Result{old, pass, old}, "pass", "1 inconclusive, 2 pass, 3 inconclusive; visitor 2's"},
		{"only old pods", []*checks.Result{old, old}, "old", "visitor 1's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := roundResult(tc.runs)
			if got.Transcript[len(got.Transcript)-1] != tc.want {
				t.Errorf("stands for the round: %q; want %q's run", got.Transcript, tc.want)
			}
			if !strings.Contains(got.Transcript[0], tc.header) || !strings.HasPrefix(got.Transcript[0], "== round of ") {
				t.Errorf("transcript header %q; want it to say %q", got.Transcript[0], tc.header)
			}
		})
	}
	if len(pass.Transcript) != 1 {
		t.Errorf("a visitor's own result changed: %q", pass.Transcript)
	}
}

// TestVisitorsOf: one-client kinds run verify.visitors times a round; the others once.
func TestVisitorsOf(t *testing.T) {
	limits := configs.Verify{Visitors: 4}
	for kind, want := range map[string]int{configs.KindHTTP: 4, configs.KindScript: 4, configs.KindGRPC: 4, configs.KindTCP: 4,
		configs.KindWebSocket: 4, configs.KindTLS: 4, configs.KindSLA: 1, configs.KindBrowser: 1, configs.KindPropagation: 1,
		configs.KindPromQL: 1, configs.KindLogscan: 1, configs.KindFleet: 1, configs.KindHeartbeat: 1, configs.KindDNS: 1} {
		if got := visitorsOf(&checks.Check{Kind: kind}, limits); got != want {
			t.Errorf("%s: %d visitors; want %d", kind, got, want)
		}
	}
}
