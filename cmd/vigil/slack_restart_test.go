package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/store"
)

// The agent is SIGKILLed (OOM, a node drain) while Slack is posting the incident's root
// message: Slack posted it, the answer never came, and the agent saved nothing about the
// attempt (its notifier State is saved after an attempt ends). After the restart the
// outbox tells the retry that an earlier claim ended without a result, so the root is
// looked for in the channel's history by its metadata and adopted: one root, the State's
// thread. A channel configured by name is found among the bot's channels for its id,
// which the restarted agent never heard from a post. (The retry posted a second root: the
// incident's thread split.)
func TestAKilledAgentsSlackRootIsNotPostedTwice(t *testing.T) {
	for _, byName := range []bool{false, true} {
		t.Run(map[bool]string{false: "channel id", true: "channel name"}[byName], func(t *testing.T) {
			killedWhilePosting(t, byName)
		})
	}
}

func killedWhilePosting(t *testing.T, byName bool) {
	a := newApp(t)
	a.mode.Store("broken")
	slack := loopback.NewSlack(t)
	channel := slack.Channel("deploys")
	if byName {
		channel = "#deploys"
	}
	slack.Fail("chat.postMessage", loopback.Fault{AcceptThenHang: true}) // posted; the answer is held
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	dbPath := filepath.Join(dir, "v.db")
	body := fmt.Sprintf(`
agent: {outbox_lease: 2s}
checks:
  - {name: home, kind: http, every: 1h, retries: 0, request: {url: "%s/"}, assert: ["status == 200"]}
services:
  web: {checks: [home], verify: {interval: 1h, count: 2}, on_failure: [ops]}
notifiers:
  ops: {type: slack, token: %q, channel: %q, api_url: %q, timeout: 30s, max_attempts: 50}
store: {dsn: %q}
`, a.URL, loopback.SlackToken, channel, slack.APIURL(), dbPath)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	p := startAgentProc(t, cfg, addr)
	waitFor := func(what string, limit time.Duration, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(limit); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s:\n%s", what, p.logs.String())
			}
		}
	}
	resp, err := http.Post(p.url+"/api/v1/deploys", "application/json", strings.NewReader(`{"service":"web","version":"v2"}`))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	key := reg.ID + ":deploy_failed"
	waitFor("the root message was never posted", 30*time.Second, func() bool { return len(slack.Roots()) == 1 })
	p.kill() // Slack posted it; the answer is held
	p = startAgentProc(t, cfg, addr)

	st, err := store.Open(t.Context(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var entries []*store.OutboxEntry
	waitFor("the page's outbox entry did not settle", 90*time.Second, func() bool {
		entries, err = st.OutboxByKey(t.Context(), key)
		return err == nil && len(entries) == 1 && entries[0].Status != store.OutboxPending
	})
	if e := entries[0]; e.Status != store.OutboxDelivered {
		t.Errorf("the page after the restart: %s after %d attempts (%s); want delivered", e.Status, e.Attempts, e.LastError)
	}
	roots := slack.Roots()
	if len(roots) != 1 {
		t.Errorf("the incident has %d root messages; want the one the killed agent posted", len(roots))
	}
	if n := len(slack.CallsTo("conversations.history")); n == 0 {
		t.Error("the retry after the restart did not look in the channel's history")
	}
	as, err := st.AlertState(t.Context(), "ops", reg.ID)
	if err != nil || as["ts"] != roots[0].TS || !strings.Contains(as[key+"/root_lookup"], "adopted") {
		t.Errorf("the State: thread %q, lookup %q (%v); want the posted root's %s, adopted", as["ts"], as[key+"/root_lookup"], err, roots[0].TS)
	}
	if code := p.terminate(); code != 0 {
		t.Errorf("SIGTERM: exit %d, want 0", code)
	}
}
