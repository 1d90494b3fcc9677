package agent

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// A failed deploy's Slack message triages: when it was detected, how many checks passed,
// the version production goes back to, the pipeline's links, the owners as mentions and
// the runbook; the reason is printed once; after the rollback the root says what the
// rollback did, not "calling rollback".
func TestFailedDeployMessageTriages(t *testing.T) {
	tg := newTarget(t)
	slack := loopback.NewSlack(t)
	hook := loopback.NewWebhook(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2",
		service: "on_failure: [slack, rollback]\nowners: [S0614TZR7]\nrunbook_url: https://wiki.example/runbooks/web",
		top:     "notifiers:" + slackNotifier(slack) + webhookNotifier("rollback", "rollback", hook)}.String())

	tg.set("good")
	if d := h.verdict(h.deploy("web", "v1"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("v1: %v", d["status"])
	}
	tg.set("broken")
	status, out := h.request("POST", "/api/v1/deploys", `{"service":"web","version":"v2","links":[{"name":"CI run","url":"https://ci.example/runs/7"}]}`)
	if status != http.StatusAccepted {
		t.Fatalf("POST /api/v1/deploys = %d %v", status, out)
	}
	bad := out["id"].(string)
	if d := h.verdict(bad, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("v2: %v", d["status"])
	}
	eventually(t, 30*time.Second, "the root updated with the rollback's result", func() bool {
		roots := slack.Roots()
		return len(roots) == 1 && strings.Contains(roots[0].BlocksText(), "accepted the rollback")
	})
	root := slack.Roots()[0].BlocksText()
	for _, want := range []string{"production goes back to v1", "0 of 1 checks passed", "<!subteam^S0614TZR7>",
		"<https://ci.example/runs/7|CI run>", "<https://wiki.example/runbooks/web|Runbook>", "*Rollback target*\nv1"} {
		if !strings.Contains(root, want) {
			t.Errorf("the root lacks %q:\n%s", want, root)
		}
	}
	if !regexp.MustCompile(`Failed [0-9.]+ (ms|s) after the deploy was registered`).MatchString(root) {
		t.Errorf("the root does not say when the failure was detected:\n%s", root)
	}
	if strings.Contains(root, "calling rollback") || strings.Contains(root, "webhook rollback called") {
		t.Errorf("the root still announces the rollback as pending, or in the old words:\n%s", root)
	}
	if n := strings.Count(root, "status == 200"); n != 1 {
		t.Errorf("the reason shows %d times on the root; want once:\n%s", n, root)
	}
	status, out = h.request("GET", "/api/v1/deploys/"+bad, "")
	if links, _ := out["links"].([]any); status != http.StatusOK || len(links) != 1 {
		t.Errorf("GET the deploy: %d, links %v", status, out["links"])
	}
	status, out = h.request("POST", "/api/v1/deploys", `{"service":"web","version":"v3","links":[{"name":"x","url":"ftp://nope"}]}`)
	if status != http.StatusBadRequest || !strings.Contains(out["error"].(string), "links[0].url") {
		t.Errorf("a bad link: %d %v", status, out)
	}
}
