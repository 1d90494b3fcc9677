package agent

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/clock"
	"github.com/vigil-monitor/vigil/store"
)

// A location's streak, run by run: the letters are the outcomes (p pass, f fail, e error,
// i inconclusive), the marks where the location starts (^) or stops (v) failing.
func TestNextStreak(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		threshold, window, success int
		runs, want                 string
	}{
		{"in a row", 2, 0, 1, "fpffpp", "...^v."},
		{"in a row never sees a crash loop", 2, 0, 1, "fpfpfpfpfp", ".........."},
		{"errors count as failures", 2, 0, 1, "epee", "...^"},
		{"inconclusive changes nothing", 2, 0, 1, "fifip", "..^.v"},
		{"a window sees a crash loop", 3, 10, 1, "fpfpf", "....^"},
		{"a flapping check stays one incident", 3, 10, 1, "fpfpfpfpfpfp", "....^......."},
		{"it closes once the window holds fewer than the threshold", 3, 6, 1, "fpfpfppp", "....^.v."},
		{"and after success_threshold passes in a row", 2, 4, 3, "ffppfppp", ".^.....v"},
		{"three in a row open it at once", 3, 10, 1, "fff", "..^"},
		{"a window full of passes stays quiet", 3, 5, 1, "ppppppfpp", "........."},
		{"old failures leave the window", 3, 4, 1, "fpfpppfpf", "........."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &configs.Check{FailureThreshold: tc.threshold, SuccessThreshold: tc.success, FailureWindow: &tc.window}
			var cl store.CheckLocation
			got := ""
			for _, r := range tc.runs {
				outcome := map[rune]checks.Outcome{'p': checks.Pass, 'f': checks.Fail, 'e': checks.Error, 'i': checks.Inconclusive}[r]
				var flipped bool
				cl, flipped = nextStreak(cl, cfg, outcome)
				switch {
				case flipped && cl.Failing:
					got += "^"
				case flipped:
					got += "v"
				default:
					got += "."
				}
				if len(cl.Recent) > tc.window {
					t.Fatalf("after %q the window holds %q, more than %d runs", got, cl.Recent, tc.window)
				}
			}
			if got != tc.want {
				t.Errorf("runs %s: %s; want %s", tc.runs, got, tc.want)
			}
		})
	}

	// no_data: alert counts an inconclusive run (nothing to judge) as a failing one.
	for _, noData := range []string{configs.NoDataIgnore, configs.NoDataAlert} {
		cfg := &configs.Check{FailureThreshold: 2, SuccessThreshold: 1, FailureWindow: new(int), NoData: noData}
		var cl store.CheckLocation
		opened := false
		for _, o := range []checks.Outcome{checks.Inconclusive, checks.Inconclusive, checks.Inconclusive} {
			var flipped bool
			cl, flipped = nextStreak(cl, cfg, o)
			opened = opened || flipped && cl.Failing
		}
		if opened != (noData == configs.NoDataAlert) {
			t.Errorf("no_data %s: three inconclusive runs opened an incident: %v", noData, opened)
		}
	}

	// A reload that makes the window smaller, or removes it, cuts what was kept.
	cfg := &configs.Check{FailureThreshold: 3, SuccessThreshold: 1, FailureWindow: new(int)}
	*cfg.FailureWindow = 3
	cl, _ := nextStreak(store.CheckLocation{Recent: "fpfpfpf"}, cfg, checks.Inconclusive)
	if cl.Recent != "fpf" {
		t.Errorf("a window of 3 after one of 7: %q", cl.Recent)
	}
	*cfg.FailureWindow = 0
	if cl, _ = nextStreak(cl, cfg, checks.Fail); cl.Recent != "" {
		t.Errorf("no window keeps %q", cl.Recent)
	}
}

