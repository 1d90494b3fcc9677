package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/store"
)

// runs turns "PPFIENR" into outcomes: pass, fail, inconclusive, error, an error in which
// the service gave no answer, and a pass on a retry after an attempt without one.
func runs(s string) []*checks.Result {
	var out []*checks.Result
	for _, c := range s {
		o := map[rune]checks.Outcome{'P': checks.Pass, 'F': checks.Fail, 'I': checks.Inconclusive, 'V': checks.Inconclusive,
			'E': checks.Error, 'N': checks.Error, 'R': checks.Pass}[c]
		r := &checks.Result{Outcome: o, Reasons: []string{string(o) + " reason"}, NoAnswer: c == 'N', NotServed: c == 'V'}
		if c == 'R' {
			r.RetriedSilence = "refused on the first attempt"
		}
		out = append(out, r)
	}
	return out
}

func TestVerdictRules(t *testing.T) {
	limits := func(fail, inc, errs int) configs.Verify {
		return configs.Verify{FailureLimit: fail, InconclusiveLimit: inc, ConsecutiveErrorLimit: &errs}
	}
	for _, tc := range []struct {
		name     string
		checks   map[string]string // check -> its runs in order
		limits   configs.Verify
		before   bool // the checks passed before the deploy (they have a baseline)
		failAt   int  // for a single check: the run (1-based) that fails fast; 0: none
		want     string
		inReason string
	}{
		{name: "all pass", checks: map[string]string{"a": "PPP"}, limits: limits(0, 0, 4), want: store.StatusPassed},
		{name: "first fail fails fast", checks: map[string]string{"a": "PFP"}, limits: limits(0, 0, 4), failAt: 2, want: store.StatusFailed, inReason: "failure_limit 0"},
		{name: "fails within failure_limit", checks: map[string]string{"a": "PFP"}, limits: limits(1, 0, 4), want: store.StatusPassed},
		{name: "second fail past failure_limit 1", checks: map[string]string{"a": "FPF"}, limits: limits(1, 0, 4), failAt: 3, want: store.StatusFailed},
		{name: "no data yet then data (late series)", checks: map[string]string{"a": "IIPP"}, limits: limits(0, 0, 4), want: store.StatusPassed},
		{name: "no data yet then a failure", checks: map[string]string{"a": "IIF"}, limits: limits(0, 0, 4), failAt: 3, want: store.StatusFailed},
		{name: "never any data", checks: map[string]string{"a": "III"}, limits: limits(0, 0, 4), want: store.StatusInconclusive, inReason: "no run gave an answer in 3 rounds"},
		{name: "data went missing after the first answer", checks: map[string]string{"a": "PPI"}, limits: limits(0, 0, 4), want: store.StatusInconclusive, inReason: "after its first answer"},
		{name: "late inconclusive within the limit", checks: map[string]string{"a": "PIP"}, limits: limits(0, 1, 4), want: store.StatusPassed},
		{name: "errors in a row past the limit", checks: map[string]string{"a": "PEEEP"}, limits: limits(0, 0, 2), want: store.StatusInconclusive, inReason: "3 errors in a row"},
		{name: "errors spread out stay within the limit", checks: map[string]string{"a": "EPEPE"}, limits: limits(0, 0, 1), want: store.StatusPassed},
		{name: "only errors", checks: map[string]string{"a": "EEE"}, limits: limits(0, 0, 4), want: store.StatusInconclusive, inReason: "no run gave an answer"},
		{name: "no answer past the limit, answered before", checks: map[string]string{"a": "PNNNP"}, limits: limits(0, 0, 2), before: true,
			failAt: 4, want: store.StatusFailed, inReason: "stopped answering after the deploy: no answer in 3 runs in a row (consecutive_error_limit 2)"},
		{name: "no answer from the first round, answered before", checks: map[string]string{"a": "NNNNNN"}, limits: limits(0, 0, 4), before: true,
			failAt: 5, want: store.StatusFailed, inReason: "no answer in 5 runs"},
		{name: "no answer within the limit, answered before", checks: map[string]string{"a": "NNPNNP"}, limits: limits(0, 0, 2), before: true, want: store.StatusPassed},
		{name: "no answer past the limit, never answered before", checks: map[string]string{"a": "PNNNP"}, limits: limits(0, 0, 2),
			want: store.StatusInconclusive, inReason: "no run of it passed before the deploy"},
		{name: "vigil's own errors past the limit, answered before", checks: map[string]string{"a": "PEEEP"}, limits: limits(0, 0, 2), before: true,
			want: store.StatusInconclusive, inReason: "vigil could not measure: 3 errors in a row"},
		{name: "its own errors break the silence", checks: map[string]string{"a": "NNENNP"}, limits: limits(0, 0, 2), before: true,
			want: store.StatusInconclusive, inReason: "5 errors in a row"},
		{name: "keeps going away, answered before", checks: map[string]string{"a": "PNPNP"}, limits: limits(0, 0, 4), before: true,
			failAt: 4, want: store.StatusFailed, inReason: "keeps going away after the deploy: it answered, then gave no answer, 2 times (2 runs without an answer after its first, failure_limit 0)"},
		{name: "keeps going away past failure_limit", checks: map[string]string{"a": "NPNNPNPN"}, limits: limits(2, 0, 4), before: true,
			failAt: 6, want: store.StatusFailed, inReason: "2 times (3 runs without an answer"},
		{name: "keeps going away within failure_limit", checks: map[string]string{"a": "PNPNP"}, limits: limits(2, 0, 4), before: true, want: store.StatusPassed},
		{name: "keeps going away, never answered before", checks: map[string]string{"a": "PNPNP"}, limits: limits(0, 0, 4), want: store.StatusPassed},
		{name: "silent until the first answer, then steady", checks: map[string]string{"a": "NNNPPPP"}, limits: limits(0, 0, 4), before: true, want: store.StatusPassed},
		{name: "one blip after the first answer", checks: map[string]string{"a": "NPPNNPP"}, limits: limits(0, 0, 4), before: true, want: store.StatusPassed},
		{name: "vigil's own errors are no relapse", checks: map[string]string{"a": "PNEEN"}, limits: limits(0, 0, 4), before: true, want: store.StatusPassed},
		{name: "a failed run is an answer between silences", checks: map[string]string{"a": "PNFN"}, limits: limits(1, 0, 4), before: true,
			failAt: 4, want: store.StatusFailed, inReason: "2 times"},
		{name: "keeps going away, each time caught by a retry", checks: map[string]string{"a": "PRPRP"}, limits: limits(0, 0, 4), before: true,
			failAt: 4, want: store.StatusFailed, inReason: "2 times (2 runs without an answer after its first, failure_limit 0), where it passed before the deploy: refused on the first attempt"},
		{name: "a retry and a silent run", checks: map[string]string{"a": "PRN"}, limits: limits(1, 0, 4), before: true, failAt: 3, want: store.StatusFailed, inReason: "2 times"},
		{name: "a retry at the start is the process starting", checks: map[string]string{"a": "RPPRPP"}, limits: limits(0, 0, 4), before: true, want: store.StatusPassed},
		{name: "one check inconclusive, one passes", checks: map[string]string{"a": "PPP", "b": "III"}, limits: limits(0, 0, 4), want: store.StatusInconclusive, inReason: "b:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			order := []string{"a", "b"}
			tallies := map[string]*tally{}
			status, reason := "", ""
			for _, name := range order {
				seq, ok := tc.checks[name]
				if !ok {
					continue
				}
				tallies[name] = &tally{answeredBefore: tc.before}
				for i, r := range runs(seq) {
					tallies[name].add(r, int64(i+1))
					if s, why := failFast(name, tallies[name], tc.limits, r); s != "" && status == "" {
						status, reason = s, why
						if tc.failAt != i+1 {
							t.Errorf("failed fast at run %d; want at run %d", i+1, tc.failAt)
						}
					}
				}
			}
			if status == "" {
				if tc.failAt != 0 {
					t.Errorf("did not fail fast; want at run %d", tc.failAt)
				}
				status, reason = windowVerdict(order, tallies, tc.limits, 3)
			}
			if status != tc.want || !strings.Contains(reason, tc.inReason) {
				t.Errorf("verdict %s (%s); want %s with %q", status, reason, tc.want, tc.inReason)
			}
		})
	}
}

