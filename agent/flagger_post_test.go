package agent

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// flaggerNotifyConfig is Flagger's podinfo and a service api on the same check, both
// paging and rolling back on failure, with verify as given.
func flaggerNotifyConfig(tg *target, verify string, pd *loopback.PagerDuty, hook *loopback.Webhook) string {
	return flaggerHead(tg.srv.URL) + fmt.Sprintf(`
services:
  podinfo:
    checks: [home]
    verify: {%[1]s}
    on_failure: [pager, rollback]
  api:
    checks: [home]
    verify: {%[1]s}
    on_failure: [pager, rollback]
notifiers:%s%s
`, verify, pagerDutyNotifier(pd), webhookNotifier("rollback", "rollback", hook))
}

// Flagger failed the canary on its own (its metric analysis, the progress deadline, an
// abort) and rolled it back while vigil still verified it: the post-rollout webhook's
// phase Failed cancels the canary's deploy, so vigil neither pages nor calls the rollback
// webhook for a version Flagger already took away; the same failure on a deploy nobody
// cancelled (api, registered after) does both. Before, the post-rollout call was refused
// with a 400 and the deploy went on verifying, failed, paged and called the rollback.
func TestFlaggerPostRolloutFailedCancelsTheDeploy(t *testing.T) {
	tg := newTarget(t)
	pd := loopback.NewPagerDuty(t)
	hook := loopback.NewWebhook(t)
	h := startAgent(t, "", flaggerNotifyConfig(tg, "initial_delay: 2s, interval: 200ms, count: 2", pd, hook))
	tg.set("broken")

	status, out := flaggerCall(t, h, "", h.token, flaggerHookPayload("podinfo", "test", "Progressing", "85d557f47b", map[string]string{"type": "pre-rollout"}))
	if status != http.StatusTooEarly {
		t.Fatalf("pre-rollout: %d %v; want 425 verifying", status, out)
	}
	canary := out["deploy"].(string)

	// What Flagger's rollback sends its post-rollout hooks: phase Failed, the same checksum.
	status, out = flaggerCall(t, h, "", h.token, flaggerHookPayload("podinfo", "test", "Failed", "85d557f47b", map[string]string{"type": "post-rollout", "service": "podinfo"}))
	if status != http.StatusOK || out["verdict"] != store.StatusCancelled || out["deploy"] != canary ||
		out["reason"] != "cancelled: Flagger ended canary podinfo.test Failed, not promoted (post-rollout webhook)" {
		t.Errorf("post-rollout Failed: %d %v; want 200, deploy %s cancelled, the reason naming Flagger and the phase", status, out, canary)
	}

	// The same failure, on a deploy nobody cancelled: by its verdict the canary's would have come.
	api := h.deploy("api", "v1")
	if d := h.verdict(api, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("api v1: %v %v; want failed", d["status"], d["reason"])
	}
	h.outboxSettled(api+":deploy_failed", map[string]string{"pager": store.OutboxDelivered, "rollback": store.OutboxDelivered})
	for _, key := range []string{canary + ":deploy_failed", canary + ":deploy_inconclusive", canary + ":deploy_halted"} {
		if entries, err := h.a.store.OutboxByKey(t.Context(), key); err != nil || len(entries) > 0 || hook.Count(key) > 0 {
			t.Errorf("the canary Flagger rolled back sent %s: %s (%v), %d rollback calls", key, describeOutbox(entries), err, hook.Count(key))
		}
	}
	triggers := 0
	for _, e := range pd.Events() {
		if e.Action == "trigger" {
			triggers++
		}
	}
	if triggers != 1 {
		t.Errorf("%d PagerDuty triggers; want api's only", triggers)
	}
	if d, _ := h.a.store.Deploy(t.Context(), canary); d.Status != store.StatusCancelled {
		t.Errorf("the canary's deploy is %s; want cancelled", d.Status)
	}
	if runs, err := h.a.store.DeployRuns(t.Context(), canary); err != nil || len(runs) > 0 {
		t.Errorf("the cancelled deploy has %d runs (%v); want none: its verification stopped", len(runs), err)
	}

	// A post-rollout webhook without metadata.type is known by its phase; the deploy it
	// ends is the canary's newest (A, B, A: the last A).
	for _, checksum := range []string{"9f3c21aa07", "85d557f47b"} {
		if status, out := flaggerCall(t, h, "", h.token, flaggerHookPayload("podinfo", "test", "Progressing", checksum, nil)); status != http.StatusTooEarly {
			t.Fatalf("canary %s: %d %v; want 425", checksum, status, out)
		}
	}
	status, out = flaggerCall(t, h, "", h.token, strings.Replace(flaggerDocsPayload, "Progressing", "Failed", 1))
	if status != http.StatusOK || out["verdict"] != store.StatusCancelled || out["deploy"] == canary {
		t.Errorf("an untyped post-rollout Failed: %d %v; want 200, the newest deploy of the checksum cancelled", status, out)
	}
	if n := len(deploysOf(t, h, "podinfo")); n != 3 {
		t.Errorf("%d deploys of podinfo; want 3: a post-rollout call registers none", n)
	}
}

