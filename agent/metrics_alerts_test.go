package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/promtest"
	"github.com/vigil-monitor/vigil/store"
)

// The alert rules METRICS.md gives for a failed deploy and a dead-lettered rollback webhook
// fire, in a real Prometheus scraping the agent, on the first such event since the agent
// started: increase() sees a counter go from 0 to 1, but a series first scraped at 1 has
// increased by nothing. So every configured service's verdicts and every configured
// notifier's outcomes are exported at 0 from the start. The rules on the service's last
// verdict and on a heartbeat job's failing beat fire too.
func TestAlertsOnTheFirstFailedDeployAndDeadLetter(t *testing.T) {
	tg := newTarget(t)
	refuser := loopback.NewWebhook(t)
	refuser.Fail(loopback.Fault{Status: 400, Times: 100})
	const token = "beat-token-0123456789"
	yaml := webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2", service: "on_failure: [rollback]",
		top: "notifiers:" + webhookNotifier("rollback", "rollback", refuser)}.String()
	yaml = strings.Replace(yaml, "\nservices:", "\n  - {name: nightly, kind: heartbeat, every: 1h, window: 25h, token: "+token+"}\nservices:", 1)
	h := startAgent(t, "", yaml)
	prom := promtest.Start(t, promtest.Options{Targets: []string{strings.TrimPrefix(h.url, "http://")}})
	prom.WaitForScrape(t, 30*time.Second)
	for q, want := range map[string]string{
		`vigil_notifications_total{notifier="rollback",outcome="dead"}`:  "0",
		`vigil_deploy_verdicts_total{service="web",verdict="failed"}`:    "0",
		`vigil_deploy_verdicts_total{service="web",verdict="cancelled"}`: "0",
		`vigil_rollbacks_total{service="web"}`:                           "0",
		`vigil_deploy_last_verdict{service="web",verdict="failed"}`:      "0",
	} {
		if got, err := prom.Query(t.Context(), q); got != want {
			t.Errorf("before any deploy, %s = %q (%v), want %s", q, got, err, want)
		}
	}

	tg.set("broken")
	id := h.deploy("web", "v2")
	h.verdict(id, 30*time.Second)
	h.outboxSettled(id+":deploy_failed", map[string]string{"rollback": store.OutboxDead})
	h.beat("nightly", token, `{"status":"fail"}`)
	for _, alert := range []string{
		`increase(vigil_deploy_verdicts_total{verdict="failed"}[15m]) > 0`,
		`increase(vigil_notifications_total{outcome="dead"}[15m]) > 0`,
		`vigil_deploy_last_verdict{verdict="failed"} == 1`,
		`vigil_heartbeat_last_beat_status{status="fail"} == 1`,
	} {
		var got string
		deadline := time.Now().Add(30 * time.Second)
		for got == "" && time.Now().Before(deadline) {
			got, _ = prom.Query(t.Context(), alert)
			time.Sleep(200 * time.Millisecond)
		}
		if got == "" {
			body := h.scrape()
			t.Errorf("%s did not fire after the first failed deploy, dead letter and failing beat; /metrics:\n%s", alert,
				grepLines(body, "vigil_deploy_")+"\n"+grepLines(body, "vigil_notifications_total")+"\n"+grepLines(body, "vigil_heartbeat_last_beat"))
		}
	}
}

// A notifier a reload adds has its series at 0 from that reload, as one configured at start.
func TestANotifierAddedByAReloadStartsAtZero(t *testing.T) {
	tg := newTarget(t)
	hook := loopback.NewWebhook(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2"}.String())
	want := `vigil_notifications_total{notifier="audit",outcome="dead"} 0`
	if strings.Contains(h.scrape(), want) {
		t.Fatalf("before the reload: %s", want)
	}
	if err := reloadWith(t, h, webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2", service: "on_failure: [audit]",
		top: "notifiers:" + webhookNotifier("audit", "rollback", hook)}.String()); err != nil {
		t.Fatal(err)
	}
	if body := h.scrape(); !strings.Contains(body, want) {
		t.Errorf("after the reload that added it, /metrics lacks %s:\n%s", want, grepLines(body, "vigil_notifications_total"))
	}
}