// An inconclusive or errored run never ends a window: failFast only ever answers for a
// failed run.
func TestFailFastIgnoresInconclusiveAndErrors(t *testing.T) {
	zero := 0
	limits := configs.Verify{ConsecutiveErrorLimit: &zero}
	tl := &tally{}
	for _, r := range runs("IEIEIE") {
		tl.add(r, 1)
		if s, _ := failFast("a", tl, limits, r); s != "" {
			t.Fatalf("a %s run ended the window: %s", r.Outcome, s)
		}
	}
}

// verify.ready_within and verify.ready_slowdown: rounds 10 s apart, the first at the
// deploy; a check that has not passed by its round due 30 s after the deploy (or due its
// slowdown limit) fails it there, whatever that round saw.
func TestNotReady(t *testing.T) {
	four := 4
	for _, tc := range []struct {
		name     string
		within   time.Duration
		slowdown float64
		usual    time.Duration // the check's usual startup, of 3 deploys
		runs     string
		failAt   int // the run (1-based) that finds it not ready; 0: none
		reason   string
	}{
		{"ready in time", 30 * time.Second, 0, 0, "VVPP", 0, ""},
		{"ready at the deadline's round", 30 * time.Second, 0, 0, "VVVP", 0, ""},
		{"old pods answer past the deadline", 30 * time.Second, 0, 0, "VVVVP", 4, "a: not ready 30s after the deploy (verify.ready_within 30s): no run passed in 4 rounds (4 inconclusive); the round due 30s after the deploy: inconclusive reason"},
		{"not answering yet, then failing", 30 * time.Second, 0, 0, "NNEF", 4, "no run passed in 4 rounds (1 failed, 3 errors)"},
		{"passed once, then failing within failure_limit", 30 * time.Second, 0, 0, "PFFFF", 0, ""},
		{"no limit", 0, 0, 0, "IIIIIII", 0, ""},
		{"a short limit", 5 * time.Second, 0, 0, "NVP", 2, "(1 inconclusive, 1 error)"},
		{"metrics that arrive late say nothing of the new version", 30 * time.Second, 0, 0, "IIIIIP", 0, ""},
		{"nor do vigil's own errors", 30 * time.Second, 0, 0, "EIEIEP", 0, ""},
		{"late metrics, then the old version", 30 * time.Second, 0, 0, "IIIIVP", 5, "no run passed in 5 rounds (5 inconclusive)"},
		{"late metrics, then a failure", 30 * time.Second, 0, 0, "IIIIFP", 5, "(1 failed, 4 inconclusive)"},
		{"three times slower than usual", 0, 3, 5 * time.Second, "VVVP", 3,
			"a: not ready 15s after the deploy, far slower than usual (verify.ready_slowdown 3: it first passed 5s after the deploy, the median of the service's last 3 deploys that passed): no run passed in 3 rounds (3 inconclusive); the round due 20s after the deploy: inconclusive reason"},
		{"usually ready at once, up one round later", 0, 3, time.Second, "VP", 0, ""},
		{"usually ready at once, not up two rounds later", 0, 3, time.Second, "VVVP", 3, "not ready 11s after the deploy, far slower than usual"},
		{"within the factor", 0, 3, 15 * time.Second, "VVVVP", 0, ""},
		{"no usual startup yet", 0, 3, 0, "IIIIIII", 0, ""},
		{"off, with a usual startup", 0, 0, time.Second, "IIIIIII", 0, ""},
		{"the SLA before the slowdown", 30 * time.Second, 3, 20 * time.Second, "VVVVP", 4, "(verify.ready_within 30s)"},
		{"the slowdown before the SLA", 50 * time.Second, 2, 5 * time.Second, "VVVVP", 3, "not ready 15s after the deploy, far slower than usual (verify.ready_slowdown 2:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limits := configs.Verify{FailureLimit: 10, ConsecutiveErrorLimit: &four, ReadyWithin: tc.within, ReadySlowdown: tc.slowdown,
				Interval: 10 * time.Second}
			tl := &tally{usual: tc.usual}
			if tc.usual > 0 {
				tl.usualOf = 3
			}
			failedAt, reason := 0, ""
			for i, r := range runs(tc.runs) {
				tl.add(r, int64(i+1))
				if s, why := notReady("a", tl, limits, time.Duration(i)*10*time.Second, r); s != "" {
					if s != store.StatusFailed {
						t.Fatalf("status %s", s)
					}
					failedAt, reason = i+1, why
					break
				}
			}
			if failedAt != tc.failAt || !strings.Contains(reason, tc.reason) {
				t.Errorf("not ready at run %d (%s); want at run %d with %q", failedAt, reason, tc.failAt, tc.reason)
			}
		})
	}
}