// A promoted canary (phase Succeeded) changes nothing: the call answers its verdict. A
// canary vigil passed and Flagger failed later keeps its verdict. A post-rollout call for
// a canary vigil never verified registers nothing.
func TestFlaggerPostRolloutSucceededAnswersTheVerdict(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", flaggerConfig(tg.srv.URL, "interval: 100ms, count: 2"))
	post := func(phase, checksum string) (int, map[string]any) {
		return flaggerCall(t, h, "", h.token, flaggerHookPayload("podinfo", "test", phase, checksum, map[string]string{"type": "post-rollout"}))
	}
	status, out := flaggerCall(t, h, "?wait=20s", h.token, flaggerHookPayload("podinfo", "test", "Progressing", "85d557f47b", map[string]string{"type": "pre-rollout"}))
	if status != http.StatusOK || out["verdict"] != store.StatusPassed {
		t.Fatalf("pre-rollout: %d %v; want 200 passed", status, out)
	}
	passed := out["deploy"]
	if status, out := post("Succeeded", "85d557f47b"); status != http.StatusOK || out["verdict"] != store.StatusPassed || out["deploy"] != passed {
		t.Errorf("post-rollout Succeeded: %d %v; want 200 with deploy %v's verdict, passed", status, out, passed)
	}
	if status, out := post("Failed", "85d557f47b"); status != http.StatusOK || out["verdict"] != store.StatusPassed || out["deploy"] != passed {
		t.Errorf("post-rollout Failed of a canary vigil passed: %d %v; want 200, passed: a verdict stands", status, out)
	}
	for _, phase := range []string{"Succeeded", "Failed"} {
		status, out := post(phase, "0000000000")
		if reason, _ := out["reason"].(string); status != http.StatusOK || out["verdict"] != "none" || !strings.Contains(reason, "no deploy of canary podinfo.test (checksum 0000000000)") {
			t.Errorf("post-rollout %s of a canary vigil never saw: %d %v; want 200, verdict none, saying so", phase, status, out)
		}
	}
	if status, out := post("Progressing", "85d557f47b"); status != http.StatusBadRequest || !strings.Contains(str(out["error"]), "is metadata.type right?") {
		t.Errorf("a post-rollout type while progressing: %d %v; want 400 asking about metadata.type", status, out)
	}
	if n := len(deploysOf(t, h, "podinfo")); n != 1 {
		t.Errorf("%d deploys; want the canary's one: post-rollout calls register none", n)
	}
}

// A Canary deleted during its analysis ends Terminating, then Terminated: not promoted,
// as Failed. Its deploy is cancelled.
func TestFlaggerPostRolloutTerminatedCancels(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", flaggerConfig(tg.srv.URL, "initial_delay: 1m, interval: 100ms, count: 2"))
	for i, phase := range []string{"Terminating", "Terminated"} {
		checksum := fmt.Sprintf("c%d", i)
		_, out := flaggerCall(t, h, "", h.token, flaggerHookPayload("podinfo", "test", "Progressing", checksum, nil))
		status, ended := flaggerCall(t, h, "", h.token, flaggerHookPayload("podinfo", "test", phase, checksum, map[string]string{"type": "post-rollout"}))
		if status != http.StatusOK || ended["verdict"] != store.StatusCancelled || ended["deploy"] != out["deploy"] || !strings.Contains(str(ended["reason"]), "Flagger ended canary podinfo.test "+phase) {
			t.Errorf("post-rollout %s: %d %v; want 200, deploy %v cancelled", phase, status, ended, out["deploy"])
		}
	}
}
