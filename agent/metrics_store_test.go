package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/vigil-monitor/vigil/internal/pgtest"
	"github.com/vigil-monitor/vigil/store"
)

// gauges scrapes /metrics and returns family name's series as "label=value,..." -> value.
func (h *harness) gauges(name string) map[string]float64 {
	h.t.Helper()
	return gauges(h.t, h.scrape(), name)
}

// gauges returns the series of family name in a text exposition, as harness.gauges.
func gauges(t *testing.T, body, name string) map[string]float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	out := map[string]float64{}
	for _, m := range mfs[name].GetMetric() {
		var labels []string
		for _, l := range m.GetLabel() {
			labels = append(labels, l.GetName()+"="+l.GetValue())
		}
		out[strings.Join(labels, ",")] = m.GetGauge().GetValue()
	}
	return out
}

// lastVerdict is what vigil_deploy_last_verdict should say of service: verdict at 1 ("" for
// none), the others at 0.
func lastVerdict(service, verdict string) map[string]float64 {
	want := map[string]float64{}
	for _, v := range verdictStates {
		want["service="+service+",verdict="+v] = isState(v == verdict)
	}
	return want
}

func sameSeries(t *testing.T, when, name string, got, want map[string]float64) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("%s, %s:\n  got  %v\n  want %v", when, name, sorted(got), sorted(want))
	}
}

func sorted(m map[string]float64) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("{%s} %g", k, v))
	}
	slices.Sort(out)
	return out
}

// decidedAt is the deploy's decision time as the store has it, as the gauge gives it.
func decidedAt(t *testing.T, h *harness, id string) float64 {
	t.Helper()
	d, err := h.a.store.Deploy(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return unixSeconds(d.DecidedAt)
}

// A service's last deploy verdict is a gauge per verdict (1 for the last decided deploy's,
// 0 for the others; all 0 from the start) and the decision's time: read from the store,
// so the same right after a restart, before anything happened in the new process; a
// reload that removes the service removes its series, one that adds a service adds its
// series at 0.
func TestLastDeployVerdictMetrics(t *testing.T) {
	tg := newTarget(t)
	dir := t.TempDir()
	yaml := webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2"}.String()
	h := startAgent(t, dir, yaml)
	const verdict, at = "vigil_deploy_last_verdict", "vigil_deploy_last_verdict_timestamp_seconds"
	sameSeries(t, "before any deploy", verdict, h.gauges(verdict), lastVerdict("web", ""))
	sameSeries(t, "before any deploy", at, h.gauges(at), map[string]float64{})

	v1 := h.deploy("web", "v1")
	if d := h.verdict(v1, 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("v1: %v %v", d["status"], d["reason"])
	}
	sameSeries(t, "after v1 passed", verdict, h.gauges(verdict), lastVerdict("web", store.StatusPassed))
	sameSeries(t, "after v1 passed", at, h.gauges(at), map[string]float64{"service=web": decidedAt(t, h, v1)})

	tg.set("broken")
	v2 := h.deploy("web", "v2")
	if d := h.verdict(v2, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("v2: %v %v", d["status"], d["reason"])
	}
	failedAt := decidedAt(t, h, v2)
	sameSeries(t, "after v2 failed", verdict, h.gauges(verdict), lastVerdict("web", store.StatusFailed))
	sameSeries(t, "after v2 failed", at, h.gauges(at), map[string]float64{"service=web": failedAt})

	h.stop()
	h = startAgent(t, dir, yaml)
	sameSeries(t, "right after a restart", verdict, h.gauges(verdict), lastVerdict("web", store.StatusFailed))
	sameSeries(t, "right after a restart", at, h.gauges(at), map[string]float64{"service=web": failedAt})

	if err := reloadWith(t, h, strings.Replace(yaml, "\n  web:\n", "\n  api:\n", 1)); err != nil {
		t.Fatal(err)
	}
	sameSeries(t, "after a reload that replaced web by api", verdict, h.gauges(verdict), lastVerdict("api", ""))
	sameSeries(t, "after a reload that replaced web by api", at, h.gauges(at), map[string]float64{})
}

// beat posts a beat to a heartbeat check with its token and returns when it was received.
func (h *harness) beat(check, token, body string) float64 {
	h.t.Helper()
	status, out := h.request("POST", "/api/v1/heartbeats/"+check, body, "Authorization", "Bearer "+token)
	if status != http.StatusAccepted {
		h.t.Fatalf("a beat to %s: %d %v", check, status, out)
	}
	at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(out["received_at"]))
	if err != nil {
		h.t.Fatal(err)
	}
	return unixSeconds(at)
}