// verify.ready_slowdown's limit: the factor times the usual startup counted from the
// window's first round, never less than one round later than usual.
func TestSlowdownLimit(t *testing.T) {
	for _, tc := range []struct {
		name             string
		slowdown         float64
		delay, interval  time.Duration
		usual, wantLimit time.Duration
	}{
		{"off", 0, 0, 5 * time.Second, 10 * time.Second, 0},
		{"no usual startup", 3, 0, 5 * time.Second, 0, 0},
		{"the factor", 3, 0, 5 * time.Second, 10 * time.Second, 30 * time.Second},
		{"a round's slack", 3, 0, 5 * time.Second, 200 * time.Millisecond, 5200 * time.Millisecond},
		{"counted from the first round", 3, 30 * time.Second, 5 * time.Second, 40 * time.Second, 60 * time.Second},
		{"ready at the first round", 3, 30 * time.Second, 5 * time.Second, 30*time.Second + 100*time.Millisecond, 35*time.Second + 100*time.Millisecond},
		{"an initial delay longer than the usual startup then", 3, time.Minute, 10 * time.Second, 20 * time.Second, 70 * time.Second},
		{"a fractional factor", 1.5, 0, time.Second, 10 * time.Second, 15 * time.Second},
	} {
		got := slowdownLimit(configs.Verify{ReadySlowdown: tc.slowdown, InitialDelay: tc.delay, Interval: tc.interval}, tc.usual)
		if got != tc.wantLimit {
			t.Errorf("%s: %s; want %s", tc.name, got, tc.wantLimit)
		}
	}
}

