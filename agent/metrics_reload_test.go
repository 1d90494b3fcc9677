package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// A service or notifier a reload removes has no series from that reload on, as a removed
// check has none, and an event that comes after it does not bring them back: here the
// verdict and ready time of api's verification, which the reload ends as inconclusive, and
// the rollback webhook delivery for web's failed deploy, under way while the reload removes
// its notifier and the service. A service the reload keeps keeps its series.
func TestMetricsOfServicesAndNotifiersRemovedByAReload(t *testing.T) {
	tg := newTarget(t)
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hook.Close)
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})
	checksYAML := fmt.Sprintf(`agent: {api_token: s3cret-token}
checks:
  - {name: home, kind: http, every: 1h, timeout: 2s, retries: 0, request: {url: %q}, assert: ["status == 200"]}
  - {name: bad, kind: http, every: 1h, timeout: 2s, retries: 0, request: {url: %q}, assert: ["status == 201"]}
services:
  kept:
    checks: [home]
    verify: {interval: 100ms, count: 2}
`, tg.srv.URL+"/", tg.srv.URL+"/")
	before := checksYAML + fmt.Sprintf(`  web:
    checks: [bad]
    verify: {interval: 100ms, count: 2}
    on_failure: [rollback]
  api:
    checks: [home]
    verify: {interval: 1s, count: 60}
notifiers:
  rollback:
    type: webhook
    url: %s
    secret: %s
    action: rollback
`, hook.URL, loopback.WebhookSecret)
	h := startAgent(t, "", before)
	kept := h.deploy("kept", "v1")
	if d := h.verdict(kept, 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("kept's deploy: %v (%v)", d["status"], d["reason"])
	}
	api := h.deploy("api", "v1")
	web := h.deploy("web", "v1")
	if d := h.verdict(web, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("web's deploy: %v (%v); want failed", d["status"], d["reason"])
	}
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the rollback webhook was never called")
	}
	eventually(t, 30*time.Second, "api's check passing once in its verification", func() bool {
		runs, err := h.a.store.DeployRuns(t.Context(), api)
		return err == nil && len(runs) > 0
	})
	body := h.scrape()
	for _, want := range []string{`service="web"`, `service="api"`, `notifier="rollback"`} {
		if !strings.Contains(body, want) {
			t.Fatalf("before the reload, no series with %s:\n%s", want, grepLines(body, "vigil_"))
		}
	}
	keptBefore := grepLines(body, `vigil_deploy_verdicts_total{service="kept",verdict="passed"}`)

	if err := reloadWith(t, h, checksYAML); err != nil {
		t.Fatal(err)
	}
	gone := func(when string) {
		t.Helper()
		body := h.scrape()
		for _, label := range []string{`service="web"`, `service="api"`, `notifier="rollback"`} {
			if left := grepLines(body, label); left != "" {
				t.Errorf("%s, series of the removed %s remain:\n%s", when, label, left)
			}
		}
		if got := grepLines(body, `vigil_deploy_verdicts_total{service="kept",verdict="passed"}`); got != keptBefore || got == "" {
			t.Errorf("%s, the kept service's passed verdicts: %q, before the reload %q", when, got, keptBefore)
		}
	}
	gone("right after the reload")

	if d := h.verdict(api, 30*time.Second); d["status"] != store.StatusInconclusive {
		t.Errorf("api's deploy: %v (%v); want inconclusive, its service removed", d["status"], d["reason"])
	}
	close(release)
	released = true
	h.outboxSettled(web+":deploy_failed", map[string]string{"rollback": store.OutboxDelivered})
	gone("after the removed service's verdict and the removed notifier's delivery")
}
