package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/pgtest"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
	"github.com/vigil-monitor/vigil/store"
)

// Agents in three locations share one throwaway PostgreSQL, each checking its own target
// (a region's view of the service), all routing deploy_failed to one recording webhook.

type locFleet struct {
	t      *testing.T
	srv    *pgtest.Server
	dsn    string
	hook   *loopback.Webhook
	ops    *loopback.Webhook
	agents map[string]*harness
	tgs    map[string]*target
	every  string
}

var threeLocations = []string{"eu", "us", "ap"}

// newLocFleet starts a PostgreSQL and one agent per location with the given quorum.
// every, when given, is how often the check runs between deploys (default 1h: never).
func newLocFleet(t *testing.T, quorum string, every ...string) *locFleet {
	t.Helper()
	srv := pgtest.Start(t, pgtest.Options{})
	f := &locFleet{t: t, srv: srv, dsn: srv.Database(t), hook: loopback.NewWebhook(t), ops: loopback.NewWebhook(t), agents: map[string]*harness{}, tgs: map[string]*target{}, every: "1h"}
	if len(every) > 0 {
		f.every = every[0]
	}
	for _, loc := range threeLocations {
		f.tgs[loc] = newTarget(t)
		f.agents[loc] = f.start(loc, quorum)
	}
	return f
}

func (f *locFleet) config(loc, quorum string) string {
	return f.configAs("agent-"+loc, loc, f.tgs[loc], quorum)
}

// configAs is the config of the agent name in loc, checking tg.
func (f *locFleet) configAs(name, loc string, tg *target, quorum string) string {
	return fmt.Sprintf(`
agent: {location: %s, name: %s, heartbeat: 500ms, outbox_lease: 2s}
store: {driver: postgres, dsn: %q}
locations: {%s, notify: [ops]}
checks:
  - {name: home, kind: http, every: %s, failure_threshold: 1, success_threshold: 1, timeout: 2s, retries: 0, request: {url: %q}, assert: ["status == 200"]}
services:
  web: {checks: [home], verify: {interval: 100ms, count: 3}, on_failure: [rollback]}
notifiers:%s
  ops: {type: webhook, url: %s, secret: %s}
`, loc, name, f.dsn, quorum, f.every, tg.srv.URL+"/", webhookNotifier("rollback", "rollback", f.hook), f.ops.URL(), loopback.WebhookSecret)
}

// start runs the agent of loc on its own PostgreSQL store.
func (f *locFleet) start(loc, quorum string) *harness {
	f.t.Helper()
	return f.launch(loc, f.config(loc, quorum))
}