// A check failing when the deploy was registered: a run after it that fails on nothing
// else counts as inconclusive; a new failure is the deploy's; never passing in the window
// is inconclusive, naming the outage.
func TestFailingBefore(t *testing.T) {
	for _, tc := range []struct{ reason, key string }{
		{"status == 200 is false: status = 503", "status == 200"},
		{"p95_ms < baseline.p95_ms * 1.5 is false: p95_ms = 912, baseline.p95_ms = 180", "p95_ms < baseline.p95_ms * 1.5"},
		{"json.items[0].id > 0 could not be evaluated: index out of range", "json.items[0].id > 0"},
		{"GET https://shop.example/: certificate expired 3 days ago (2026-12-03T10:00:00Z)", "GET https://shop.example/: certificate expired # days ago (#-#-#T#:#:#Z)"},
	} {
		if got := failureKey(tc.reason); got != tc.key {
			t.Errorf("failureKey(%q) = %q; want %q", tc.reason, got, tc.key)
		}
	}
	since := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	before := newFailingBefore([]string{"status == 200 is false: status = 503"}, since)
	fail := func(reasons ...string) *checks.Result {
		return &checks.Result{Outcome: checks.Fail, Reasons: reasons, Halt: "stop"}
	}
	same, other := fail("status == 200 is false: status = 502"), fail("status == 200 is false: status = 500", `json.ok == true is false: json.ok = false`)
	if r, ok := before.asBefore(same); !ok || r.Outcome != checks.Inconclusive || r.Halt != "" || same.Outcome != checks.Fail ||
		r.Reasons[0] != "failing as before the deploy: status == 200 is false: status = 502" {
		t.Errorf("the same assertion failing with another value: %v %+v; want an inconclusive copy, the run itself untouched", ok, r)
	}
	for _, res := range []*checks.Result{other, fail(), {Outcome: checks.Pass}, {Outcome: checks.Error, Reasons: []string{"status == 200 is false"}}} {
		if r, ok := before.asBefore(res); ok || r != res {
			t.Errorf("%+v counted as failing as before", res)
		}
	}
	if r, ok := (*failingBefore)(nil).asBefore(same); ok || r != same {
		t.Error("a check not failing before the deploy masks its failure")
	}

	four := 4
	limits := configs.Verify{ConsecutiveErrorLimit: &four, ReadyWithin: 10 * time.Second, Interval: 10 * time.Second}
	for _, tc := range []struct {
		name   string
		runs   []*checks.Result
		failAt int
		want   string
		reason string
	}{
		{"still failing the same way", []*checks.Result{same, same, same}, 0, store.StatusInconclusive,
			"a: failing as before the deploy in 3 of 3 rounds (its incident has been open since 2026-12-06T09:00:00Z): the deploy did not end it, and vigil does not blame the deploy for it: failing as before the deploy: status == 200 is false: status = 502"},
		{"the hotfix works", []*checks.Result{same, {Outcome: checks.Pass}, {Outcome: checks.Pass}}, 0, store.StatusPassed, ""},
		{"a new failure is the deploy's", []*checks.Result{same, other}, 2, store.StatusFailed, "a: 1 failed run (failure_limit 0): status == 200 is false: status = 500"},
		{"passes, then fails as before", []*checks.Result{{Outcome: checks.Pass}, same}, 0, store.StatusInconclusive, "1 inconclusive run after its first answer (inconclusive_limit 0): failing as before the deploy"},
	} {
		tl := &tally{before: before, answeredBefore: true}
		failedAt, status, reason := 0, "", ""
		for i, res := range tc.runs {
			if r, ok := tl.before.asBefore(res); ok {
				res = r
				tl.asBefore++
			}
			tl.add(res, int64(i+1))
			if status, reason = failFast("a", tl, limits, res); status == "" {
				status, reason = notReady("a", tl, limits, time.Duration(i)*10*time.Second, res)
			}
			if status != "" {
				failedAt = i + 1
				break
			}
		}
		if status == "" {
			status, reason = windowVerdict([]string{"a"}, map[string]*tally{"a": tl}, limits, len(tc.runs))
		}
		if failedAt != tc.failAt || status != tc.want || !strings.Contains(reason, tc.reason) {
			t.Errorf("%s: %s at run %d (%s); want %s at run %d with %q", tc.name, status, failedAt, reason, tc.want, tc.failAt, tc.reason)
		}
	}
}
