package agent

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/clock"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// A scheduled run in flight when a reload removes its check (a slow target: often why the
// check is removed) fails after the reload. It is stored, but opens no incident, pages no
// one, keeps no streak and is no last result: the reload's "left the config" closing ran
// before it ended, and nothing would ever close what it opened. A run of a check the
// reload keeps under its name and kind, its definition changed, is recorded as ever.
func TestARunEndingAfterItsCheckLeftTheConfigChangesNoIncident(t *testing.T) {
	arrived, release := make(chan string, 2), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- r.URL.Path
		<-release
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})
	slack, pd := loopback.NewSlack(t), loopback.NewPagerDuty(t)
	check := func(name, timeout string) string {
		return fmt.Sprintf("  - {name: %s, kind: http, every: 10m, timeout: %s, retries: 0, failure_threshold: 1, notify: [slack, pager], request: {url: %q}}\n",
			name, timeout, srv.URL+"/"+name)
	}
	cfg := func(list ...string) string {
		return "agent: {api_token: s3cret-token}\nchecks:\n" + strings.Join(list, "") + "notifiers:" + slackNotifier(slack) + pagerDutyNotifier(pd) + "\n"
	}
	fc := clock.NewFake(time.Now())
	logs := &vigiltest.Buffer{}
	l := launch(t, t.TempDir(), cfg(check("slow", "30s"), check("kept", "30s")),
		Options{Clock: fc, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	t.Cleanup(func() {
		_ = l.stop()
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})
	a := l.a
	h := &harness{t: t, a: a, cfgPath: l.path, url: l.url, token: "s3cret-token"}
	eventually(t, 10*time.Second, "both checks to be scheduled", func() bool {
		a.sched.mu.Lock()
		defer a.sched.mu.Unlock()
		return len(a.sched.entries) == 2
	})
	fc.Advance(10 * time.Minute)
	for range 2 {
		select {
		case <-arrived:
		case <-time.After(20 * time.Second):
			t.Fatal("the scheduled runs never reached the target")
		}
	}
	// slow leaves; kept stays, its timeout changed.
	if err := reloadWith(t, h, cfg(check("kept", "20s"))); err != nil {
		t.Fatal(err)
	}
	close(release)
	released = true
	eventually(t, 30*time.Second, "the runs to end and kept's incident to open", func() bool {
		a.incMu.Lock()
		in := a.incidents["kept"]
		a.incMu.Unlock()
		a.sched.mu.Lock()
		idle := len(a.sched.running) == 0
		a.sched.mu.Unlock()
		return idle && in != nil && in.Open
	})
	a.writer.flush(t.Context())

	// The incident and its notifications were written in one transaction: what the
	// outbox holds now is all the runs asked for.
	for _, n := range []string{"slack", "pager"} {
		var got []string
		for _, ev := range outboxEvents(t, a, n) {
			got = append(got, ev.Name+" "+ev.Incident)
		}
		if want := "check_failed check:kept:1"; strings.Join(got, ", ") != want {
			t.Errorf("%s was sent %q; want only %q", n, got, want)
		}
	}
	a.incView.RLock()
	in, streak := a.incidents["slow"], a.streaks["slow"]
	a.incView.RUnlock()
	if in != nil || streak != nil {
		t.Errorf("the removed check's run left an incident %+v and a streak %+v", in, streak)
	}
	if open, _ := a.incidentCounts(); open != 1 {
		t.Errorf("%d open incidents; want kept's alone", open)
	}
	if res := a.lastResult("slow"); res != nil {
		t.Errorf("the removed check's run is its last result: %s", res.Outcome)
	}
	if res := a.lastResult("kept"); res == nil || res.Outcome != "fail" {
		t.Errorf("kept's last result: %+v; want its failed run", res)
	}
	runs, err := a.store.RecentRuns(t.Context(), "slow", time.Now().Add(365*24*time.Hour), 10)
	if err != nil || len(runs) != 1 || runs[0].Outcome != "fail" {
		t.Errorf("the removed check's run should be stored as history: %v, %v", runs, err)
	}
	if !strings.Contains(logs.String(), "a reload removed the check while it ran") {
		t.Error("the log does not say why the run changed nothing")
	}

	eventually(t, 30*time.Second, "kept's page and Slack message", func() bool { return len(slack.Roots()) >= 1 && len(pd.Events()) >= 1 })
	if r, p := len(slack.Roots()), len(pd.Events()); r != 1 || p != 1 {
		t.Errorf("Slack got %d messages, PagerDuty %d events; want kept's one each", r, p)
	}

	// Added back under its name and kind, the check has no result and no incident until
	// it runs: nothing of the run that ended while it was gone shows.
	if err := reloadWith(t, h, cfg(check("slow", "30s"), check("kept", "20s"))); err != nil {
		t.Fatal(err)
	}
	_, out := h.request("GET", "/api/v1/checks", "")
	slow := checkOf(t, out, "slow")
	if slow["last"] != nil || slow["incident_open"] != false {
		t.Errorf("the check added back shows last %v, incident %v; want no result and no incident", slow["last"], slow["incident_open"])
	}
}