// A heartbeat check's last beat is exported as its time and its status (ok, fail): read
// from the store, so right after a restart, before the check ran again; absent before the
// first beat and after a reload removed the check.
func TestHeartbeatLastBeatMetrics(t *testing.T) {
	dir := t.TempDir()
	const token = "beat-token-0123456789"
	yaml := `
checks:
  - {name: nightly, kind: heartbeat, every: 1h, window: 25h, token: ` + token + `}
`
	h := startAgent(t, dir, yaml)
	const at, status = "vigil_heartbeat_last_beat_timestamp_seconds", "vigil_heartbeat_last_beat_status"
	sameSeries(t, "before any beat", at, h.gauges(at), map[string]float64{})
	sameSeries(t, "before any beat", status, h.gauges(status), map[string]float64{})

	first := h.beat("nightly", token, "")
	sameSeries(t, "after a plain beat", at, h.gauges(at), map[string]float64{"check=nightly": first})
	sameSeries(t, "after a plain beat", status, h.gauges(status), map[string]float64{"check=nightly,status=ok": 1, "check=nightly,status=fail": 0})
	last := h.beat("nightly", token, `{"status":"fail","message":"backup failed"}`)
	sameSeries(t, "after a failing beat", at, h.gauges(at), map[string]float64{"check=nightly": last})
	sameSeries(t, "after a failing beat", status, h.gauges(status), map[string]float64{"check=nightly,status=ok": 0, "check=nightly,status=fail": 1})

	h.stop()
	h = startAgent(t, dir, yaml) // its checks' first runs are at their random phases, an hour off
	sameSeries(t, "right after a restart", at, h.gauges(at), map[string]float64{"check=nightly": last})
	sameSeries(t, "right after a restart", status, h.gauges(status), map[string]float64{"check=nightly,status=ok": 0, "check=nightly,status=fail": 1})

	if err := reloadWith(t, h, strings.Replace(yaml, "nightly", "hourly", 1)); err != nil {
		t.Fatal(err)
	}
	sameSeries(t, "after a reload that removed the check", at, h.gauges(at), map[string]float64{})
	sameSeries(t, "after a reload that removed the check", status, h.gauges(status), map[string]float64{})
}

// Agents sharing a store report the same last verdict and last beat, whichever of them
// decided the deploy or took the beat: the store's, not the process's.
func TestLastVerdictAndBeatAreTheStoresOnEveryAgent(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Options{})
	f := &locFleet{t: t, srv: srv, dsn: srv.Database(t)}
	tg := newTarget(t)
	const token = "beat-token-0123456789"
	config := func(name string) string {
		return fmt.Sprintf(`
agent: {location: eu, name: %s, heartbeat: 200ms}
store: {driver: postgres, dsn: %q}
checks:
  - {name: home, kind: http, every: 1h, timeout: 2s, retries: 0, request: {url: %q}, assert: ["status == 200"]}
  - {name: nightly, kind: heartbeat, every: 1h, window: 25h, token: %s}
services:
  web: {checks: [home], verify: {interval: 100ms, count: 2}}
`, name, f.dsn, tg.srv.URL+"/", token)
	}
	one, two := f.launch("eu", config("eu-1")), f.launch("eu", config("eu-2"))
	tg.set("broken")
	id := one.deploy("web", "v2")
	if d := one.verdict(id, 60*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("v2: %v %v", d["status"], d["reason"])
	}
	beat := two.beat("nightly", token, "")
	for _, h := range []*harness{one, two} {
		name := h.a.name
		sameSeries(t, name, "vigil_deploy_last_verdict", h.gauges("vigil_deploy_last_verdict"), lastVerdict("web", store.StatusFailed))
		sameSeries(t, name, "vigil_deploy_last_verdict_timestamp_seconds", h.gauges("vigil_deploy_last_verdict_timestamp_seconds"),
			map[string]float64{"service=web": decidedAt(t, one, id)})
		sameSeries(t, name, "vigil_heartbeat_last_beat_timestamp_seconds", h.gauges("vigil_heartbeat_last_beat_timestamp_seconds"),
			map[string]float64{"check=nightly": beat})
	}
}