// A service crash-looping behind a load balancer fails every other run: failure_threshold
// never counts two in a row, and only failure_window opens an incident. The agent runs on
// a fake clock; the outcomes kept for the window survive a restart of the agent, and the
// incident closes once the window holds fewer failures than the threshold.
func TestAFlappingCheckOpensOneIncident(t *testing.T) {
	tg := newTarget(t)
	hook := loopback.NewWebhook(t)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`
checks:
  - {name: flapping, kind: http, every: 10m, timeout: 2s, retries: 0, failure_threshold: 3, failure_window: 10,
     notify: [hook], request: {url: %q}}
  - {name: in-a-row, kind: http, every: 10m, timeout: 2s, retries: 0, failure_threshold: 2,
     notify: [hook], request: {url: %q}}
notifiers:
  hook: {type: webhook, url: %q, secret: %q}
`, tg.srv.URL+"/", tg.srv.URL+"/", hook.URL(), loopback.WebhookSecret)
	fc := clock.NewFake(time.Now())
	start := func() *launched {
		l := launch(t, dir, yaml, Options{Clock: fc, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		t.Cleanup(func() { _ = l.stop() })
		eventually(t, 10*time.Second, "both checks to be scheduled", func() bool {
			l.a.sched.mu.Lock()
			defer l.a.sched.mu.Unlock()
			return len(l.a.sched.entries) == 2
		})
		return l
	}
	l := start()
	run := func(mode string) {
		t.Helper()
		tg.set(mode)
		before := tg.hits.Load()
		fc.Advance(10 * time.Minute)
		eventually(t, 20*time.Second, "both checks' runs", func() bool {
			l.a.sched.mu.Lock()
			idle := len(l.a.sched.running) == 0
			l.a.sched.mu.Unlock()
			return tg.hits.Load() >= before+2 && idle
		})
	}
	events := func() string {
		var out []string
		for _, ev := range outboxEvents(t, l.a, "hook") {
			out = append(out, ev.Name+" "+ev.Check)
		}
		return strings.Join(out, ", ")
	}

	run("broken")
	run("good")
	run("broken")
	run("good")
	if err := l.stop(); err != nil { // the window's f p f p is in the store
		t.Fatal(err)
	}
	l = start()
	run("broken") // 3 of the last 5
	if got := events(); got != "check_failed flapping" {
		t.Fatalf("after f p f p, a restart and f: %q; want the flapping check's incident, and none for in-a-row", got)
	}
	if ev := outboxEvents(t, l.a, "hook")[0]; !strings.HasPrefix(ev.Summary, "3 of the last 5 runs failed: ") {
		t.Errorf("the incident says %q; want how many of the window's runs failed", ev.Summary)
	}
	for check, want := range map[string]string{
		"flapping": "3 failing runs among the last 10 open an incident, 1 passing in a row closes it; here 3 of the last 5 failed",
		"in-a-row": "2 failing runs in a row open an incident, 1 passing in a row closes it; here 1 failing in a row",
	} {
		if page := getPage(t, l.url+"/checks/"+check); !strings.Contains(page, want) {
			t.Errorf("%s's page does not say %q:\n%s", check, want, page)
		}
	}
	for range 2 {
		run("good")
		run("broken")
	}
	// Runs 1-9: f p f p | f p f p f; each good run then pushes the oldest out.
	for range 5 {
		run("good")
	}
	// Runs 5-14: f p f p f p p p p p, still 3 failures.
	if got := events(); got != "check_failed flapping" {
		t.Fatalf("while the window still holds 3 failures: %q; want the one incident, still open", got)
	}
	run("good") // runs 6-15: 2 failures
	if got := events(); got != "check_failed flapping, check_recovered flapping" {
		t.Fatalf("once the window holds 2 failures: %q; want the incident closed", got)
	}
}

func getPage(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// The check_failed that opens a check's incident names the newest deploy of the check's
// service: a deploy that passed its window and broke production later (a leak, seed 001)
// is the first suspect. A real agent, a loopback Slack: v2 passes verification, the
// service breaks afterwards, and the incident's message names v2.
func TestACheckIncidentNamesTheLastDeploy(t *testing.T) {
	tg := newTarget(t)
	slack := loopback.NewSlack(t)
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - {name: home, kind: http, every: 1s, timeout: 2s, retries: 0, failure_threshold: 1, notify: [slack], request: {url: %q}}
  - {name: lone, kind: http, every: 1s, timeout: 2s, retries: 0, failure_threshold: 1, notify: [slack], request: {url: %q}}
services:
  web: {checks: [home], verify: {interval: 100ms, count: 2}}
notifiers:%s
`, tg.srv.URL+"/", tg.srv.URL+"/", slackNotifier(slack)))
	id := h.deploy("web", "v2")
	if d := h.verdict(id, 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("v2: %v %v", d["status"], d["reason"])
	}
	tg.set("broken")
	var opened map[string]alerting.Event
	eventually(t, 30*time.Second, "both checks' incidents", func() bool {
		opened = map[string]alerting.Event{}
		for _, ev := range outboxEvents(t, h.a, "slack") {
			if ev.Name == "check_failed" {
				opened[ev.Check] = ev
			}
		}
		return len(opened) == 2
	})
	ld := opened["home"].LastDeploy
	if ld == nil || ld.ID != id || ld.Version != "v2" || ld.Status != store.StatusPassed || ld.Before <= 0 {
		t.Fatalf("home's incident names %+v; want deploy %s of v2, passed, registered before it", ld, id)
	}
	if ld := opened["lone"].LastDeploy; ld != nil {
		t.Errorf("a check of no service names a deploy: %+v", ld)
	}
	eventually(t, 30*time.Second, "the Slack message", func() bool {
		for _, m := range slack.Roots() {
			if strings.Contains(string(m.Blocks), `*Last deploy*\nweb v2, `) && strings.Contains(string(m.Blocks), `(passed verification)`) {
				return true
			}
		}
		return false
	})
}

// The streak of a check without failure_window, on the scheduled hot path, allocates
// nothing: a thousand checks a second each take this step.
func TestNextStreakAllocatesNothingWithoutAWindow(t *testing.T) {
	cfg := &configs.Check{FailureThreshold: 2, SuccessThreshold: 1, FailureWindow: new(int), NoData: configs.NoDataIgnore}
	cl := store.CheckLocation{Check: "home", Location: "local"}
	outcomes := []checks.Outcome{checks.Pass, checks.Fail, checks.Pass, checks.Inconclusive}
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		cl, _ = nextStreak(cl, cfg, outcomes[i%len(outcomes)])
		i++
	}); n != 0 {
		t.Errorf("%v allocations a run; want none", n)
	}
}
