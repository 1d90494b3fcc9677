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

	"github.com/vigil-monitor/vigil/store"
)

// killRig is a real agent process on a SQLite store whose one service, web, fails its
// deploys (its check's target answers broken) and sends the failure to one notifier, ops:
// what the tests of an agent killed mid-delivery share.
type killRig struct {
	t           *testing.T
	cfg, addr   string
	dbPath, key string // key: the registered deploy's deploy_failed Idempotency-Key
	deploy      string
	p           *agentProc
}

// newKillRig starts the agent with notifier, the YAML of ops's value, against app.
func newKillRig(t *testing.T, app *app, notifier string) *killRig {
	t.Helper()
	return newKillRigOf(t, app, fmt.Sprintf(`{name: home, kind: http, every: 1h, retries: 0, request: {url: "%s/"}, assert: ["status == 200"]}`, app.URL), notifier)
}

// newKillRigOf is newKillRig with home, web's one check, as the YAML check (a browser check
// of app, for a screenshot).
func newKillRigOf(t *testing.T, app *app, check, notifier string) *killRig {
	t.Helper()
	app.mode.Store("broken")
	dir := t.TempDir()
	k := &killRig{t: t, cfg: filepath.Join(dir, "vigil.yaml"), dbPath: filepath.Join(dir, "v.db"), addr: freeAddr(t)}
	body := fmt.Sprintf(`
agent: {outbox_lease: 2s}
checks:
  - %s
services:
  web: {checks: [home], verify: {interval: 1h, count: 2}, on_failure: [ops]}
notifiers:
  ops: %s
store: {dsn: %q}
`, check, notifier, k.dbPath)
	if err := os.WriteFile(k.cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	k.p = startAgentProc(t, k.cfg, k.addr)
	return k
}

// register registers web v2, which fails.
func (k *killRig) register() {
	k.t.Helper()
	resp, err := http.Post(k.p.url+"/api/v1/deploys", "application/json", strings.NewReader(`{"service":"web","version":"v2"}`))
	if err != nil {
		k.t.Fatal(err)
	}
	var reg struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	k.deploy, k.key = reg.ID, reg.ID+":deploy_failed"
}

func (k *killRig) waitFor(what string, limit time.Duration, cond func() bool) {
	k.t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			k.t.Fatalf("%s:\n%s", what, k.p.logs.String())
		}
	}
}

// settled waits for the failure's outbox entry to leave pending after the restart and
// returns it, with the store it read it from (closed at the test's end).
func (k *killRig) settled(what string) (*store.OutboxEntry, *store.SQLite) {
	k.t.Helper()
	st, err := store.Open(k.t.Context(), k.dbPath)
	if err != nil {
		k.t.Fatal(err)
	}
	k.t.Cleanup(func() { st.Close() })
	var entries []*store.OutboxEntry
	k.waitFor(what+"'s outbox entry did not settle", 90*time.Second, func() bool {
		entries, err = st.OutboxByKey(k.t.Context(), k.key)
		return err == nil && len(entries) == 1 && entries[0].Status != store.OutboxPending
	})
	if e := entries[0]; e.Status != store.OutboxDelivered {
		k.t.Errorf("%s after the restart: %s after %d attempts (%s); want delivered", what, e.Status, e.Attempts, e.LastError)
	}
	return entries[0], st
}

// stop ends the agent with SIGTERM, which must exit 0.
func (k *killRig) stop() {
	k.t.Helper()
	if code := k.p.terminate(); code != 0 {
		k.t.Errorf("SIGTERM: exit %d, want 0", code)
	}
}
