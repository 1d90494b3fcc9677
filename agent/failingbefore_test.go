package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// A hotfix shipped into an outage that does not end it is not rolled back as if it had
// caused it, where the pipeline registers its deploys before the rollout. A real agent:
// the shop answers 500, the check's incident opens; for a service registered after its
// rollouts (the default) a deploy that leaves it so is failed; with
// registered_before_rollout it is inconclusive, naming the outage, with no rollback
// called; a deploy that fails another way (200 with a maintenance page) is failed and
// rolled back; after that failed deploy, failing as before fails the next one too (the
// outage may be the failed deploy's); the fix passes.
func TestAFailureFromBeforeTheDeployIsNotTheDeploys(t *testing.T) {
	var mode atomic.Value
	mode.Store("ok")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load().(string) {
		case "500":
			http.Error(w, "not ok: upstream database unavailable", http.StatusInternalServerError)
		case "maintenance":
			fmt.Fprint(w, "down for maintenance")
		default:
			fmt.Fprint(w, "ok")
		}
	}))
	t.Cleanup(srv.Close)
	hook := loopback.NewWebhook(t)
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - {name: home, kind: http, every: 1s, timeout: 2s, retries: 0, failure_threshold: 2, request: {url: %q}, assert: ["status == 200", "body contains 'ok'"]}
services:
  web: {checks: [home], verify: {interval: 100ms, count: 3, registered_before_rollout: true}, on_failure: [rollback]}
  gated-after: {checks: [home], verify: {interval: 100ms, count: 3}}
notifiers:%s
`, srv.URL+"/", webhookNotifier("rollback", "rollback", hook)))
	eventually(t, 20*time.Second, "a first passing run", func() bool { return h.a.lastResult("home") != nil })
	mode.Store("500")
	eventually(t, 20*time.Second, "home's incident", func() bool {
		h.a.incMu.Lock()
		defer h.a.incMu.Unlock()
		in := h.a.incidents["home"]
		return in != nil && in.Open
	})

	// A pipeline that registers after the rollout: the runs before the registration may
	// already be the new version's, and every failure counts.
	if d := h.verdict(h.deploy("gated-after", "v2"), 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("without registered_before_rollout: %v %q; want failed", d["status"], d["reason"])
	}
	hotfix := h.deploy("web", "v2")
	d := h.verdict(hotfix, 30*time.Second)
	want := "home: failing as before the deploy in 3 of 3 rounds (its incident has been open since "
	if d["status"] != store.StatusInconclusive || !strings.Contains(fmt.Sprint(d["reason"]), want) ||
		!strings.Contains(fmt.Sprint(d["reason"]), "failing as before the deploy: status == 200 is false: status = 500") {
		t.Fatalf("a deploy into the outage that does not end it: %v %q; want inconclusive with %q", d["status"], d["reason"], want)
	}
	mode.Store("maintenance")
	broke := h.deploy("web", "v3")
	d = h.verdict(broke, 30*time.Second)
	if d["status"] != store.StatusFailed || !strings.Contains(fmt.Sprint(d["reason"]), `body contains 'ok' is false`) {
		t.Fatalf("a deploy that fails another way: %v %q; want failed", d["status"], d["reason"])
	}
	h.outboxSettled(broke+":deploy_failed", map[string]string{"rollback": store.OutboxDelivered})
	for _, del := range hook.Deliveries() {
		if strings.Contains(string(del.Body), hotfix) {
			t.Errorf("the rollback webhook was called for the deploy into the outage: %s", del.Body)
		}
	}
	// After a failed deploy the outage may be that deploy's: the same failure as before
	// fails the next deploy too, and the rollback goes back to the version that passed.
	mode.Store("500")
	eventually(t, 20*time.Second, "a scheduled run failing with 500", func() bool {
		r := h.a.lastResult("home")
		return r != nil && r.Started.After(time.Now().Add(-time.Second)) && strings.Contains(strings.Join(r.Reasons, " "), "status = 500")
	})
	if d := h.verdict(h.deploy("web", "v3.1"), 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("a deploy after a failed one, failing as before it: %v %q; want failed", d["status"], d["reason"])
	}
	mode.Store("ok")
	if d := h.verdict(h.deploy("web", "v4"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("the fix: %v %q; want passed", d["status"], d["reason"])
	}
}
