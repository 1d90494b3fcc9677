package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/pgtest"
	"github.com/vigil-monitor/vigil/store"
)

// Three `vigil agent` processes in three locations share one throwaway PostgreSQL. Each
// cycle registers a broken deploy through a random agent and SIGKILLs a random agent:
// during verification (right after the registration; the verdict needs two failing rounds
// 500ms apart, so it cannot come first), or during delivery (the agent
// holding the rollback's claim, after the receiver accepted it and before vigil heard the
// 2xx). The killed agent is restarted. Every deploy reaches one failed verdict; every
// rollback key is one outbox entry, delivered; a key killed mid-delivery arrives once
// more with the same Idempotency-Key (from whichever agent took it over), any other once.
func TestPostgresAgentsSurviveKills(t *testing.T) {
	cycles := 20 // the suite size; about 20 s
	if n, err := strconv.Atoi(os.Getenv("VIGIL_PG_KILL_CYCLES")); err == nil && n > 0 {
		cycles = n // scripts/soak-postgres runs more
	}
	srv := pgtest.Start(t, pgtest.Options{})
	dsn := srv.Database(t)
	a := newApp(t)
	a.mode.Store("broken")
	hook := loopback.NewWebhook(t)
	locs := []string{"eu", "us", "ap"}
	procs := map[string]*agentProc{}
	cfgs, addrs := map[string]string{}, map[string]string{}
	dir := t.TempDir()
	for _, loc := range locs {
		cfgs[loc] = filepath.Join(dir, loc+".yaml")
		body := fmt.Sprintf(`
agent: {location: %s, name: agent-%s, heartbeat: 200ms, outbox_lease: 3s}
store: {driver: postgres, dsn: %q, pool: {max_conns: 4}}
locations: {min: 0, fail: 1, wait: 20s}
checks:
  - {name: home, kind: http, every: 1h, retries: 0, request: {url: "%s/"}, assert: ["status == 200"]}
services:
  web: {checks: [home], verify: {interval: 500ms, count: 3, failure_limit: 1}, on_failure: [rollback]}
notifiers:
  rollback: {type: webhook, url: %q, secret: %q, action: rollback, timeout: 30s, max_attempts: 50}
`, loc, loc, dsn, a.URL, hook.URL(), loopback.WebhookSecret)
		if err := os.WriteFile(cfgs[loc], []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		addrs[loc] = freeAddr(t)
		procs[loc] = startAgentProc(t, cfgs[loc], addrs[loc])
	}
	st, err := store.OpenPostgres(t.Context(), dsn, store.PoolOptions{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	waitFor := func(i int, what string, limit time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("cycle %d: %s", i, what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	alive := func() {
		waitFor(-1, "the agents to see each other", 30*time.Second, func() bool {
			ms, err := st.Members(t.Context())
			n := 0
			for _, m := range ms {
				if err == nil && m.Stopped.IsZero() && time.Since(m.Heartbeat) < time.Second {
					n++
				}
			}
			return n == len(locs)
		})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var keys []string
	accepted := map[string]int{} // times each key must have been accepted by the end
	var deploys []string
	for i := range cycles {
		alive()
		duringDelivery := i%2 == 1
		if duringDelivery {
			hook.Fail(loopback.Fault{AcceptThenHang: true})
		}
		via := locs[rng.IntN(len(locs))]
		resp, err := http.Post(procs[via].url+"/api/v1/deploys", "application/json", strings.NewReader(fmt.Sprintf(`{"service":"web","version":"v%d"}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		var reg struct{ ID string }
		_ = json.NewDecoder(resp.Body).Decode(&reg)
		resp.Body.Close()
		key := reg.ID + ":deploy_failed"
		keys, deploys = append(keys, key), append(deploys, reg.ID)
		victim := locs[rng.IntN(len(locs))]
		accepted[key] = 1
		if duringDelivery {
			waitFor(i, "the receiver never accepted the webhook", 60*time.Second, func() bool { return hook.Count(key) == 1 })
			entries, err := st.OutboxByKey(t.Context(), key)
			if err != nil || len(entries) != 1 {
				t.Fatalf("cycle %d: outbox entries for %s: %v %v", i, key, entries, err)
			}
			victim = strings.TrimPrefix(entries[0].ClaimedBy, "agent-")
			if procs[victim] == nil {
				t.Fatalf("cycle %d: the rollback is claimed by %q", i, entries[0].ClaimedBy)
			}
			accepted[key] = 2
		}
		procs[victim].kill()
		procs[victim] = startAgentProc(t, cfgs[victim], addrs[victim])
		waitFor(i, "no failed verdict", 90*time.Second, func() bool {
			d, err := st.Deploy(t.Context(), reg.ID)
			return err == nil && d.Status == store.StatusFailed
		})
		waitFor(i, "the rollback not delivered", 90*time.Second, func() bool { return hook.Count(key) >= accepted[key] })
		// Recorded as delivered before the next cycle's kill: a kill between the receiver's
		// 2xx and the record would send the key once more, rightly, but not as counted here.
		waitFor(i, "the rollback not recorded as delivered", 90*time.Second, func() bool {
			entries, err := st.OutboxByKey(t.Context(), key)
			return err == nil && len(entries) == 1 && entries[0].Status == store.OutboxDelivered
		})
		t.Logf("cycle %d: deploy via %s, SIGKILL of %s during %s", i, via, victim, map[bool]string{true: "delivery", false: "verification"}[duringDelivery])
	}
	waitFor(cycles, "the outbox to settle", 60*time.Second, func() bool {
		for _, key := range keys {
			entries, err := st.OutboxByKey(t.Context(), key)
			if err != nil || len(entries) != 1 || entries[0].Status != store.OutboxDelivered {
				return false
			}
		}
		return true
	})
	for _, key := range keys {
		if got := hook.Count(key); got != accepted[key] {
			t.Errorf("key %s accepted %d times; want %d", key, got, accepted[key])
		}
	}
	if got := len(hook.Counts()); got != cycles {
		t.Errorf("%d rollback keys accepted; want %d", got, cycles)
	}
	t.Logf("reliability: postgres kill test: %d cycles, 3 agents in 3 locations: %d verdicts failed once, %d rollback keys each one delivered outbox entry",
		cycles, len(deploys), len(keys))
}