// refusingReads is the agent's store whose reads of deploys and beats fail, or hang until
// their context ends, while set (a database restarting, a store under load).
type refusingReads struct {
	Store
	mode atomic.Value // "", "fail" or "hang"
}

func (s *refusingReads) refused(ctx context.Context) error {
	switch s.mode.Load() {
	case "fail":
		return errors.New("connection refused")
	case "hang":
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (s *refusingReads) ServiceDeploys(ctx context.Context, service string, limit int) ([]*store.Deploy, error) {
	if err := s.refused(ctx); err != nil {
		return nil, err
	}
	return s.Store.ServiceDeploys(ctx, service, limit)
}

func (s *refusingReads) Beats(ctx context.Context, check string, since time.Time) ([]*store.Beat, *store.Beat, error) {
	if err := s.refused(ctx); err != nil {
		return nil, nil, err
	}
	return s.Store.Beats(ctx, check, since)
}

// While the store refuses or does not answer the reads, a scrape gives the last verdict
// and beat as last read (not a service with no verdict, which would resolve an alert on
// a failed deploy) and does not wait for the store longer than storedReadTimeout.
func TestStoredSeriesWhileTheStoreDoesNotAnswer(t *testing.T) {
	tg := newTarget(t)
	dir := t.TempDir()
	st := &refusingReads{Store: openSQLite(t, dir)}
	st.mode.Store("")
	const token = "beat-token-0123456789"
	yaml := fmt.Sprintf(`
checks:
  - {name: home, kind: http, every: 1h, timeout: 2s, retries: 0, request: {url: %q}, assert: ["status == 200"]}
  - {name: nightly, kind: heartbeat, every: 1h, window: 25h, token: %s}
services:
  web: {checks: [home], verify: {interval: 100ms, count: 2}}
`, tg.srv.URL+"/", token)
	h := startAgentWith(t, dir, yaml, Options{Store: st})
	tg.set("broken")
	id := h.deploy("web", "v2")
	if d := h.verdict(id, 30*time.Second); d["status"] != store.StatusFailed {
		t.Fatalf("v2: %v %v", d["status"], d["reason"])
	}
	beat := h.beat("nightly", token, "")
	failedAt := decidedAt(t, h, id)
	client := &http.Client{Timeout: 20 * time.Second} // a bound on a hang, far above storedReadTimeout
	for _, mode := range []string{"", "fail", "hang"} {
		st.mode.Store(mode)
		resp, err := client.Get(h.url + "/metrics")
		if err != nil {
			t.Fatalf("store reads %s: scraping: %v", mode, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("store reads %s: scraping: %v", mode, err)
		}
		when := "store reads " + mode
		sameSeries(t, when, "vigil_deploy_last_verdict", gauges(t, string(body), "vigil_deploy_last_verdict"), lastVerdict("web", store.StatusFailed))
		sameSeries(t, when, "vigil_deploy_last_verdict_timestamp_seconds", gauges(t, string(body), "vigil_deploy_last_verdict_timestamp_seconds"),
			map[string]float64{"service=web": failedAt})
		sameSeries(t, when, "vigil_heartbeat_last_beat_timestamp_seconds", gauges(t, string(body), "vigil_heartbeat_last_beat_timestamp_seconds"),
			map[string]float64{"check=nightly": beat})
	}
}