// launch runs an agent of loc with config on its own PostgreSQL store.
func (f *locFleet) launch(loc, config string) *harness {
	t := f.t
	t.Helper()
	st, err := store.OpenPostgres(context.Background(), f.dsn, store.PoolOptions{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	logs := &vigiltest.Buffer{}
	l := launch(t, dir, config, Options{Store: st,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	h := &harness{t: t, a: l.a, dir: dir, cfgPath: l.path, url: l.url, logs: logs}
	h.stopFn = func() {
		if err := l.stop(); err != nil {
			t.Errorf("agent %s: %v", loc, err)
		}
		st.Close()
	}
	t.Cleanup(func() {
		h.stop()
		if t.Failed() {
			t.Logf("agent %s log:\n%s", loc, logs.String())
		}
	})
	return h
}

// waitMembers waits until every agent sees n agents alive (each joins on start, but a
// deploy registered before another agent's first heartbeat would not expect it).
func (f *locFleet) waitMembers(n int) {
	f.t.Helper()
	for _, h := range f.agents {
		eventually(f.t, 10*time.Second, "the agents to see each other alive", func() bool {
			ms, err := h.a.store.Members(f.t.Context())
			alive := 0
			for _, m := range ms {
				if h.a.stateOf(m, time.Now()) == memberAlive {
					alive++
				}
			}
			return err == nil && alive >= n
		})
	}
}

func TestLocationsBrokenEverywhereOneVerdictOneRollback(t *testing.T) {
	f := newLocFleet(t, "fail: 2")
	f.waitMembers(3)
	for _, tg := range f.tgs {
		tg.set("broken")
	}
	id := f.agents["eu"].deploy("web", "v2")
	for _, loc := range threeLocations {
		d := f.agents[loc].verdict(id, 60*time.Second)
		if d["status"] != store.StatusFailed {
			t.Fatalf("%s sees %v (%v); want failed", loc, d["status"], d["reason"])
		}
		if !strings.Contains(fmt.Sprint(d["reason"]), "failing in") {
			t.Errorf("reason %q does not say how many locations failed", d["reason"])
		}
	}
	f.agents["us"].outboxSettled(id+":deploy_failed", map[string]string{"rollback": store.OutboxDelivered})
	if n := f.hook.Count(id + ":deploy_failed"); n != 1 {
		t.Fatalf("rollback webhook received %d times; want exactly 1", n)
	}
	status, out := f.agents["ap"].request("GET", "/api/v1/agents", "")
	if status != http.StatusOK {
		t.Fatalf("GET /api/v1/agents = %d %v", status, out)
	}
	list, _ := out["agents"].([]any)
	if len(list) != 3 {
		t.Fatalf("GET /api/v1/agents lists %d agents; want 3: %v", len(list), out)
	}
	page := f.agents["ap"].page("/")
	for _, loc := range threeLocations {
		if !strings.Contains(page, "agent-"+loc) {
			t.Errorf("the status page does not list agent-%s", loc)
		}
	}
	for _, m := range list {
		m := m.(map[string]any)
		if m["location"] == "" || m["version"] == "" || m["last_heartbeat"] == "" || m["state"] != "alive" {
			t.Errorf("agent listed without location, version, heartbeat or alive: %v", m)
		}
	}
}

func TestLocationsBrokenInOneLocationIsBelowTheQuorum(t *testing.T) {
	f := newLocFleet(t, "fail: 2")
	f.waitMembers(3)
	f.tgs["ap"].set("broken")
	id := f.agents["us"].deploy("web", "v2")
	d := f.agents["eu"].verdict(id, 60*time.Second)
	if d["status"] != store.StatusPassed {
		t.Fatalf("status %v (%v); want passed: one failing location is short of fail: 2", d["status"], d["reason"])
	}
	if r := fmt.Sprint(d["reason"]); !strings.Contains(r, "passed in 2 of 3 locations") || !strings.Contains(r, "ap:") {
		t.Errorf("reason %q should say 2 of 3 passed and name ap as failing", r)
	}
	if n := f.hook.Count(id + ":deploy_failed"); n != 0 {
		t.Fatalf("rollback webhook received %d times; want none", n)
	}
	// The deploy page, from any agent, shows what each location reported.
	resp, err := http.Get(f.agents["us"].url + "/deploys/" + id)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for loc, verdict := range map[string]string{"eu": "passed", "us": "passed", "ap": "failed"} {
		row := regexp.MustCompile(`(?s)<tr class="location" data-location="` + loc + `">.*?</tr>`).Find(page)
		if row == nil || !strings.Contains(string(row), ">"+verdict+"<") || !strings.Contains(string(row), "agent-"+loc) {
			t.Errorf("the deploy page's row for %s is %q; want %s, reported by agent-%s", loc, row, verdict, loc)
		}
	}
}

func TestLocationsSilentLocationMakesItInconclusive(t *testing.T) {
	f := newLocFleet(t, "min: 0, wait: 1s")
	f.waitMembers(3)
	// ap is alive when the deploy is registered, so it is expected; its target hangs, and
	// it stops before its window ends: it never reports.
	f.tgs["ap"].delay.Store(int64(5 * time.Second))
	f.tgs["ap"].set("slow")
	id := f.agents["eu"].deploy("web", "v2")
	f.agents["ap"].stop()
	d := f.agents["us"].verdict(id, 60*time.Second)
	if d["status"] != store.StatusInconclusive {
		t.Fatalf("status %v (%v); want inconclusive", d["status"], d["reason"])
	}
	if r := fmt.Sprint(d["reason"]); !strings.Contains(r, "ap never reported") && !strings.Contains(r, "only 2 locations") {
		t.Errorf("reason %q does not name the silent location", r)
	}
}

// The database restarts while the locations verify: reports wait for it, and the verdict
// is still reached, once.
func TestLocationsDatabaseRestartMidVerification(t *testing.T) {
	f := newLocFleet(t, "fail: 2")
	f.waitMembers(3)
	for _, tg := range f.tgs {
		tg.set("broken")
	}
	id := f.agents["eu"].deploy("web", "v3")
	if err := f.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	var d *store.Deploy
	eventually(t, 90*time.Second, "a verdict after the restart", func() bool {
		got, err := f.agents["ap"].a.store.Deploy(t.Context(), id)
		d = got
		return err == nil && got.Status != store.StatusVerifying
	})
	if d.Status != store.StatusFailed {
		t.Fatalf("status %v (%v); want failed", d.Status, d.Reason)
	}
	f.agents["eu"].outboxSettled(id+":deploy_failed", map[string]string{"rollback": store.OutboxDelivered})
	if n := f.hook.Count(id + ":deploy_failed"); n != 1 {
		t.Fatalf("rollback webhook received %d times; want exactly 1", n)
	}
}

// An agent that stops heartbeating without a clean stop makes its location silent: one
// incident, announced once however many agents notice, closed when the agent is forgotten.
func TestLocationsSilentAgentIsAnIncident(t *testing.T) {
	f := newLocFleet(t, "fail: 1")
	f.waitMembers(3)
	ghost := &store.Member{Name: "ghost-1", Instance: "x", Location: "sa", Version: "test", Services: []string{"web"},
		Started: time.Now().Add(-time.Hour), Heartbeat: time.Now().Add(-time.Minute)}
	if _, err := f.agents["eu"].a.store.Heartbeat(t.Context(), ghost); err != nil {
		t.Fatal(err)
	}
	opened := "location:sa:1:check_failed"
	eventually(t, 30*time.Second, "the silent location's incident", func() bool { return f.ops.Count(opened) > 0 })
	status, out := f.agents["us"].request("GET", "/api/v1/agents", "")
	if status != http.StatusOK || !strings.Contains(fmt.Sprint(out), "state:silent") {
		t.Errorf("GET /api/v1/agents = %d %v; want ghost-1 silent", status, out)
	}
	if status, out := f.agents["ap"].request("DELETE", "/api/v1/agents/ghost-1", ""); status != http.StatusNoContent {
		t.Fatalf("DELETE /api/v1/agents/ghost-1 = %d %v", status, out)
	}
	closed := "location:sa:1:check_recovered"
	eventually(t, 30*time.Second, "the incident to close", func() bool { return f.ops.Count(closed) > 0 })
	f.agents["eu"].outboxSettled(opened, map[string]string{"ops": store.OutboxDelivered})
	f.agents["eu"].outboxSettled(closed, map[string]string{"ops": store.OutboxDelivered})
	if a, b := f.ops.Count(opened), f.ops.Count(closed); a != 1 || b != 1 {
		t.Errorf("ops received the opening %d times and the closing %d times; want once each", a, b)
	}
}

// A scheduled check failing in two of three locations opens one incident under fail: 2,
// saying so; failing in one does not.
func TestLocationsScheduledIncidentAtTheQuorum(t *testing.T) {
	f := newLocFleet(t, "fail: 2", "1s")
	f.waitMembers(3)
	for _, loc := range threeLocations { // each location's first run, at a random offset in the first second
		eventually(t, 30*time.Second, loc+"'s first run", func() bool {
			cl, err := f.agents[loc].a.store.CheckLocations(t.Context(), loc)
			return err == nil && cl["home"] != nil
		})
	}
	f.tgs["eu"].set("broken")
	eventually(t, 30*time.Second, "eu to count as failing", func() bool {
		cl, err := f.agents["eu"].a.store.CheckLocations(t.Context(), "eu")
		return err == nil && cl["home"] != nil && cl["home"].Failing
	})
	if in, _ := f.agents["ap"].a.store.Incidents(t.Context()); in["home"] != nil && in["home"].Open {
		t.Fatalf("one failing location opened the incident under fail: 2: %+v", in["home"])
	}
	f.tgs["us"].set("broken")
	eventually(t, 30*time.Second, "the check's incident", func() bool {
		in, err := f.agents["ap"].a.store.Incidents(t.Context())
		return err == nil && in["home"] != nil && in["home"].Open
	})
	in, _ := f.agents["ap"].a.store.Incidents(t.Context())
	if s := in["home"].Summary; !strings.Contains(s, "failing in 2 of 3 locations (eu, us)") {
		var rows []string
		for _, loc := range threeLocations {
			cl, err := f.agents["ap"].a.store.CheckLocations(t.Context(), loc)
			rows = append(rows, fmt.Sprintf("%s: %v %v", loc, cl["home"], err))
		}
		t.Errorf("summary %q; want it to say failing in 2 of 3 locations (eu, us); streaks: %s", s, strings.Join(rows, "; "))
	}
	if in["home"].Seq != 1 {
		t.Errorf("incident opened %d times; want once", in["home"].Seq)
	}
}

// Two agents in one location, each with its own path to the service (behind a draining
// load balancer, one reaches a backend that fails, the other a healthy one): the first to
// run the check keeps the location's streak and opens the incident; the other's passing
// runs do not write over it. When the keeper stops, the other takes the streak over as it
// stands, failing, and closes the incident with its own passes: one opening, one closing.
func TestLocationsTwoAgentsInOneLocation(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Options{})
	f := &locFleet{t: t, srv: srv, dsn: srv.Database(t), hook: loopback.NewWebhook(t), ops: loopback.NewWebhook(t),
		agents: map[string]*harness{}, tgs: map[string]*target{}, every: "1s"}
	draining, healthy := newTarget(t), newTarget(t)
	draining.set("broken")
	config := func(name string, tg *target) string { // the check's incidents go to ops
		return strings.Replace(f.configAs(name, "eu", tg, "fail: 1"), `assert: ["status == 200"]}`, `assert: ["status == 200"], notify: [ops]}`, 1)
	}
	one := f.launch("eu", config("eu-1", draining))
	st, err := store.OpenPostgres(t.Context(), f.dsn, store.PoolOptions{MaxConns: 1}) // outlives both agents
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	streak := func() *store.CheckLocation {
		cl, err := st.CheckLocation(t.Context(), "home", "eu")
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	opened, closed := "check:home:1:check_failed", "check:home:1:check_recovered"
	eventually(t, 30*time.Second, "eu-1 to open the incident", func() bool { return f.ops.Count(opened) > 0 })

	two := f.launch("eu", config("eu-2", healthy))
	runs := healthy.hits.Load()
	eventually(t, 30*time.Second, "eu-2 to run the check four times", func() bool { return healthy.hits.Load() >= runs+4 })
	if cl := streak(); cl == nil || cl.Agent != "eu-1" || !cl.Failing {
		t.Fatalf("with eu-1 alive and failing, eu-2's passes left the location's streak %+v; want eu-1's, failing", cl)
	}
	if in, _ := st.Incidents(t.Context()); in["home"] == nil || !in["home"].Open || in["home"].Seq != 1 {
		t.Fatalf("incident while eu-1 fails: %+v; want open, once", in["home"])
	}
	keeps := func(h *harness, kept, standingBy int) bool {
		got := h.scrape()
		return strings.Contains(got, fmt.Sprintf("\nvigil_streaks_kept %d\n", kept)) &&
			strings.Contains(got, fmt.Sprintf("\nvigil_streaks_standing_by %d\n", standingBy))
	}
	if !keeps(one, 1, 0) || !keeps(two, 0, 1) {
		t.Errorf("vigil_streaks_kept and vigil_streaks_standing_by: want 1 and 0 from eu-1, 0 and 1 from eu-2")
	}

	one.stop()
	eventually(t, 30*time.Second, "eu-2 to take the streak over and close the incident", func() bool { return f.ops.Count(closed) > 0 })
	if cl := streak(); cl == nil || cl.Agent != "eu-2" || cl.Failing {
		t.Errorf("after eu-1 stopped: %+v; want eu-2's streak, passing", cl)
	}
	if !keeps(two, 1, 0) {
		t.Errorf("eu-2's /metrics after the takeover does not say it keeps the streak")
	}
	two.outboxSettled(closed, map[string]string{"ops": store.OutboxDelivered})
	if a, b, n := f.ops.Count(opened), f.ops.Count(closed), len(f.ops.Counts()); a != 1 || b != 1 || n != 2 {
		t.Errorf("ops received %v; want the opening and the closing once each", f.ops.Counts())
	}
}

// Two agents in one location verify a deploy, each through its own path to the service.
// The one that finishes first passing does not decide for the location: the deploy waits
// for the other, whose backend the deploy broke (it starts failing once the first agent
// has reported), and fails, with one rollback. An awaited agent that stops is not waited
// for: the next deploy is decided on the other's report alone, without the wait running
// out.
func TestLocationsAgentsOfOneLocationEachVerify(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Options{})
	f := &locFleet{t: t, srv: srv, dsn: srv.Database(t), hook: loopback.NewWebhook(t), ops: loopback.NewWebhook(t),
		agents: map[string]*harness{}, tgs: map[string]*target{}, every: "1h"}
	quick, slow := newTarget(t), newTarget(t)
	one := f.launch("eu", f.configAs("eu-1", "eu", quick, "fail: 1"))
	// eu-2's window is long: 100 rounds, 100ms apart
	two := f.launch("eu", strings.Replace(f.configAs("eu-2", "eu", slow, "fail: 1"), "count: 3}", "count: 100}", 1))
	f.agents["eu-1"], f.agents["eu-2"] = one, two
	f.waitMembers(2)
	st, err := store.OpenPostgres(t.Context(), f.dsn, store.PoolOptions{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reported := func(id, agent string) bool {
		reports, err := st.LocationReports(t.Context(), id)
		return err == nil && slices.ContainsFunc(reports, func(r *store.LocationReport) bool { return r.Agent == agent })
	}

	id := one.deploy("web", "v2")
	eventually(t, 30*time.Second, "eu-1 to report on the deploy", func() bool { return reported(id, "eu-1") })
	slow.set("broken")
	d := two.verdict(id, 60*time.Second)
	if d["status"] != store.StatusFailed || !strings.Contains(fmt.Sprint(d["reason"]), "agents: eu-1 passed, eu-2 failed") {
		t.Fatalf("eu-1 passed, then eu-2 failed: the deploy is %v (%v); want failed, naming both agents", d["status"], d["reason"])
	}
	var said []string
	for _, l := range d["locations"].([]any) {
		l := l.(map[string]any)
		said = append(said, fmt.Sprint(l["location"], " ", l["agent"], " ", l["status"]))
	}
	if want := []string{"eu eu-1 passed", "eu eu-2 failed"}; !slices.Equal(said, want) {
		t.Errorf("the deploy's locations in the API: %q; want %q", said, want)
	}
	one.outboxSettled(id+":deploy_failed", map[string]string{"rollback": store.OutboxDelivered})
	if n := f.hook.Count(id + ":deploy_failed"); n != 1 {
		t.Errorf("rollback webhook received %d times; want exactly 1", n)
	}
	if body := string(f.hook.Deliveries()[0].Body); !strings.Contains(body, `"summary":"eu (eu-2): status == 200 is false`) {
		t.Errorf("the rollback's failed checks do not say which agent saw them fail: %s", body)
	}
	if page := one.page("/deploys/" + id); !strings.Contains(page, "eu-1") || !strings.Contains(page, "eu-2") {
		t.Errorf("the deploy page does not list both agents' reports")
	}

	slow.set("ok")
	id = one.deploy("web", "v3")
	eventually(t, 30*time.Second, "eu-1 to report on the next deploy", func() bool { return reported(id, "eu-1") })
	if _, d := one.request("GET", "/api/v1/deploys/"+id, ""); d["status"] != store.StatusVerifying {
		t.Fatalf("decided on eu-1's report while eu-2 still verified: %v (%v)", d["status"], d["reason"])
	}
	pending := regexp.MustCompile(`<td>eu-2</td><td><span class="pill run">verifying</span></td><td><span class="muted">not yet</span>`)
	if page := one.page("/deploys/" + id); !pending.MatchString(page) || !strings.Contains(page, "<td>eu-1</td><td><span class=\"pill ok\">passed</span>") {
		t.Errorf("the deploy page while eu-2 verifies does not show eu-1's pass and eu-2 pending")
	}
	two.stop()
	d = one.verdict(id, 60*time.Second)
	if d["status"] != store.StatusPassed || strings.Contains(fmt.Sprint(d["reason"]), "never reported") {
		t.Errorf("with eu-2 stopped: %v (%v); want passed on eu-1's report, without waiting for eu-2", d["status"], d["reason"])
	}
}

// A beat posted to one agent counts for every agent sharing the store: a job posting
// through a load balancer reaches either replica of a location, and the keeper of the
// check's streak may be the other one.
func TestLocationsBeatsReachEveryAgent(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Options{})
	f := &locFleet{t: t, srv: srv, dsn: srv.Database(t)}
	config := func(name string) string {
		return fmt.Sprintf(`
agent: {location: eu, name: %s, heartbeat: 200ms}
store: {driver: postgres, dsn: %q}
checks:
  - {name: nightly, kind: heartbeat, every: 1h, window: 25h, token: beat-token-0123456789}
`, name, f.dsn)
	}
	one, two := f.launch("eu", config("eu-1")), f.launch("eu", config("eu-2"))
	status, out := one.request("POST", "/api/v1/heartbeats/nightly", `{"version":"v7","message":"3.1 GB in 4m"}`,
		"Authorization", "Bearer beat-token-0123456789")
	if status != http.StatusAccepted {
		t.Fatalf("a beat to eu-1: %d %v", status, out)
	}
	_, out = two.request("POST", "/api/v1/checks/nightly/run", "")
	vars, _ := out["vars"].(map[string]any)
	if out["outcome"] != "pass" || vars["beats"] != 1.0 || vars["last_version"] != "v7" {
		t.Fatalf("eu-2's run after a beat to eu-1: %v", out)
	}
}

// page gets a status page and returns its HTML.
func (h *harness) page(path string) string {
	h.t.Helper()
	return getPage(h.t, h.url+path)
}
